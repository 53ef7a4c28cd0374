"""Deciding: ``governance score`` (batch), ``governance serve`` (HTTP), ``governance keys``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from governance.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    emit,
    fail,
    guard,
    output_file,
    positive_seconds,
    printable,
    service,
    write_whole,
)
from governance.ledger import child_process
from governance.settings import Settings

keys_app = typer.Typer(help="API keys for the HTTP service (only their hashes are stored).")
app.add_typer(keys_app, name="keys")

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registered model name.")]
AliasOpt = Annotated[str | None, typer.Option("--alias", help="Alias to use (default: champion).")]
VersionOpt = Annotated[str | None, typer.Option("--version", help="A version instead of an alias.")]
ROLES = ("scorer", "auditor", "approver", "admin")


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet of applications.")],
    model: ModelOpt,
    alias: AliasOpt = None,
    version: VersionOpt = None,
    subject_column: Annotated[
        str | None, typer.Option("--subject-column", help="Column holding subject ids.")
    ] = None,
    purpose: Annotated[str, typer.Option(help="Why these decisions are made.")] = "batch",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write decision ids, outcomes, scores here (CSV).")
    ] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Score a file of applications; every row is a ledger decision (progress on stderr)."""
    import pandas as pd
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from governance.core.dataset import read_csv

    if not file.is_file():
        what = "no such file" if not file.exists() else "not a regular file (a folder, a pipe?)"
        fail(f"{file}: {what}")
    if out is not None:  # before any decision is recorded: a retry would record them twice
        # `make run` keeps its decisions.csv in the state directory: allowed, but never the
        # ledger, MLflow's database or a key
        output_file(out, project, what="--out", state_dir=True)
    text = [subject_column] if subject_column else []  # ids as written: 0042 is not 42
    frame = guard(
        lambda: pd.read_parquet(file) if file.suffix == ".parquet" else read_csv(file, text)
    )
    if subject_column and subject_column not in frame.columns:
        fail(f"no column {subject_column!r} in {file}")
    results = []
    counts: dict[str, int] = {}
    with service(project) as svc:
        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            disable=as_json,
        )
        with progress:
            task = progress.add_task("scoring", total=len(frame))
            chunks = svc.score_frame(
                model,
                frame,
                subject_column=subject_column,
                version=version,
                alias=alias,
                caller="cli",
                purpose=purpose,
            )
            for done, receipts, scores, outcomes in guard(lambda: list(chunks)):
                progress.update(task, completed=done)
                for receipt, s, o in zip(receipts, scores, outcomes, strict=True):
                    counts[o] = counts.get(o, 0) + 1
                    results.append((receipt.id, o, float(s), receipt.seq))
        size = svc.ledger.size()
    if out is not None:
        table = pd.DataFrame(results, columns=["decision_id", "outcome", "score", "seq"])
        _write_out(table, out, recorded=len(results))
    summary = {
        "decisions": len(results),
        "outcomes": counts,
        "first_decision_id": results[0][0] if results else None,
        "ledger_records": size,
        "out": str(out) if out else None,
    }
    if as_json:
        emit(summary)
    else:
        typer.echo(
            f"scored {len(results)} applications with {model}: "
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            + f"; ledger now holds {size} records"
        )


def _write_out(table: Any, out: Path, *, recorded: int) -> None:
    """Write ``--out`` whole (a temporary file renamed into place) or not at all."""
    try:
        write_whole(out, lambda tmp: table.to_csv(tmp, index=False))
    except OSError as exc:
        fail(f"{recorded} decisions were recorded, but --out {out} could not be written: {exc}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8080,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model for /invocations and defaults.")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias of that model to serve.")] = "champion",
    checkpoint_every: Annotated[
        float | None,
        typer.Option(
            help="Also run the periodic checkpointer (`governance audit checkpoint --every`)"
            " in a child process, publishing every this many seconds."
        ),
    ] = None,
    inline_below_ms: Annotated[
        float | None,
        typer.Option(
            help="Run a lone decision on the event loop's thread (no hand-off to the thread"
            " pool) while decisions take less than this many milliseconds on average"
            " [default: 2]; 0 always uses the pool."
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Serve the decision API (FastAPI; OpenAPI at /openapi.json)."""
    from governance.service import serve as run
    from governance.service.dispatch import INLINE_BELOW

    positive_seconds(checkpoint_every, "--checkpoint-every")
    if inline_below_ms is not None and not inline_below_ms >= 0:
        fail(f"--inline-below-ms must be 0 or more milliseconds, not {inline_below_ms}")
    child = None if checkpoint_every is None else _checkpointer(checkpoint_every, project)
    try:
        guard(
            lambda: run(
                Settings.resolve(project),
                model=model,
                alias=alias,
                host=host,
                port=port,
                log_level="warning",
                inline_below=INLINE_BELOW if inline_below_ms is None else inline_below_ms / 1000,
            )
        )
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _checkpointer(every: float, project: Path | None) -> subprocess.Popen[bytes]:
    """The periodic checkpointer as a child process: never on a decision's path, nor its GIL.

    It also stops by itself once this process is gone (uvicorn re-raises SIGTERM after its
    shutdown, so a ``finally`` here does not always run).
    """
    args = ["audit", "checkpoint", "--every", str(every), "--with-parent"]
    args += [] if project is None else ["--project", str(project)]
    return child_process.start("from governance.cli import app; app()", *args)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    name: Annotated[
        str | None, typer.Option(help="The key's name (recorded as the caller of decisions).")
    ] = None,
    person: Annotated[
        str | None,
        typer.Option(
            help="The person or system holding it, e.g. 'J. Rivera' (recorded as approver of"
            " promotions and recorder of outcomes and reviews; default: the name)."
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    from governance.service.auth import KeyStore

    if role not in ROLES:
        fail(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    settings = Settings.resolve(project)
    store = KeyStore.for_home(settings.home)
    key = guard(lambda: store.create(name or role, role, person=person or ""))
    typer.echo(key)


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """List key names and roles (never the keys)."""
    from governance.service.auth import KeyStore

    store = KeyStore.for_home(Settings.resolve(project).home)
    entries = [
        {"name": e.name, "role": e.role, "person": e.person or e.name, "created": e.created}
        for e in store.entries()
    ]
    if as_json:
        emit(entries)
    else:
        for e in entries:
            typer.echo(f"{e['name']:<24} {e['role']:<9} {e['created']}  {printable(e['person'])}")


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")], project: ProjectOpt = None
) -> None:
    """Revoke a key by name."""
    from governance.service.auth import KeyStore

    if not KeyStore.for_home(Settings.resolve(project).home).revoke(name):
        fail(f"no API key named {name!r}")
    typer.echo(f"revoked {name}")
