"""MLflow's side of the mirror: availability, the run's table index and tags, the version's
tags and description."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from governance.core.lineage import without_credentials as safe_uri
from governance.ledger import Ledger, utc_now
from governance.lifecycle.mirror.rows import (
    COLUMNS,
    INDEX_FILE,
    SCHEMA,
    TABLE_DIR,
    Cursor,
    MirrorError,
    Part,
    totals,
)
from governance.registry import mlflow as registry
from governance.settings import Settings

log = logging.getLogger(__name__)

TABLE_TAG_LIMIT = 50  # newest parts registered as tables (MLflow tag values hold 8,000 chars)
PROBE_TIMEOUT = 5.0  # seconds to wait for an MLflow server's /health

TAG_SEQ = "governance.mirror.seq"
TAG_ROWS = "governance.mirror.rows"
TAG_UPDATED = "governance.mirror.updated"
TAG_EXPLORER = "governance.explorer"
TAG_VERSION_COUNT = "governance.decisions.count"
TAG_VERSION_TABLE = "governance.decisions.table"
DESCRIPTION_MARK = "Decision explorer (governance):"  # the description line the mirror owns
LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"  # mlflow.utils.mlflow_tags.MLFLOW_LOGGED_ARTIFACTS

ERR_UNAVAILABLE = (
    "MLflow at {uri} is unavailable ({reason}); nothing was mirrored. The ledger keeps every "
    "decision and the next mirror run catches up."
)
ERR_FAILED = (
    "mirroring {model} version {version} to MLflow at {uri} failed ({reason}); the mirror "
    "still ends at ledger seq {seq}. The ledger keeps every decision and the next mirror run "
    "catches up."
)


# -- links ---------------------------------------------------------------------------------


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


def mlflow_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable or failing MLflow raises (caught as one kind of failure)."""
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


def parts_from(index: Mapping[str, Any] | None) -> tuple[list[Part], Cursor | None]:
    """The parts and the cursor a stored index records (none for no index)."""
    if not index or not index.get("cursor"):
        return [], None
    return [Part(**p) for p in index["parts"]], Cursor(**index["cursor"])


def usable(
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


def read_index(client: Any, run_id: str) -> tuple[dict[str, Any] | None, set[str]]:
    """The stored index (if any) and the artifact paths under ``decisions/``."""
    names = {a.path for a in client.list_artifacts(run_id, TABLE_DIR)}
    if INDEX_FILE not in names:
        return None, names
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, INDEX_FILE, tmp)
        doc: dict[str, Any] = json.loads(Path(path).read_text())
    return doc, names


def remove_stale(client: Any, run_id: str, names: set[str], parts: Sequence[Part]) -> str | None:
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


def index_doc(
    model: str,
    version: str,
    run_id: str,
    parts: Sequence[Part],
    cursor: Cursor | None,
    part_rows: int,
    explorer: str,
) -> dict[str, Any]:
    """The index of a version's mirror: parts, cursor, totals, ledger identity."""
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


def sync_run(client: Any, run_id: str, index: Mapping[str, Any], force: bool) -> bool:
    """Set the run's tags and metrics from the index where they differ. True if it wrote."""
    from mlflow.entities import Metric, RunTag

    parts, cursor = parts_from(index)
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


def sync_version(
    client: Any, model: str, version: str, index: Mapping[str, Any] | None, explorer_url: str
) -> bool:
    """Set the model version's explorer link (tag and description line) and decisions count."""
    found = client.get_model_version(model, version)
    current = dict(found.tags)
    wanted = {TAG_EXPLORER: explorer_url}
    if index and index.get("cursor"):
        wanted[TAG_VERSION_COUNT] = str(totals(parts_from(index)[0])["count"])
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


def version_run(client: Any, model: str, version: str) -> str:
    """The training run of a registered version (raises the adapter's typed errors)."""
    return str(registry.version_info(client, model, version).run_id)
