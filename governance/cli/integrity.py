"""``governance audit verify|checkpoint|bundle|vkey``: proof that holds against the operator.

``checkpoint --every N`` is the periodic checkpointer (its own process, never on a decision's
path).

Verification reads public material only (records, checkpoints, cosigned notes, public keys,
tiles); exit codes: 0 verified, 1 integrity failure naming the first bad record, 2 could not
check (missing or empty input, wrong folder, unreadable key, no witnessed checkpoint when
witnesses are configured).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from governance.cli.audit import audit_app
from governance.cli.common import (
    EXIT_CANNOT_CHECK,
    JsonOpt,
    ProjectOpt,
    emit,
    fail,
    guard,
    ledger,
    positive_seconds,
)
from governance.ledger import load_public_key, open_store
from governance.ledger.checkpoint import verifier_key
from governance.ledger.shards import shard_url, split_shards
from governance.settings import Settings
from governance.transparency import (
    CannotCheck,
    NoteSource,
    Publication,
    Report,
    WitnessConfig,
    publish,
    verify_bundle,
    verify_ledger,
    write_bundle,
)
from governance.transparency.bundle import ShardSource
from governance.transparency.config import WITNESSES_FILE
from governance.transparency.local import tiles_dir_for
from governance.transparency.publish import keep_publishing
from governance.transparency.status import seconds_since

EXIT_NOT_PUBLISHED = 1


def _age(timestamp: str | None) -> float | None:
    age = seconds_since(timestamp)
    return None if age is None else round(age, 3)


def _ago(seconds: float | None) -> str:
    return "" if seconds is None else f", {seconds:.0f} s ago"


def _read_notes(paths: list[Path]) -> list[NoteSource]:
    notes = []
    for path in paths:
        try:
            notes.append(NoteSource(str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"could not check: --checkpoint-note {path}: {exc}", EXIT_CANNOT_CHECK)
    return notes


def _config(path: Path | None) -> WitnessConfig | None:
    if path is None:
        return None
    if not path.is_file():
        fail(f"could not check: --witnesses {path}: no such file", EXIT_CANNOT_CHECK)
    try:
        return WitnessConfig.load(path)
    except ValueError as exc:
        fail(f"could not check: {exc}", EXIT_CANNOT_CHECK)


def _json(report: Report) -> dict[str, Any]:
    doc: dict[str, Any] = report.to_dict()
    doc["witnessed_age_seconds"] = _age(report.witnessed_at)
    return doc


def _report_out(report: Report, as_json: bool) -> None:
    doc = _json(report)
    if as_json:
        emit(doc)
    elif report.ok:
        witnessed = (
            f"; witnessed up to {report.witnessed_size} records (cosigned by"
            f" {', '.join(report.cosignatures)}; quorum {report.quorum};"
            f" signed {report.witnessed_at}{_ago(doc['witnessed_age_seconds'])})"
            if report.witnessed_size is not None
            else "; no witnesses configured"
        )
        shards = f" in {len(report.shards)} shards" if report.shards else ""
        typer.echo(
            f"ok: {report.records} records verified{shards}, {report.checkpoints} checkpoints"
            f"{witnessed}"
        )
    if report.code == 1 and not as_json:
        typer.echo(
            f"error: ledger does not verify at record {report.first_bad}: {report.reason}",
            err=True,
        )
    elif report.code == EXIT_CANNOT_CHECK and not as_json:
        typer.echo(f"error: could not check: {report.reason}", err=True)
    if report.code:
        raise typer.Exit(report.code)


PathsOpt = Annotated[list[Path] | None, typer.Option(help="Repeatable.")]


@audit_app.command()
def verify(
    as_json: JsonOpt = False,
    bundle: Annotated[
        Path | None,
        typer.Option(help="Verify this audit bundle, without the ledger or its state directory."),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            help="An independent copy of the exported checkpoints (the checkpoints/ folder)."
        ),
    ] = None,
    checkpoint_note: Annotated[
        list[Path] | None,
        typer.Option(help="A cosigned checkpoint note you kept (repeatable)."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="The log's public key (PEM) you trust.")
    ] = None,
    witnesses: Annotated[
        Path | None, typer.Option(help="A witnesses.json you trust (witnesses and quorum).")
    ] = None,
    tiles: Annotated[
        list[Path] | None,
        typer.Option(help="Tiles of an earlier publication: name the first changed record."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not ask the witnesses for their checkpoints.")
    ] = False,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also require canonical bytes (about 10x slower).")
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Check records, checkpoints and witness cosignatures with public keys only.

    Exit 0 verified, 1 integrity failure (naming the first bad record), 2 could not check.
    """
    notes = _read_notes(checkpoint_note or [])
    config = _config(witnesses)
    for folder in tiles or []:
        if not folder.is_dir():  # a mistyped path must not silently skip the comparison
            fail(f"could not check: --tiles {folder}: no such folder", EXIT_CANNOT_CHECK)
    key = None
    if public_key is not None:
        try:
            key = load_public_key(public_key)
        except (OSError, ValueError) as exc:
            fail(f"could not check: unreadable key {public_key}: {exc}", EXIT_CANNOT_CHECK)
    try:
        if bundle is not None:
            if checkpoints is not None:
                fail("--checkpoints applies to a ledger, not to a --bundle", EXIT_CANNOT_CHECK)
            report = verify_bundle(
                bundle,
                public_key=key,
                config=config,
                notes=notes,
                fetch=not offline,
                tile_dirs=tiles or [],
                deep=deep,
            )
        else:
            settings = Settings.resolve(project)
            report = verify_ledger(
                settings.ledger_url,
                settings.home,
                public_key_path=public_key,
                checkpoints=checkpoints,
                notes=notes,
                config=config,
                fetch=not offline,
                tiles_root=settings.tiles_root,
                tile_dirs=tiles or [],
                deep=deep,
            )
    except CannotCheck as exc:
        if as_json:
            emit(_json(Report(ok=False, code=EXIT_CANNOT_CHECK, reason=str(exc))))
            raise typer.Exit(EXIT_CANNOT_CHECK) from None
        fail(f"could not check: {exc}", EXIT_CANNOT_CHECK)
    _report_out(report, as_json)


