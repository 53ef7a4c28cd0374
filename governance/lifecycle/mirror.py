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
A later override or observed outcome changes the ``effective_outcome`` / ``observed`` column of
an older decision; the part holding it is rebuilt from the ledger (never patched from what
MLflow holds), so MLflow always shows what the ledger says. One MLflow trace per decision would
bring back the cost the ledger exists to avoid (one tracking-store write per decision).

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
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from governance.decisions.reviews import effective_outcome
from governance.ledger import Ledger, Record, utc_now
from governance.ledger.paging import PAGE, iter_find
from governance.registry import mlflow as registry
from governance.settings import Settings, explorer_base, explorer_model_url, explorer_version_url

log = logging.getLogger(__name__)

SCHEMA = "governance.decision_mirror/1"
TABLE_DIR = "decisions"
INDEX_FILE = f"{TABLE_DIR}/index.json"
PART_ROWS = 10_000  # decisions per table file
TABLE_TAG_LIMIT = 50  # newest parts registered as tables (MLflow tag values hold 8,000 chars)
SUBJECT_PREFIX = 12  # hex digits of the subject's HMAC key shown in the table
PROBE_TIMEOUT = 5.0  # seconds to wait for an MLflow server's /health

TAG_SEQ = "governance.mirror.seq"
TAG_ROWS = "governance.mirror.rows"
TAG_UPDATED = "governance.mirror.updated"
TAG_EXPLORER = "governance.explorer"
TAG_VERSION_COUNT = "governance.decisions.count"
TAG_VERSION_TABLE = "governance.decisions.table"
DESCRIPTION_MARK = "Decision explorer (governance):"  # the description line the mirror owns
LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"  # mlflow.utils.mlflow_tags.MLFLOW_LOGGED_ARTIFACTS

COLUMNS = (
    "decision_id",
    "seq",
    "ts",
    "subject",
    "outcome",
    "effective_outcome",
    "score",
    "threshold",
    "top_reason",
    "alias",
    "caller",
    "purpose",
    "observed",
    "hash",
)

ERR_UNAVAILABLE = (
    "MLflow at {uri} is unavailable ({reason}); nothing was mirrored. The ledger keeps every "
    "decision and the next mirror run catches up."
)
ERR_FAILED = (
    "mirroring {model} version {version} to MLflow at {uri} failed ({reason}); the mirror "
    "still ends at ledger seq {seq}. The ledger keeps every decision and the next mirror run "
    "catches up."
)


class MirrorError(RuntimeError):
    """MLflow could not be reached or refused a write; nothing new is recorded as mirrored."""


# -- links ---------------------------------------------------------------------------------


