"""``governance witness ...``: run an independent witness (init, trust, serve, status, evidence),
and choose the witnesses of this ledger's checkpoints (add, remove, list).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from governance.cli.common import JsonOpt, ProjectOpt, app, emit, guard, printable
from governance.ledger.note import parse_checkpoint, parse_note
from governance.settings import Settings
from governance.transparency import WitnessConfig
from governance.transparency.config import WITNESSES_FILE
from governance.witness import Witness, WitnessHome, WitnessServer

witness_app = typer.Typer(
    help="An independent witness that cosigns the ledger's checkpoints (C2SP tlog-witness).",
    no_args_is_help=True,
)
app.add_typer(witness_app, name="witness")

HomeOpt = Annotated[Path, typer.Option("--home", help="The witness's home directory.")]


def _home(path: Path) -> WitnessHome:
    home: WitnessHome = guard(lambda: WitnessHome(path))
    return home


@witness_app.command()
def init(
    home: HomeOpt,
    name: Annotated[
        str | None, typer.Option(help="Witness name (its key name), e.g. witness.example/w1.")
    ] = None,
) -> None:
    """Create a witness: a new Ed25519 key and empty storage; print its verifier key."""
    created: WitnessHome = guard(lambda: WitnessHome.init(home, name))
    typer.echo(created.vkey)


@witness_app.command()
def trust(
    vkey: Annotated[str, typer.Argument(help="The log's verifier key (governance audit vkey).")],
    home: HomeOpt,
    origin: Annotated[
        str | None, typer.Option(help="The log's checkpoint origin (default: the key's name).")
    ] = None,
) -> None:
    """Witness a log: cosign its checkpoints signed by VKEY (configured, never trusted on sight)."""
    witness = _home(home)
    added = guard(lambda: witness.add_log(vkey, origin))
    typer.echo(f"witnessing {printable(added)}")


@witness_app.command()
def serve(
    home: HomeOpt,
    port: Annotated[
        int, typer.Option(help="TCP port (0: any free port).", min=0, max=65535)
    ] = 8099,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not log requests.")] = False,
) -> None:
    """Serve the witness over HTTP (POST /add-checkpoint, GET /<origin hash>/checkpoint)."""
    witness = Witness(_home(home))
    server: WitnessServer = guard(lambda: WitnessServer((host, port), witness, quiet=quiet))
    print(f"witness {witness.home.name} listening on {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@witness_app.command()
def status(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """The witness's key, the logs it witnesses and the latest size it cosigned for each."""
    witness = _home(home)
    logs = []
    for origin, verifier in sorted(guard(witness.logs).items()):
        note = witness.latest(origin)
        size = parse_checkpoint(parse_note(note).text).size if note else None
        logs.append({"origin": origin, "vkey": verifier.vkey, "cosigned_size": size})
    doc = {"name": witness.name, "vkey": witness.vkey, "logs": logs}
    if as_json:
        emit(doc)
        return
    typer.echo(f"witness {witness.name}\nvkey    {witness.vkey}")
    for log in logs:
        what = "nothing yet" if log["cosigned_size"] is None else f"size {log['cosigned_size']}"
        typer.echo(f"log     {printable(log['origin'])}: cosigned {what}")


@witness_app.command()
def evidence(
    home: HomeOpt,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Remove what proves no fork (a rollback or a bad proof kept by an older witness).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Forks the witness refused: checkpoints the log signed for a size it cosigned, with another
    root, each kept with the one it contradicts."""
    witness = _home(home)
    if prune:
        removed = guard(witness.prune_evidence)
        if not as_json:
            typer.echo(f"removed {len(removed)} kept checkpoint(s) that prove no fork", err=True)
    items = [(e, witness.proves_fork(e)) for e in guard(witness.evidence)]
    if as_json:
        emit(
            [
                {
                    "origin": e.origin,
                    "reason": e.reason,
                    "directory": str(e.directory),
                    "previous": e.previous,
                    "submitted": e.submitted,
                    "proves_fork": proves,
                }
                for e, proves in items
            ]
        )
        return
    for e, proves in items:
        typer.echo(f"{printable(e.origin)}: {printable(e.reason)}\n  kept in {e.directory}")
        if proves is False:
            typer.echo("  proves no fork (kept by an older witness): --prune removes it")
        elif proves is None:
            typer.echo("  cannot be checked: this witness no longer trusts that log")
    if not items:
        typer.echo("no refused checkpoints", err=True)


# -- the ledger's side: which witnesses its checkpoints go to ------------------------------


def _ledger_config(project: Path | None) -> tuple[Path, WitnessConfig]:
    path = Settings.resolve(project).home / WITNESSES_FILE
    config: WitnessConfig = guard(lambda: WitnessConfig.load(path))
    return path, config


QuorumOpt = Annotated[
    int | None,
    typer.Option(help="Cosignatures that publish a checkpoint (default: unchanged, at least 1)."),
]


@witness_app.command("add")
def add_witness(
    url: Annotated[str, typer.Argument(help="The witness's URL, e.g. http://127.0.0.1:8099.")],
    vkey: Annotated[str, typer.Argument(help="Its verifier key (`governance witness init`).")],
    quorum: QuorumOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Send this ledger's checkpoints to a witness (stored in <home>/witnesses.json)."""
    path, config = _ledger_config(project)
    entry = guard(lambda: config.add(url, vkey, quorum))
    guard(lambda: config.save(path))
    typer.echo(
        f"witness {entry.name} at {entry.url} added; quorum {config.quorum} of"
        f" {len(config.witnesses)}"
    )


@witness_app.command("remove")
def remove_witness(
    witness: Annotated[str, typer.Argument(help="The witness's name or URL.")],
    quorum: QuorumOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Stop sending checkpoints to a witness."""
    path, config = _ledger_config(project)
    entry = guard(lambda: config.remove(witness, quorum))
    guard(lambda: config.save(path))
    typer.echo(f"witness {entry.name} removed; quorum {config.quorum} of {len(config.witnesses)}")


@witness_app.command("list")
def list_witnesses(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """The witnesses this ledger's checkpoints go to, and the quorum."""
    _, config = _ledger_config(project)
    if as_json:
        emit(config.to_json())
        return
    typer.echo(f"quorum {config.quorum} of {len(config.witnesses)}")
    for w in config.witnesses:
        typer.echo(f"{w.name}  {w.url}  {w.vkey}")