def _publication(result: Publication, tiles: Path) -> dict[str, Any]:
    cp = result.checkpoint
    return {
        **cp.to_json(),
        "note": cp.to_note(),
        "cosignatures": result.cosignatures,
        "errors": result.errors,
        "quorum": result.quorum,
        "published": result.published,
        "cosigned_note": None if result.note_path is None else str(result.note_path),
        "tiles": str(tiles),
        "tiles_written": result.tiles_written,
    }


def _say(result: Publication, config: WitnessConfig) -> None:
    cp = result.checkpoint
    typer.echo(f"checkpoint: {cp.size} records, root {cp.root.hex()}, {cp.timestamp}")
    if config.witnesses:
        state = "published" if result.published else "NOT published"
        typer.echo(
            f"{state}: cosigned by {len(result.cosignatures)} of {len(config.witnesses)}"
            f" witnesses (quorum {result.quorum})"
            + "".join(f"\n  {name}: {why}" for name, why in sorted(result.errors.items()))
        )


@audit_app.command()
def checkpoint(
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the witnesses.")] = 30.0,
    every: Annotated[
        float | None,
        typer.Option(
            help="Keep publishing every this many seconds until stopped (SIGTERM or Ctrl-C);"
            " a round is skipped while the ledger has not grown. --json: one line per round."
        ),
    ] = None,
    with_parent: Annotated[
        bool,
        typer.Option(
            "--with-parent", hidden=True, help="With --every: stop when the parent process ends."
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Sign the tree head, write its tiles and have the witnesses cosign it.

    Exit 0 once published (quorum cosignatures, or no witnesses configured), 1 otherwise; with
    --every, 0 when stopped.
    """
    settings = Settings.resolve(project)
    path = settings.home / WITNESSES_FILE
    config = guard(lambda: WitnessConfig.load(path))
    positive_seconds(timeout, "--timeout")
    positive_seconds(every, "--every")
    if every is not None:
        _checkpoint_every(settings, project, every, timeout, as_json, with_parent)
        return
    with ledger(project) as book:
        tiles = tiles_dir_for(settings.tiles_root, book.ledger_id)
        result = guard(lambda: publish(book, config, tiles_dir=tiles, timeout=timeout))
    if as_json:
        emit(_publication(result, tiles))
    else:
        _say(result, config)
    if not result.published:
        raise typer.Exit(EXIT_NOT_PUBLISHED)


def _watch_parent(stop: threading.Event) -> None:
    """Set ``stop`` once this process's parent is gone (it was re-parented), even by SIGKILL."""
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:
            stop.set()


def _checkpoint_every(
    settings: Settings,
    project: Path | None,
    every: float,
    timeout: float,
    as_json: bool,
    with_parent: bool,
) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if with_parent:
        threading.Thread(target=_watch_parent, args=(stop,), daemon=True).start()
    path = settings.home / WITNESSES_FILE
    with ledger(project) as book:
        tiles = tiles_dir_for(settings.tiles_root, book.ledger_id)

        def said(result: Publication) -> None:
            if as_json:
                doc = _publication(result, tiles)
                typer.echo(json.dumps(doc, sort_keys=True, default=str))
            else:
                _say(result, WitnessConfig.load(path))

        guard(
            lambda: keep_publishing(
                book,
                lambda: WitnessConfig.load(path),
                every=every,
                stop=stop,
                tiles_dir=tiles,
                timeout=timeout,
                on_round=said,
            )
        )


@audit_app.command()
def bundle(
    out_dir: Annotated[Path, typer.Argument(help="A new folder for the bundle.")],
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Write everything an outside verifier needs, and nothing secret, to OUT_DIR."""
    settings = Settings.resolve(project)
    try:
        base, _ = split_shards(settings.ledger_url)
        store = open_store(base, create=False)
    except Exception as exc:
        fail(f"could not bundle: {exc}", EXIT_CANNOT_CHECK)
    opened = [store]
    try:
        meta = store.meta()
        if "ledger_id" not in meta:
            fail(f"could not bundle: {store.location}: no ledger", EXIT_CANNOT_CHECK)
        key_path = settings.home / "keys" / "checkpoint.pub"
        public = guard(lambda: load_public_key(key_path))
        config = guard(lambda: WitnessConfig.load(settings.home / WITNESSES_FILE))
        shards = []
        for i in range(1, int(meta.get("shards", "1"))):
            try:
                part = open_store(shard_url(base, i), create=False)
            except Exception as exc:
                fail(f"could not bundle: shard {i}: {exc}", EXIT_CANNOT_CHECK)
            opened.append(part)
            found = part.meta()
            if "ledger_id" not in found:
                fail(f"could not bundle: shard {i}: {part.location}: no ledger", EXIT_CANNOT_CHECK)
            folder = settings.home / "checkpoints" / found["ledger_id"]
            shards.append(ShardSource(part, found, folder))
        try:
            summary = write_bundle(
                out_dir,
                store=store,
                meta=meta,
                public_key=public,
                folder=settings.home / "checkpoints" / meta["ledger_id"],
                config=config,
                tiles_dir=tiles_dir_for(settings.tiles_root, meta["ledger_id"]),
                shards=shards,
            )
        except CannotCheck as exc:
            fail(f"could not bundle: {exc}", EXIT_CANNOT_CHECK)
    finally:
        for opened_store in opened:
            opened_store.close()
    doc = {
        "path": str(summary.path),
        "shards": summary.shards,
        "records": summary.records,
        "not_bundled": summary.newer,
        "checkpoints": summary.checkpoints,
        "cosigned_notes": summary.notes,
        "tiles": summary.tiles,
    }
    if as_json:
        emit(doc)
        return
    typer.echo(
        f"bundled {summary.records} records, {summary.checkpoints} checkpoints and"
        f" {summary.notes} cosigned notes to {summary.path} (tiles {summary.tiles})"
    )
    if summary.newer:
        typer.echo(
            f"{summary.newer} newer records are not covered by a checkpoint and were not"
            " bundled: run `governance audit checkpoint` first to include them",
            err=True,
        )


@audit_app.command()
def vkey(project: ProjectOpt = None) -> None:
    """Print the log's verifier key (what a witness trusts: `governance witness trust VKEY`)."""
    settings = Settings.resolve(project)
    try:
        base, _ = split_shards(settings.ledger_url)  # the control shard's key is the log's
        store = open_store(base, create=False)
    except Exception as exc:
        fail(str(exc), EXIT_CANNOT_CHECK)
    try:
        meta = store.meta()
    finally:
        store.close()
    if "ledger_id" not in meta:
        fail("no ledger", EXIT_CANNOT_CHECK)
    key = guard(lambda: load_public_key(settings.home / "keys" / "checkpoint.pub"))
    typer.echo(verifier_key(f"governance/ledger/{meta['ledger_id']}", key))