def safe_uri(uri: str) -> str:
    """A tracking URI without credentials, for messages."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


# -- rows (pure) ---------------------------------------------------------------------------


def decision_row(
    decision: Record, reviews: Sequence[Record] = (), observed: str | None = None
) -> dict[str, Any]:
    """One decision as a table row: what it decided and why, without inputs or identities.

    Parameters
    ----------
    decision : Record
        A ``decision`` record.
    reviews : sequence of Record
        Its review events, in ledger order (the last override sets the effective outcome).
    observed : str, optional
        Its last observed outcome (ground truth), if one arrived.
    """
    body = decision.body
    reasons = body.get("reasons") or []
    model = body.get("model") or {}
    subject_key = body.get("subject_key")
    return {
        "decision_id": decision.id,
        "seq": decision.seq,
        "ts": decision.ts,
        "subject": subject_key[:SUBJECT_PREFIX] if subject_key else None,
        "outcome": body["outcome"],
        "effective_outcome": effective_outcome(decision, reviews),
        "score": float(body["score"]),
        "threshold": float(body["threshold"]),
        "top_reason": reasons[0].get("reason") if reasons else None,
        "alias": model.get("alias"),
        "caller": body.get("caller"),
        "purpose": body.get("purpose"),
        "observed": observed,
        "hash": decision.hash,
    }


@dataclass(frozen=True)
class Part:
    """One table file: a run of consecutive decisions of the version, and their counts.

    ``adverse`` counts the model's adverse outcomes (score at or above the threshold);
    ``effective_adverse`` the adverse outcomes after overrides (outcomes are binary, so an
    override to the other label flips it); ``overridden`` the decisions whose effective outcome
    differs from the model's.
    """

    file: str
    first_seq: int
    last_seq: int
    first_ts: str
    rows: int
    adverse: int
    effective_adverse: int
    overridden: int
    with_outcome: int

    @classmethod
    def summarise(cls, file: str, rows: Sequence[Mapping[str, Any]]) -> Part:
        adverse = effective = overridden = observed = 0
        for r in rows:
            model_adverse = r["score"] >= r["threshold"]
            changed = r["effective_outcome"] != r["outcome"]
            adverse += model_adverse
            effective += model_adverse != changed
            overridden += changed
            observed += r["observed"] is not None
        return cls(
            file=file,
            first_seq=int(rows[0]["seq"]),
            last_seq=int(rows[-1]["seq"]),
            first_ts=str(rows[0]["ts"]),
            rows=len(rows),
            adverse=adverse,
            effective_adverse=effective,
            overridden=overridden,
            with_outcome=observed,
        )


def part_file(number: int) -> str:
    """Artifact path of the table part ``number`` (1-based)."""
    return f"{TABLE_DIR}/decisions-{number:05d}.json"


def totals(parts: Sequence[Part]) -> dict[str, Any]:
    """Counts and rates over all parts (rates ``None`` without decisions)."""
    rows = sum(p.rows for p in parts)
    out: dict[str, Any] = {
        "count": rows,
        "adverse": sum(p.adverse for p in parts),
        "effective_adverse": sum(p.effective_adverse for p in parts),
        "overridden": sum(p.overridden for p in parts),
        "with_outcome": sum(p.with_outcome for p in parts),
    }
    out["adverse_rate"] = out["adverse"] / rows if rows else None
    out["effective_adverse_rate"] = out["effective_adverse"] / rows if rows else None
    return out


# -- reading the ledger ----------------------------------------------------------------------


def scan(
    ledger: Ledger,
    *,
    after_seq: int = -1,
    after_ts: str | None = None,
    until_seq: int | None = None,
    page_size: int | None = None,
    **filters: Any,
) -> Iterator[Record]:
    """Records matching ``filters`` (as :meth:`Ledger.find`) with ``after_seq < seq <= until_seq``.

    Pages by time (:func:`governance.ledger.paging.iter_find`). ``after_ts`` must be the
    timestamp of the record at ``after_seq`` (or earlier).
    """
    records = iter_find(ledger, page_size=page_size or PAGE, since=after_ts, **filters)
    for record in records:
        if until_seq is not None and record.seq > until_seq:
            return
        if record.seq > after_seq:
            yield record


@dataclass(frozen=True)
class Cursor:
    """The last ledger event of a version that the mirror holds."""

    seq: int
    ts: str
    hash: str


@dataclass
class Update:
    """What one mirror run writes: table files (in ``directory``), the new parts and cursor."""

    files: list[str]
    parts: list[Part]
    cursor: Cursor
    rows_added: int
    events: int
    directory: Path


def build_update(
    ledger: Ledger,
    model: str,
    version: str,
    parts: Sequence[Part],
    cursor: Cursor | None,
    directory: Path,
    *,
    part_rows: int = PART_ROWS,
) -> Update | None:
    """Bring a version's table up to the ledger's current head; ``None`` if nothing changed.

    Reads the version's events after ``cursor`` (up to the head when called, so what is
    appended meanwhile is left to the next run), finds the parts they change (the last,
    unfilled part and new parts for new decisions; the part of an older decision that was
    overridden or got its outcome) and writes those parts, rebuilt from the ledger, as table
    files into ``directory``. Pure with respect to MLflow. Each decision body is read once
    (a peek tells whether any is new); only overrides and outcomes are read twice.
    """
    until = ledger.size() - 1
    after_seq, after_ts = (cursor.seq, cursor.ts) if cursor else (-1, None)

    def events(
        kind: str, after: tuple[int, str | None], page: int | None = None
    ) -> Iterator[Record]:
        return scan(
            ledger,
            after_seq=after[0],
            after_ts=after[1],
            until_seq=until,
            page_size=page,
            model=model,
            version=version,
            type=kind,
        )

    # Overrides and observed outcomes after the cursor may change rows already mirrored.
    mirrored_to = parts[-1].last_seq if parts else -1
    firsts = [p.first_seq for p in parts]
    dirty: set[int] = set()
    last: Record | None = None  # the newest event that changes a row
    changed = 0
    for kind in ("review", "outcome"):
        for event in events(kind, (after_seq, after_ts)):
            if not _changes_row(event):
                continue
            changed += 1
            if last is None or event.seq > last.seq:
                last = event
            if parts:
                target = ledger.get(str(event.body["decision_id"]))
                if target is not None and target.seq <= mirrored_to:
                    dirty.add(bisect_right(firsts, target.seq) - 1)
    first_new = next(events("decision", (after_seq, after_ts), page=64), None)
    if first_new is None and not changed:
        return None

    # The tail: the last part if it has room, then new parts; rebuilt from its first decision.
    has_room = bool(parts) and parts[-1].rows < part_rows
    tail = len(parts) - 1 if first_new is not None and has_room else len(parts)
    if tail < len(parts):
        tail_after: tuple[int, str | None] = (parts[tail].first_seq - 1, parts[tail].first_ts)
    else:
        tail_after = (after_seq, after_ts)
    old = sorted(i for i in dirty if i < tail)
    starts: list[tuple[int, str | None]] = [
        (parts[i].first_seq - 1, parts[i].first_ts) for i in old
    ]
    if first_new is not None:
        starts.append(tail_after)
    new_parts = list(parts)
    files: list[str] = []
    added = [0]  # decisions after the cursor among the rows written
    if starts:
        reviews, observed = _annotations(
            ledger, model, version, min(starts, key=lambda s: s[0]), until
        )

        def write(number: int, decisions: Iterator[Record], limit: int) -> Part | None:
            rows = []
            for d in decisions:
                rows.append(decision_row(d, reviews.get(d.id, ()), observed.get(d.id)))
                if len(rows) == limit:
                    break
            if not rows:
                return None
            file = part_file(number)
            _write_table(directory / Path(file).name, rows)
            files.append(file)
            added[0] += sum(1 for r in rows if r["seq"] > after_seq)
            return Part.summarise(file, rows)

        for i in old:
            p = parts[i]
            rebuilt = write(i + 1, events("decision", (p.first_seq - 1, p.first_ts)), p.rows)
            if rebuilt is None or rebuilt.last_seq != p.last_seq:
                raise MirrorError(f"the ledger no longer holds the decisions of {p.file}")
            new_parts[i] = rebuilt
        if first_new is not None:
            del new_parts[tail:]
            decisions = events("decision", tail_after)
            while part := write(len(new_parts) + 1, decisions, part_rows):
                new_parts.append(part)
            last_seq = new_parts[-1].last_seq
            if last is None or last_seq > last.seq:
                last = ledger.get_seq(last_seq)
    assert last is not None
    cursor_now = Cursor(last.seq, last.ts, last.hash)
    return Update(files, new_parts, cursor_now, added[0], added[0] + changed, directory)


def _changes_row(record: Record) -> bool:
    """Does this event change a decision's row (an override or an observed outcome)?"""
    if record.type == "outcome":
        return True
    return record.type == "review" and record.body.get("kind") == "override"


