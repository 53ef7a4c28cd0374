"""Decisions visible in MLflow: each registered version's decisions, mirrored from the ledger.

The ledger is the source of truth; MLflow gets a copy, asynchronously (a Dagster asset on a
schedule, or ``governance mirror``), never on a decision's critical path. Nothing here is called
while deciding, and a mirror run that cannot reach MLflow fails with one clear error and writes
nothing; the next run catches up from where the last successful one stopped.

What an engineer sees in the MLflow UI
--------------------------------------
On the **training run** of a registered version (the run the version page links to):

* ``decisions/decisions-00001.json``, ``-00002`` ... — the version's decisions in ledger order,
  :data:`PART_ROWS` rows per file, in the format of ``MlflowClient.log_table`` (pandas
  ``orient="split"``) and registered in the run's ``mlflow.loggedArtifacts`` tag, so the UI's
  artifact browser shows each file as a table (the newest :data:`TABLE_TAG_LIMIT` parts: the tag
  holds at most 8,000 characters), and ``MlflowClient.load_table`` reads any part back.
  Columns: :data:`COLUMNS` — no inputs, no PII, no subject ids: only the first
  :data:`SUBJECT_PREFIX` hex digits of the subject's HMAC key, enough to tell subjects apart.
  ``top_reason`` is the first principal (adverse-action) reason, on adverse outcomes only;
  ``main_factor`` the first main factor of a favorable one; ``out_of_distribution`` the
  features flagged outside the training range.
* ``decisions/index.json`` — the parts (seq range, rows, counts), totals and the cursor.
* metrics ``decisions.count``, ``decisions.adverse_rate`` (the model's outcomes),
  ``decisions.effective_adverse_rate`` (after human overrides), ``decisions.overridden``,
  ``decisions.with_outcome``, each logged with ``step`` = the ledger seq mirrored up to, so
  their history shows the version's decisions accumulate;
* tags ``governance.mirror.seq`` (the cursor), ``governance.mirror.rows``,
  ``governance.mirror.updated``.

On the **model version**: tags ``governance.explorer`` (the decision explorer's page of this
version, base URL from ``GOVERNANCE_EXPLORER_URL``, default ``http://127.0.0.1:8080``),
``governance.decisions.count`` and ``governance.decisions.table`` (where the table lives), and
one line of its description — MLflow renders descriptions as Markdown, so that line is a
clickable link to the explorer (tag values are plain text). Other description text is kept.

Why a table in parts rather than one table or MLflow traces
-----------------------------------------------------------
``log_table`` on an existing file downloads it, appends and uploads it whole: one growing table
makes every run cost O(all decisions) and soon becomes too large for the UI to show. Fixed-size
parts make a run cost O(new decisions): only the last, unfilled part and new parts are written.
A later review (``status``: contested, reviewed, overridden), override or observed outcome
changes the ``status`` / ``effective_outcome`` / ``observed`` column of an older decision; the
part holding it is rebuilt from the ledger (never patched from what MLflow holds), so MLflow
always shows what the ledger says. One MLflow trace per decision would bring back the cost the
ledger exists to avoid (one tracking-store write per decision).

Cursor and idempotence
----------------------
The cursor is the seq (and hash) of the last ledger event of this version that was mirrored —
decisions, overrides and outcomes alike. It lives in ``decisions/index.json`` (authoritative,
written after the parts: a run that dies half-way leaves the old index, and the next run
rewrites the same parts), in the run tag ``governance.mirror.seq``, and locally under
``<home>/mirror/<model>/v<version>.json`` (what this machine last mirrored, readable without
MLflow). A run with no new event of the version writes nothing. If the record at the cursor no
longer has the recorded hash (a different ledger), or the part size changed, the mirror is
rebuilt from the start and table files the new index no longer lists are deleted.

Modules: :mod:`~governance.lifecycle.mirror.rows` (the table: rows, parts, the update),
:mod:`~governance.lifecycle.mirror.scanning` (reading the ledger after a cursor),
:mod:`~governance.lifecycle.mirror.sync` (MLflow: availability, index, tags) and
:mod:`~governance.lifecycle.mirror.run` (mirroring a version or a model, the local record).
Explorer links come from :mod:`governance.settings`.
"""

from governance.lifecycle.mirror.rows import (
    COLUMNS,
    INDEX_FILE,
    PART_ROWS,
    SCHEMA,
    SUBJECT_PREFIX,
    TABLE_DIR,
    Cursor,
    MirrorError,
    Part,
    Update,
    build_update,
    decision_row,
    part_file,
    totals,
)
from governance.lifecycle.mirror.run import (
    local_state,
    mirror_model,
    mirror_version,
    read_mirror,
    state_path,
    summary,
)
from governance.lifecycle.mirror.scanning import (
    scan,
)
from governance.lifecycle.mirror.sync import (
    DESCRIPTION_MARK,
    ERR_FAILED,
    ERR_UNAVAILABLE,
    LOGGED_ARTIFACTS,
    PROBE_TIMEOUT,
    TABLE_TAG_LIMIT,
    TAG_EXPLORER,
    TAG_ROWS,
    TAG_SEQ,
    TAG_UPDATED,
    TAG_VERSION_COUNT,
    TAG_VERSION_TABLE,
    check_available,
    description_with_link,
    safe_uri,
)

__all__ = [
    "COLUMNS",
    "DESCRIPTION_MARK",
    "ERR_FAILED",
    "ERR_UNAVAILABLE",
    "INDEX_FILE",
    "LOGGED_ARTIFACTS",
    "PART_ROWS",
    "PROBE_TIMEOUT",
    "SCHEMA",
    "SUBJECT_PREFIX",
    "TABLE_DIR",
    "TABLE_TAG_LIMIT",
    "TAG_EXPLORER",
    "TAG_ROWS",
    "TAG_SEQ",
    "TAG_UPDATED",
    "TAG_VERSION_COUNT",
    "TAG_VERSION_TABLE",
    "Cursor",
    "MirrorError",
    "Part",
    "Update",
    "build_update",
    "check_available",
    "decision_row",
    "description_with_link",
    "local_state",
    "mirror_model",
    "mirror_version",
    "part_file",
    "read_mirror",
    "safe_uri",
    "scan",
    "state_path",
    "summary",
    "totals",
]
