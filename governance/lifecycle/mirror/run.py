"""Mirroring a version or a whole model: the local record of what was mirrored, the lock, the
run itself and its summary."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from governance.ledger import Ledger, utc_now
from governance.lifecycle.mirror.rows import (
    COLUMNS,
    PART_ROWS,
    TABLE_DIR,
    MirrorError,
    build_update,
    totals,
)
from governance.lifecycle.mirror.sync import (
    ERR_FAILED,
    ERR_UNAVAILABLE,
    check_available,
    index_doc,
    mlflow_errors,
    parts_from,
    read_index,
    remove_stale,
    safe_uri,
    sync_run,
    sync_version,
    usable,
    version_run,
)
from governance.registry import mlflow as registry
from governance.settings import Settings, explorer_base, explorer_model_url, explorer_version_url

log = logging.getLogger(__name__)

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
    errors = mlflow_errors()
    uri = settings.mlflow_uri
    seq: int | str = "(none)"
    try:
        with registry.tracking(settings) as client:
            run_id = version_run(client, model, version)
            raw, names = read_index(client, run_id)
            stored, note = usable(raw, ledger, model, version, part_rows)
            parts, cursor = parts_from(stored)
            seq = cursor.seq if cursor else "(none)"
            with tempfile.TemporaryDirectory(prefix="governance-mirror-") as tmp:
                update = build_update(
                    ledger, model, version, parts, cursor, Path(tmp), part_rows=part_rows
                )
                index = stored
                rewrite = update is not None or (raw is not None and stored is None)
                if rewrite:  # new events, or a stale mirror to reset
                    index = index_doc(
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
                    left = remove_stale(client, run_id, names, parts_from(index)[0])
                    note = "; ".join(filter(None, [note, left])) or None
            wrote = rewrite
            wrote |= sync_run(client, run_id, index, force=rewrite) if index else False
            wrote |= sync_version(
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
    parts, cursor = parts_from(index)
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
    except mlflow_errors() as exc:
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
                    sync_version(client, model, v, None, explorer_version_url(model, v, base=base))
        except mlflow_errors() as exc:
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
        run_id = version_run(client, model, version)
        index, _ = read_index(client, run_id)
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