def _annotations(
    ledger: Ledger, model: str, version: str, after: tuple[int, str | None], until: int
) -> tuple[dict[str, list[Record]], dict[str, str]]:
    """Reviews by decision and the last observed outcome by decision, after a point."""
    reviews: dict[str, list[Record]] = {}
    observed: dict[str, str] = {}
    for kind in ("review", "outcome"):
        events = scan(
            ledger,
            after_seq=after[0],
            after_ts=after[1],
            until_seq=until,
            model=model,
            version=version,
            type=kind,
        )
        for r in events:
            decision_id = str(r.body["decision_id"])
            if kind == "review":
                reviews.setdefault(decision_id, []).append(r)
            else:
                observed[decision_id] = str(r.body["observed"])
    return reviews, observed


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """A table file in ``MlflowClient.log_table``'s format (pandas ``orient="split"``).

    Written directly: several times faster than through a DataFrame, and scores keep every
    digit (pandas rounds floats to 10 significant digits by default).
    """
    doc = {"columns": list(COLUMNS), "data": [[r[c] for c in COLUMNS] for r in rows]}
    path.write_text(json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


# -- MLflow ----------------------------------------------------------------------------------


def check_available(settings: Settings, timeout: float = PROBE_TIMEOUT) -> None:
    """Fail fast and clearly when the tracking store cannot be reached.

    An HTTP tracking server is asked for ``/health`` once, with a short timeout (MLflow's own
    client retries for minutes); a SQLite store must exist and be readable and writable.
    """
    uri = settings.mlflow_uri
    parts = urlsplit(uri)
    reason: str | None = None
    if parts.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
                r.read()
        except urllib.error.HTTPError as exc:
            reason = f"/health answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", None) or exc)
    elif parts.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            reason = f"no database at {path}"
        elif not os.access(path, os.R_OK | os.W_OK):
            reason = f"cannot read and write {path}"
    if reason is not None:
        raise MirrorError(ERR_UNAVAILABLE.format(uri=safe_uri(uri), reason=reason))


