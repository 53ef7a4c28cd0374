"""OpenLineage events of the pipeline's stage runs, sent through openlineage-python's transport.

The stage runner wraps every stage run, from ``dvc repro`` (``governance stage ... --via dvc``)
and from a Dagster materialisation alike, in :func:`stage_run`: a START event when the stage
begins (its inputs with their md5s), then COMPLETE (outputs with md5s, schemas, row counts, the
GX result as data-quality assertions, the registered model version) or FAIL (the error, or the
gate's verdict). The events themselves are built by :mod:`governance.core.openlineage`.

Where events go (:func:`clients`):

* always, one JSON line per event appended to ``<home>/openlineage/events.jsonl``
  (``GOVERNANCE_OPENLINEAGE_LOG`` moves it; :class:`EventLog`, the client's file transport made
  safe for concurrent stages and torn lines): the PROV documents and evidence packs read it;
* also, when openlineage-python is configured, where its own configuration says: ``OPENLINEAGE_URL``
  (HTTP, e.g. Marquez at ``http://localhost:5000`` or DataHub's ``/openapi/openlineage/``
  endpoint, with ``OPENLINEAGE_ENDPOINT`` and ``OPENLINEAGE_API_KEY``), ``OPENLINEAGE_CONFIG``
  or an ``openlineage.yml`` (any transport, a composite of several), ``OPENLINEAGE__TRANSPORT__*``
  variables; ``OPENLINEAGE_DISABLED=true`` sends nothing.

``OPENLINEAGE_NAMESPACE`` names the jobs' namespace (default ``governance``). A transport that
fails (a catalogue that is down) is logged as a warning and never fails the stage: the lineage of
record is the registry's and the ledger's.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport

from governance.core import openlineage as ol
from governance.core.lineage import code_url, git_state, params_hash, without_credentials
from governance.settings import Settings

log = logging.getLogger(__name__)

CONFIG_VARIABLES = ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED")
CONFIG_FILE = "openlineage.yml"
SCHEMA_SAMPLE_ROWS = 10_000  # column types are read from the first rows of a CSV
WARN_NOT_EMITTED = "OpenLineage %s event of stage %s not sent: %s"
WARN_NO_LOG = "OpenLineage event log %s cannot be written: %s"


def configured(env: Mapping[str, str], cwd: Path) -> bool:
    """Whether openlineage-python's own configuration names a transport."""
    if any(env.get(k) for k in CONFIG_VARIABLES):
        return True
    if any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env):
        return True
    return (cwd / CONFIG_FILE).is_file() or (Path.home() / ".openlineage" / CONFIG_FILE).is_file()


def clients(
    settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[OpenLineageClient, ...]:
    """Where the events go: the event log under the home, always (the PROV documents and the
    evidence packs name the runs it records), and the transport openlineage-python's own
    configuration names, if any (a catalogue). ``OPENLINEAGE_DISABLED=true``: nowhere."""
    env = os.environ if env is None else env
    if env.get("OPENLINEAGE_DISABLED", "").lower().strip() == "true":
        return ()
    out: list[OpenLineageClient] = []
    try:
        settings.openlineage_log.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # like a transport that fails: a warning, never a failed stage
        log.warning(WARN_NO_LOG, settings.openlineage_log, exc)
    else:
        transport = EventLog(FileConfig(str(settings.openlineage_log), append=True))
        out.append(OpenLineageClient(transport=transport))
    if configured(env, Path.cwd()):
        out.append(OpenLineageClient())
    return tuple(out)


TORN_SUFFIX = ".torn"


class EventLog(FileTransport):
    """The client's file transport, safe for several stage processes and for a crash mid-line.

    Each event is one append under an exclusive lock on the log. A line a killed writer left
    unfinished (the log does not end with a newline while no writer holds the lock) is moved
    to ``<log>.torn``, kept but out of the log, before the next event is written: appended to,
    it would run into that event and make a line no reader can parse, for good.
    """

    def emit(self, event: Any) -> None:
        """Append ``event`` as one JSON line (after setting aside a torn last line)."""
        line = (Serde.to_json(event) + "\n").encode()
        path = Path(self.config.log_file_path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)  # as open(): umask
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _set_aside_torn_line(fd, path)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)  # releases the lock


