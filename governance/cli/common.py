"""The ``governance`` command's shared pieces: the Typer app, options and error handling.

Errors are one line on stderr (``error: ...``) and a non-zero exit; ``--json`` prints one JSON
document on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from governance.ledger import LedgerError

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


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def guard(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; an expected error becomes one line on stderr and exit status 1."""
    try:
        return fn()
    except EXPECTED_ERRORS as exc:
        fail(str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}")


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


def ledger(project: Path | None, *, create: bool = True) -> Any:
    """Just the ledger (no registry, no model code): for prove, find, export, forget.

    ``create=False`` for commands that only read: a missing ledger is an error and nothing is
    created.
    """
    from governance.ledger.shards import open_ledger
    from governance.settings import Settings

    settings = Settings.resolve(project)
    if create:
        settings.home.mkdir(parents=True, exist_ok=True)
    return guard(lambda: open_ledger(settings.ledger_url, home=settings.home, create=create))