def _mlflow_errors() -> tuple[type[BaseException], ...]:
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    return (
        MlflowException,
        OSError,
        requests.RequestException,
        sqlalchemy.exc.SQLAlchemyError,
        registry.RegistryUnavailable,
    )


def _parts_from(index: Mapping[str, Any] | None) -> tuple[list[Part], Cursor | None]:
    if not index or not index.get("cursor"):
        return [], None
    return [Part(**p) for p in index["parts"]], Cursor(**index["cursor"])


def _usable(
    index: Mapping[str, Any] | None, ledger: Ledger, model: str, version: str, part_rows: int
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The stored index if it still describes this ledger, else ``None`` and why."""
    if index is None:
        return None, None
    if index.get("schema") != SCHEMA or (index.get("model"), index.get("version")) != (
        model,
        version,
    ):
        return None, "the stored mirror index is not this version's; rebuilt"
    if index.get("part_rows") != part_rows:
        return None, f"part size changed from {index.get('part_rows')} to {part_rows}; rebuilt"
    cursor = index.get("cursor")
    if cursor:
        at = ledger.get_seq(int(cursor["seq"]))
        if at is None or at.hash != cursor["hash"]:
            return None, (
                f"the ledger has no record with hash {cursor['hash'][:12]} at seq "
                f"{cursor['seq']} (a different ledger?); rebuilt from the start"
            )
    return index, None


def _read_index(client: Any, run_id: str) -> tuple[dict[str, Any] | None, set[str]]:
    """The stored index (if any) and the artifact paths under ``decisions/``."""
    names = {a.path for a in client.list_artifacts(run_id, TABLE_DIR)}
    if INDEX_FILE not in names:
        return None, names
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, INDEX_FILE, tmp)
        doc: dict[str, Any] = json.loads(Path(path).read_text())
    return doc, names


def _remove_stale(client: Any, run_id: str, names: set[str], parts: Sequence[Part]) -> str | None:
    """Delete table files no longer in the index (after a rebuild); say why if it cannot."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    keep = {p.file for p in parts}
    stale = sorted(n for n in names if n.startswith(f"{TABLE_DIR}/decisions-") and n not in keep)
    if not stale:
        return None
    try:
        repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
        for name in stale:
            repo.delete_artifacts(name)
    except (NotImplementedError, OSError) as exc:
        log.warning("cannot delete stale mirror files %s: %s", stale, exc)
        return f"stale files not in the index left in place: {', '.join(stale)}"
    return None


def _table_tag(current: str | None, parts: Sequence[Part]) -> str:
    """``mlflow.loggedArtifacts`` with the newest parts as tables (others' entries kept)."""
    try:
        entries = json.loads(current) if current else []
    except json.JSONDecodeError:
        entries = []
    prefix = f"{TABLE_DIR}/decisions-"
    kept = [e for e in entries if not str(e.get("path", "")).startswith(prefix)]
    newest = [{"path": p.file, "type": "table"} for p in parts[-TABLE_TAG_LIMIT:]]
    return json.dumps(kept + newest)


def _index_doc(
    model: str,
    version: str,
    run_id: str,
    parts: Sequence[Part],
    cursor: Cursor | None,
    part_rows: int,
    explorer: str,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "model": model,
        "version": version,
        "run_id": run_id,
        "cursor": asdict(cursor) if cursor else None,
        "part_rows": part_rows,
        "columns": list(COLUMNS),
        "parts": [asdict(p) for p in parts],
        "totals": totals(parts),
        "updated": utc_now(),
        "explorer": explorer,
        "source": "the decision ledger (authoritative); this is a copy for the MLflow UI",
    }


def _sync_run(client: Any, run_id: str, index: Mapping[str, Any], force: bool) -> bool:
    """Set the run's tags and metrics from the index where they differ. True if it wrote."""
    from mlflow.entities import Metric, RunTag

    parts, cursor = _parts_from(index)
    run = client.get_run(run_id)
    if cursor is None and TAG_SEQ not in run.data.tags:
        return False  # never mirrored, nothing to mirror
    seq = cursor.seq if cursor else -1
    t = totals(parts)
    tags = {
        TAG_SEQ: str(seq),
        TAG_ROWS: str(t["count"]),
        LOGGED_ARTIFACTS: _table_tag(run.data.tags.get(LOGGED_ARTIFACTS), parts),
    }
    stale = {k: v for k, v in tags.items() if run.data.tags.get(k) != v}
    metrics = {
        "decisions.count": float(t["count"]),
        "decisions.overridden": float(t["overridden"]),
        "decisions.with_outcome": float(t["with_outcome"]),
    }
    if t["count"]:
        metrics["decisions.adverse_rate"] = float(t["adverse_rate"])
        metrics["decisions.effective_adverse_rate"] = float(t["effective_adverse_rate"])
    metrics_stale = any(run.data.metrics.get(k) != v for k, v in metrics.items())
    if not (force or stale or metrics_stale):
        return False
    now = int(time.time() * 1000)
    stale[TAG_UPDATED] = str(index["updated"])
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, max(seq, 0)) for k, v in metrics.items()],
        tags=[RunTag(k, v) for k, v in stale.items()],
    )
    return True


