"""The ``governance`` command's shared pieces: the Typer app, options and error handling.

Errors are one line on stderr (``error: ...``) and a non-zero exit; ``--json`` prints one JSON
document on stdout.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from governance.core.files import replacing
from governance.ledger import LedgerError

if TYPE_CHECKING:
    from governance.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    help="Auditable ML lifecycle: governed pipeline, lineage and decision ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stage_app = typer.Typer(help="Pipeline stages (dvc.yaml calls these).", no_args_is_help=True)
app.add_typer(stage_app, name="stage")

EXIT_FAILED = 1  # a gate failed or the request could not be carried out
EXIT_CANNOT_CHECK = 2  # verification inputs missing, empty, foreign or unreadable
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    RuntimeError,
    LookupError,
    FileNotFoundError,
    KeyError,
    LedgerError,
)
_UNCAUGHT_BUT_EXPECTED: tuple[type[Exception], ...] = (*EXPECTED_ERRORS, OSError)


def main() -> None:
    """The ``governance`` command: :data:`app`, with an expected error that no command caught
    (a malformed setting, a path that is a folder, a port in use) as one line, not a traceback.

    Anything else (a bug) keeps its traceback. SIGTERM unwinds the command first, as an
    exception, so its clean-up runs (a file being written whole is removed, a temporary folder
    too, a stage run reports FAIL); the process then ends by SIGTERM as before. Commands that
    run until stopped (``checkpoint --every``) handle it themselves.
    """
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except _UNCAUGHT_BUT_EXPECTED as exc:
        typer.echo(f"error: {printable(_message(exc))}", err=True)
        raise SystemExit(EXIT_FAILED) from None
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise


class Terminated(SystemExit):
    """SIGTERM, raised where the main thread was, so that ``finally`` blocks run."""


def _terminated(signum: int, frame: object) -> NoReturn:
    raise Terminated(128 + signum)


def _message(exc: Exception) -> str:
    return f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: <message>`` on stderr, on one line (what a caller gave may be in it: its
    control characters are escaped, :func:`printable`), and exit with ``code``."""
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(code)


def positive_seconds(value: float | None, flag: str) -> None:
    """Exit 1 unless ``value`` is ``None`` or a finite number of seconds above 0 (``nan``
    passed a plain ``<= 0`` test and made a waiting loop spin; ``inf`` overflowed a clock)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        fail(f"{flag} must be a positive number of seconds, not {value}")


def guard(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; an expected error becomes one line on stderr and exit status 1."""
    try:
        return fn()
    except EXPECTED_ERRORS as exc:
        fail(_message(exc))


ProjectOpt = Annotated[
    Path | None, typer.Option("--project", help="Project directory (default: current directory).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


_ESCAPES = (
    {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]}
    | {
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
    }
    | {i: f"\\u{i:04x}" for i in [*range(0x80, 0xA0), 0x2028, 0x2029]}
)


def printable(value: Any) -> str:
    """Text recorded from callers, safe on one terminal line: control characters escaped.

    A subject id or purpose holding a newline must never forge a line of CLI output.
    """
    return str(value).translate(_ESCAPES)


def emit(doc: Any) -> None:
    """Print a JSON document on stdout."""
    typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str, allow_nan=False))


def service(project: Path | None) -> Any:
    """The decision service on the configured ledger and registry (close it when done)."""
    from governance.decisions.service import DecisionService
    from governance.settings import Settings

    return guard(lambda: DecisionService.open(Settings.resolve(project)))


def ledger(project: Path | None) -> Any:
    """Just the ledger (no registry, no model code): for prove, find, export, forget.

    A missing ledger is an error and nothing is created: only what records decisions (the
    decision service, the pipeline) creates one, so a mistyped location or PostgreSQL schema
    never becomes a new, empty ledger that answers "nothing found".
    """
    from governance.ledger.shards import open_ledger
    from governance.settings import Settings

    settings = Settings.resolve(project)
    return guard(lambda: open_ledger(settings.ledger_url, home=settings.home, create=False))


def output_file(
    path: Path,
    project: Path | None,
    *,
    what: str = "OUT",
    parents: bool = False,
    state_dir: bool = False,
) -> None:
    """Exit 1, before anything is read, recorded or written, unless ``path`` can be written.

    Refused, each with one line naming ``what`` (the argument or option): no file name
    (``""``, ``/``, ``..``); the ledger's or MLflow's SQLite database (or its ``-wal``,
    ``-shm``, ``-journal``), the model-signing keys and anything inside the state directory,
    however the path gets there (``..``, symbolic links), so an output never replaces the
    ledger; an existing entry that is not a regular file (a folder, a device such as /dev/full,
    a FIFO); a parent folder that does not exist or cannot be written. With ``state_dir``, files
    in the state directory are allowed, except those databases and keys and the ``keys``
    folder. With ``parents``, missing parent folders may be created later: the nearest one
    that exists must be a writable folder.
    """
    from governance.settings import Settings

    shown = f"{what} {printable(path)}"
    settings = guard(lambda: Settings.resolve(project))
    try:
        problem = _output_problem(path, settings, parents=parents, state_dir=state_dir)
    except (OSError, RuntimeError) as exc:  # a name too long, a symbolic link loop ...
        problem = str(exc)
    if problem:
        fail(f"{shown}: {problem}")


def _output_problem(
    path: Path, settings: Settings, *, parents: bool, state_dir: bool
) -> str | None:
    if path.name in ("", ".."):
        return "not a file name"
    target = path.resolve()
    protected = {settings.signing_key: "model-signing key", settings.signing_public_key: "key"}
    for url, kind in ((settings.ledger_url, "ledger"), (settings.mlflow_uri, "MLflow database")):
        db = _sqlite_file(url)
        if db is not None:
            for end in ("", "-wal", "-shm", "-journal"):
                protected[db.with_name(db.name + end)] = kind
    if target in protected:
        return f"is this project's {protected[target]}: refusing to overwrite it"
    fenced = settings.home / "keys" if state_dir else settings.home
    if target.is_relative_to(fenced):
        where = "key folder" if state_dir else "state directory"
        return f"is inside the {where} {printable(fenced)}: refusing to write there"
    if path.is_dir():
        return "is a directory"
    if path.exists() and not path.is_file():
        return "exists and is not a regular file"
    folder = target.parent
    while parents and not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.exists():
        return f"directory {printable(folder)} does not exist"
    if not folder.is_dir():
        return f"{printable(folder)} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write in {printable(folder)}"
    return None


def write_whole(out: Path, write: Callable[[Path], T]) -> T:
    """Write ``out`` whole or not at all: ``write(tmp)`` fills a temporary file beside it, which
    is then renamed into place; the temporary file never stays behind. Returns what ``write``
    returned.

    Raises
    ------
    OSError
        If the file cannot be written (``out`` is then untouched).
    """
    with replacing(out) as tmp:
        return write(tmp)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///path?options`` or a plain path), else ``None``."""
    if url.startswith("sqlite://"):
        text = url[len("sqlite://") :].partition("?")[0]
        if text.startswith("//"):  # sqlite:////abs/path, as the ledger reads it
            text = "/" + text.lstrip("/")
    elif "://" in url:
        return None
    else:
        text = url
    return Path(text).resolve() if text else None