def _set_aside_torn_line(fd: int, path: Path, block: int = 1 << 16) -> None:
    """Move what follows the log's last newline (an unfinished line) to ``<path>.torn``."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = size
    while start > 0:
        at = max(0, start - block)
        newline = os.pread(fd, start - at, at).rfind(b"\n")
        if newline >= 0:
            start = at + newline + 1
            break
        start = at
    torn = os.pread(fd, size - start, start)
    with Path(f"{path}{TORN_SUFFIX}").open("ab") as kept:
        kept.write(torn + b"\n")
        kept.flush()
        os.fsync(kept.fileno())
    os.ftruncate(fd, start)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def file_dataset(path: Path, *, assertions: Sequence[Mapping[str, Any]] = ()) -> ol.DatasetRef:
    """A file as an OpenLineage dataset: its md5 (as DVC records it), size, rows and schema.

    A file that does not exist (yet) is named without a version.
    """
    name = str(path.resolve())
    if not path.is_file():
        return ol.DatasetRef(ol.FILE_NAMESPACE, name)
    md5 = hashlib.md5()
    lines = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
            lines += chunk.count(b"\n")
    rows = columns = None
    if path.suffix == ".csv":
        rows = max(lines - 1, 0)  # the header; pipeline CSVs hold no quoted newlines
        try:
            columns = ol.schema_of(pd.read_csv(path, nrows=SCHEMA_SAMPLE_ROWS))
        except (ValueError, pd.errors.ParserError):  # empty, not UTF-8, not a CSV: no schema,
            columns = None  # and the stage that reads the file says what is wrong with it
    return ol.DatasetRef(
        ol.FILE_NAMESPACE,
        name,
        version=md5.hexdigest(),
        size=path.stat().st_size,
        rows=rows,
        columns=columns or (),
        assertions=tuple(assertions),
    )


@dataclass
class StageRunEvents:
    """One stage run being observed; the runner fills in what the stage produced."""

    emitters: tuple[OpenLineageClient, ...]
    run: ol.StageRun
    output_paths: tuple[Path, ...]
    assertions: dict[Path, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    model: ol.DatasetRef | None = None
    mlflow_run_id: str | None = None
    failed: str | None = None

    def emit(self, event_type: ol.EventType, error: str | None = None) -> None:
        """Send one event of this run everywhere; a transport failure is logged, never raised."""
        event = ol.run_event(self.run, event_type, _now(), error=error)
        for emitter in self.emitters:
            try:
                emitter.emit(event)
            except Exception as exc:  # a catalogue that is down must not fail the pipeline
                log.warning(WARN_NOT_EMITTED, event_type, self.run.stage, exc)

    def finish(self) -> None:
        """COMPLETE with the outputs as written (or FAIL if the stage reported a failure)."""
        outputs = tuple(file_dataset(p) for p in self.output_paths)
        if self.model is not None:
            outputs += (self.model,)
        inputs = tuple(
            replace(i, assertions=self.assertions.get(Path(i.name), i.assertions))
            for i in self.run.inputs
        )
        self.run = replace(
            self.run, inputs=inputs, outputs=outputs, mlflow_run_id=self.mlflow_run_id
        )
        if self.failed is not None:
            self.emit("FAIL", self.failed)
        else:
            self.emit("COMPLETE")


@contextmanager
def stage_run(
    settings: Settings,
    *,
    root: Path,
    params: Mapping[str, Any],
    stage: str,
    code_path: str,
    context: Mapping[str, str] | None,
    inputs: Sequence[Path],
    outputs: Sequence[Path],
) -> Iterator[StageRunEvents]:
    """Emit START now; COMPLETE or FAIL when the block ends (FAIL with the error it raised).

    Parameters
    ----------
    settings
        Where the default event log lives.
    root
        The project (its git state and remote name the code).
    params
        The parameters the stage runs with (their hash is a run facet).
    stage
        The stage's name, which is also the job's name for DVC and Dagster alike.
    code_path
        The stage's code, relative to the project.
    context
        What runs the stage: ``{"source": "dvc"|"dagster"|"cli", "id": dagster run id}``.
    inputs, outputs
        The files the stage reads and writes.
    """
    context = dict(context or {"source": "cli"})
    via = context.get("source", "cli")
    git = git_state(root)
    run = ol.StageRun(
        stage=stage,
        run_id=str(uuid.uuid4()),
        via=via if via in ("dvc", "dagster") else "cli",  # type: ignore[arg-type]
        params_hash=params_hash(dict(params)),
        git_commit=git.commit,
        git_dirty=git.dirty,
        code_url=code_url(root),
        code_path=code_path,
        namespace=os.environ.get("OPENLINEAGE_NAMESPACE") or ol.DEFAULT_NAMESPACE,
        dagster_run_id=context.get("id") if via == "dagster" else None,
        dagster_version=metadata.version("dagster") if via == "dagster" else None,
        inputs=tuple(file_dataset(p) for p in inputs),
        outputs=tuple(ol.DatasetRef(ol.FILE_NAMESPACE, str(p.resolve())) for p in outputs),
    )
    events = StageRunEvents(clients(settings), run, tuple(outputs))
    events.emit("START")
    try:
        yield events
    except BaseException as exc:
        events.failed = f"{type(exc).__name__}: {exc}"
        events.emit("FAIL", events.failed)
        raise
    events.finish()


def model_dataset(settings: Settings, name: str, version: str) -> ol.DatasetRef:
    """A registered model version as an OpenLineage dataset (namespace: the registry's URI)."""
    return ol.DatasetRef(
        without_credentials(settings.mlflow_uri), name, version=str(version), kind="MODEL"
    )