def description_with_link(description: str | None, explorer_url: str) -> str:
    """A version description with its explorer link line (added or replaced, nothing else).

    MLflow renders a version's description as Markdown, so the link is clickable on the version
    page (tag values are plain text). Only the line starting with :data:`DESCRIPTION_MARK` is
    ours; whatever else the description says is kept as it is.
    """
    lines = [
        line for line in (description or "").splitlines() if not line.startswith(DESCRIPTION_MARK)
    ]
    while lines and not lines[-1].strip():
        lines.pop()
    ours = (
        f"{DESCRIPTION_MARK} [this version's decisions]({explorer_url}); "
        f"a copy as tables is in the source run's artifacts, `{TABLE_DIR}/`."
    )
    return "\n\n".join(filter(None, ["\n".join(lines), ours]))


def _sync_version(
    client: Any, model: str, version: str, index: Mapping[str, Any] | None, explorer_url: str
) -> bool:
    """Set the model version's explorer link (tag and description line) and decisions count."""
    found = client.get_model_version(model, version)
    current = dict(found.tags)
    wanted = {TAG_EXPLORER: explorer_url}
    if index and index.get("cursor"):
        wanted[TAG_VERSION_COUNT] = str(totals(_parts_from(index)[0])["count"])
        wanted[TAG_VERSION_TABLE] = f"runs:/{index['run_id']}/{TABLE_DIR}"
    wrote = False
    for key, value in wanted.items():
        if current.get(key) != value:
            client.set_model_version_tag(model, version, key, value)
            wrote = True
    description = description_with_link(found.description, explorer_url)
    if description != (found.description or ""):
        client.update_model_version(model, version, description=description)
        wrote = True
    return wrote


