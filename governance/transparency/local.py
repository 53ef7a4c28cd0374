"""Key-free verification of a live ledger, from its store and public state only.

Reads the database (never writes: the store is opened without creating anything), the log's
public key (``<home>/keys/checkpoint.pub`` or one the verifier trusts), exported checkpoints,
kept cosigned notes, the witnesses' latest cosigned checkpoints and published tiles. No secret
key is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from governance.ledger import open_store
from governance.ledger._verify import walk_store
from governance.ledger.checkpoint import (
    Checkpoint,
    load_public_key,
    public_key_bytes,
    verifier_key,
)
from governance.ledger.merkle import MerkleTree
from governance.ledger.note import parse_verifier_key
from governance.ledger.records import RECORD_FORMAT_V1, ChainWalker
from governance.ledger.store import StoreError
from governance.transparency.config import WITNESSES_FILE, WitnessConfig
from governance.transparency.sources import (
    CannotCheck,
    fetch_witness_notes,
    load_folder,
    resolve_folder,
)
from governance.transparency.verify import NoteSource, Report, check

__all__ = ["tiles_dir_for", "verify_ledger"]


def tiles_dir_for(tiles_root: Path, ledger_id: str) -> Path:
    """Where a ledger's tiles are published under the tiles root (one folder per ledger)."""
    return Path(tiles_root) / ledger_id


def verify_ledger(
    url: str,
    home: Path,
    *,
    public_key_path: Path | None = None,
    checkpoints: Path | None = None,
    notes: Sequence[NoteSource] = (),
    config: WitnessConfig | None = None,
    fetch: bool = True,
    tiles_root: Path | None = None,
    tile_dirs: Sequence[Path] = (),
    deep: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Verify the ledger at ``url`` with public material only.

    Parameters
    ----------
    url
        The ledger's store URL.
    home
        Its state directory (``keys/checkpoint.pub``, ``checkpoints/``, ``witnesses.json``).
    public_key_path
        The log key to trust instead of ``<home>/keys/checkpoint.pub``.
    checkpoints
        An independent copy of the exported checkpoints (the ``checkpoints/`` folder or the
        ledger's subfolder); empty, missing or foreign raises :class:`CannotCheck`.
    notes
        Cosigned notes the verifier kept (``--checkpoint-note``).
    config
        The witnesses to trust instead of ``<home>/witnesses.json``.
    fetch
        Ask the witnesses for their latest cosigned checkpoints.
    tiles_root
        Where tiles are published (``<tiles_root>/<ledger id>/tile/...``).
    tile_dirs
        Tiles of earlier publications the verifier kept.
    deep, workers, progress
        As for :meth:`governance.ledger.Ledger.verify`.

    Raises
    ------
    CannotCheck
        If there is no ledger, the key is unreadable or an input folder is unusable.
    """
    home = Path(home)
    try:
        store = open_store(url, create=False)
    except (StoreError, ValueError) as exc:
        raise CannotCheck(str(exc)) from None
    try:
        meta = store.meta()
        if "ledger_id" not in meta:
            raise CannotCheck(f"{store.location}: no ledger (no metadata)")
        ledger_id = meta["ledger_id"]
        origin = f"governance/ledger/{ledger_id}"
        key_path = public_key_path or home / "keys" / "checkpoint.pub"
        try:
            public_key = load_public_key(key_path)
        except (OSError, ValueError) as exc:
            raise CannotCheck(f"unreadable log key {key_path}: {exc}") from None
        if config is None:
            try:
                config = WitnessConfig.load(home / WITNESSES_FILE)
            except ValueError as exc:
                raise CannotCheck(str(exc)) from None
        try:
            found: list[tuple[str, Checkpoint]] = [("stored", cp) for cp in store.checkpoints()]
        except ValueError as exc:
            raise CannotCheck(f"a checkpoint stored in the database is malformed: {exc}") from None
        all_notes = list(notes)
        own = home / "checkpoints" / ledger_id
        if own.is_dir():
            extra, kept = load_folder(own, origin)
            found += extra
            all_notes += kept
        if checkpoints is not None:
            extra, kept = load_folder(resolve_folder(checkpoints, ledger_id), origin)
            found += extra
            all_notes += kept
        answers: dict[str, str] = {}
        if fetch:
            fetched, answers = fetch_witness_notes(config, origin)
            all_notes += fetched
        walker = ChainWalker(
            deep=deep,
            canonical=meta["canonical"],
            record_format=meta.get("record_format", RECORD_FORMAT_V1),
        )

        def walk(target: int) -> tuple[MerkleTree, int]:
            tree = MerkleTree()
            end = walk_store(store, walker, tree, target, workers=workers, progress=progress)
            return tree, end.next_seq

        published = [tiles_dir_for(tiles_root, ledger_id)] if tiles_root is not None else []
        unique = {(cp.size, cp.root, cp.timestamp, cp.signature): (w, cp) for w, cp in found}
        return check(
            walk=walk,
            origin=origin,
            log_key=public_key,
            log_verifier=parse_verifier_key(verifier_key(origin, public_key_bytes(public_key))),
            checkpoints=sorted(unique.values(), key=lambda item: item[1].size),
            notes=all_notes,
            config=config,
            answers=answers,
            tile_dirs=[*tile_dirs, *published],
        )
    finally:
        store.close()