# -- local record ------------------------------------------------------------------------------


def state_path(settings: Settings, model: str, version: str) -> Path:
    """Where this machine records what it last mirrored of a version."""
    return (
        settings.home / "mirror" / quote(model, safe="") / f"v{quote(str(version), safe='')}.json"
    )


def local_state(settings: Settings, model: str, version: str) -> dict[str, Any] | None:
    """The local record of the last successful mirror of a version, if any."""
    path = state_path(settings, model, version)
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _save_local(settings: Settings, model: str, version: str, doc: Mapping[str, Any]) -> None:
    path = state_path(settings, model, version)
    wanted = {k: doc[k] for k in ("model", "version", "run_id", "cursor", "rows", "tracking_uri")}
    previous = local_state(settings, model, version)
    if previous is not None and {k: previous.get(k) for k in wanted} == wanted:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**wanted, "updated": utc_now()}, indent=2, sort_keys=True))
    os.replace(tmp, path)


@contextmanager
def _version_lock(settings: Settings, model: str, version: str) -> Iterator[bool]:
    """A non-blocking per-version lock on this machine: True if this run holds it."""
    path = state_path(settings, model, version).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- mirroring -------------------------------------------------------------------------------


def mirror_version(
    settings: Settings,
    model: str,
    version: str | int,
    *,
    part_rows: int = PART_ROWS,
    explorer: str | None = None,
    ledger: Ledger | None = None,
) -> dict[str, Any]:
    """Mirror one registered version's decisions from the ledger to its MLflow training run.

    Parameters
    ----------
    settings : Settings
        Where the ledger and the tracking store are.
    model, version
        The registered model version.
    part_rows : int
        Decisions per table file.
    explorer : str, optional
        The explorer's base URL (default ``GOVERNANCE_EXPLORER_URL`` or
        ``http://127.0.0.1:8080``).
    ledger : Ledger, optional
        An open ledger to read (default: open the configured one).

    Returns
    -------
    dict
        ``status`` (``updated``, ``unchanged``, ``empty`` or ``busy``), ``wrote`` (whether
        anything was written to MLflow), ``rows_added``, ``files`` written, ``rows`` in the
        mirror, ``cursor``, ``totals``, ``run_id``, ``experiment_id``, ``explorer`` and
        ``note`` (why the mirror was rebuilt, if it was).

    Raises
    ------
    MirrorError
        MLflow is unavailable or refused a write. Nothing new is recorded as mirrored (the
        cursor in MLflow and on disk stay where they were).
    LookupError
        The model version is not registered.
    """
    version = str(version)
    base = (explorer or explorer_base()).rstrip("/")
    with _version_lock(settings, model, version) as held:
        if not held:
            return {
                "model": model,
                "version": version,
                "status": "busy",
                "wrote": False,
                "rows_added": 0,
                "note": "another mirror run of this version is in progress on this machine",
            }
        check_available(settings)
        own = ledger is None
        opened = ledger or Ledger.open(settings.ledger_url, home=settings.home)
        try:
            return _mirror(settings, opened, model, version, part_rows, base)
        finally:
            if own:
                opened.close()


def _mirror(
    settings: Settings, ledger: Ledger, model: str, version: str, part_rows: int, base: str
) -> dict[str, Any]:
    errors = _mlflow_errors()
    uri = settings.mlflow_uri
    seq: int | str = "(none)"
    try:
        with registry.tracking(settings) as client:
            run_id = _version_run(client, model, version)
            raw, names = _read_index(client, run_id)
            stored, note = _usable(raw, ledger, model, version, part_rows)
            parts, cursor = _parts_from(stored)
            seq = cursor.seq if cursor else "(none)"
            with tempfile.TemporaryDirectory(prefix="governance-mirror-") as tmp:
                update = build_update(
                    ledger, model, version, parts, cursor, Path(tmp), part_rows=part_rows
                )
                index = stored
                rewrite = update is not None or (raw is not None and stored is None)
                if rewrite:  # new events, or a stale mirror to reset
                    index = _index_doc(
                        model,
                        version,
                        run_id,
                        update.parts if update else [],
                        update.cursor if update else None,
                        part_rows,
                        explorer_version_url(model, version, base=base),
                    )
                    if update is not None and update.files:
                        client.log_artifacts(run_id, tmp, TABLE_DIR)
                    index_path = Path(tmp) / "index.json"
                    index_path.write_text(json.dumps(index, indent=2, sort_keys=True))
                    client.log_artifact(run_id, str(index_path), TABLE_DIR)  # the commit point
                    left = _remove_stale(client, run_id, names, _parts_from(index)[0])
                    note = "; ".join(filter(None, [note, left])) or None
            wrote = rewrite
            wrote |= _sync_run(client, run_id, index, force=rewrite) if index else False
            wrote |= _sync_version(
                client, model, version, index, explorer_version_url(model, version, base=base)
            )
            experiment_id = str(client.get_run(run_id).info.experiment_id)
    except errors as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise MirrorError(
            ERR_FAILED.format(
                model=model, version=version, uri=safe_uri(uri), reason=reason, seq=seq
            )
        ) from exc
    parts, cursor = _parts_from(index)
    files = update.files if update else []
    doc: dict[str, Any] = {
        "model": model,
        "version": version,
        "status": "updated" if update is not None else ("unchanged" if cursor else "empty"),
        "wrote": wrote,
        "rows_added": update.rows_added if update else 0,
        "events": update.events if update else 0,
        "files": files,
        "rows": sum(p.rows for p in parts),
        "parts": len(parts),
        "cursor": asdict(cursor) if cursor else None,
        "totals": totals(parts),
        "run_id": run_id,
        "experiment_id": experiment_id,
        "artifacts": f"runs:/{run_id}/{TABLE_DIR}",
        "explorer": explorer_version_url(model, version, base=base),
        "tracking_uri": safe_uri(uri),
        "note": note,
    }
    if cursor is not None or rewrite:
        _save_local(settings, model, version, doc)
    if update is not None:
        log.info(
            "mirrored %s v%s: %d new decisions, %d files, cursor seq %d",
            model,
            version,
            doc["rows_added"],
            len(files),
            cursor.seq if cursor else -1,
        )
    return doc


def _version_run(client: Any, model: str, version: str) -> str:
    return str(registry.version_info(client, model, version).run_id)


def mirror_model(
    settings: Settings,
    model: str,
    *,
    versions: Sequence[str | int] | None = None,
    part_rows: int = PART_ROWS,
    explorer: str | None = None,
) -> dict[str, Any]:
    """Mirror every registered version of a model that has decisions (or the given versions).

    Every registered version gets its ``governance.explorer`` tag, with decisions or not.

    Returns
    -------
    dict
        ``model``, ``explorer`` (the model's explorer page), ``rows_added`` over all versions,
        ``versions`` (one :func:`mirror_version` result each) and ``without_decisions``.

    Raises
    ------
    MirrorError, LookupError
        As :func:`mirror_version`; the first failing version stops the run.
    """
    base = (explorer or explorer_base()).rstrip("/")
    check_available(settings)
    uri = settings.mlflow_uri
    try:
        with registry.tracking(settings) as client:
            escaped = model.replace("'", "\\'")
            registered = sorted(
                {str(v.version) for v in client.search_model_versions(f"name = '{escaped}'")},
                key=int,
            )
    except _mlflow_errors() as exc:
        raise MirrorError(
            ERR_UNAVAILABLE.format(uri=safe_uri(uri), reason=str(exc).splitlines()[0][:300])
        ) from exc
    if not registered:
        raise registry.ModelNotFound(model)
    results = []
    without = []
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        chosen = [str(v) for v in versions] if versions else registered
        for v in chosen:
            if not versions and not ledger.find(model=model, version=v, type="decision", limit=1):
                without.append(v)
                continue
            results.append(
                mirror_version(
                    settings, model, v, part_rows=part_rows, explorer=base, ledger=ledger
                )
            )
    if without:
        try:
            with registry.tracking(settings) as client:
                for v in without:
                    _sync_version(client, model, v, None, explorer_version_url(model, v, base=base))
        except _mlflow_errors() as exc:
            raise MirrorError(
                ERR_UNAVAILABLE.format(uri=safe_uri(uri), reason=str(exc).splitlines()[0][:300])
            ) from exc
    return {
        "model": model,
        "explorer": explorer_model_url(model, base=base),
        "rows_added": sum(int(r["rows_added"]) for r in results),
        "versions": results,
        "without_decisions": without,
    }


def read_mirror(settings: Settings, model: str, version: str | int) -> tuple[dict[str, Any], Any]:
    """What MLflow holds for a version: its index and all its table parts as one DataFrame.

    Reads the parts with ``MlflowClient.load_table``, as any MLflow user would.
    """
    import pandas as pd

    version = str(version)
    with registry.tracking(settings) as client:
        run_id = _version_run(client, model, version)
        index, _ = _read_index(client, run_id)
        if index is None:
            return {}, pd.DataFrame(columns=list(COLUMNS))
        experiment_id = client.get_run(run_id).info.experiment_id
        frames = [
            client.load_table(experiment_id, p["file"], run_ids=[run_id]) for p in index["parts"]
        ]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    return index, frame


def summary(doc: Mapping[str, Any]) -> str:
    """One line per version of a :func:`mirror_model` result, for the CLI."""
    lines = []
    for v in doc["versions"]:
        if v["status"] == "busy":
            lines.append(f"{doc['model']} v{v['version']}: skipped, {v['note']}")
            continue
        rate = v["totals"]["adverse_rate"]
        rate_text = f", adverse rate {rate:.3f}" if rate is not None else ""
        seq = v["cursor"]["seq"] if v["cursor"] else "-"
        lines.append(
            f"{doc['model']} v{v['version']}: {v['status']}, +{v['rows_added']} decisions, "
            f"{v['rows']} in MLflow run {v['run_id']} ({v['artifacts']}){rate_text}; "
            f"ledger seq {seq}" + (f" ({v['note']})" if v.get("note") else "")
        )
    if doc["without_decisions"]:
        lines.append(f"versions without decisions: {', '.join(doc['without_decisions'])}")
    lines.append(f"explorer: {doc['explorer']}")
    return "\n".join(lines)
