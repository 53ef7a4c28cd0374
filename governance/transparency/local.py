"""Key-free verification of a live ledger, from its store and public state only.

Reads the database (never writes: the store is opened without creating anything), the log's
public key (``<home>/keys/checkpoint.pub`` or one the verifier trusts), exported checkpoints,
kept cosigned notes, the witnesses' latest cosigned checkpoints and published tiles. No secret
key is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger import open_store
from governance.ledger._verify import walk_store
from governance.ledger.checkpoint import (
    Checkpoint,
    load_public_key,
    public_key_bytes,
    verifier_key,
)
from governance.ledger.errors import LedgerError
from governance.ledger.merkle import MerkleTree
from governance.ledger.note import parse_verifier_key
from governance.ledger.records import RECORD_FORMAT_V1, ChainWalker
from governance.ledger.shards import (
    MAX_SHARDS,
    committed_heads,
    shard_url,
    split_shards,
)
from governance.ledger.store import LedgerStore, StoreError
from governance.transparency.config import WITNESSES_FILE, WitnessConfig
from governance.transparency.sources import (
    CannotCheck,
    fetch_witness_notes,
    load_folder,
    resolve_folder,
)
from governance.transparency.verify import (
    EXIT_CANNOT_CHECK,
    EXIT_INTEGRITY,
    NoteSource,
    Report,
    check,
    merge_shards,
    stray_shards,
)

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
        base, given = split_shards(str(url))
    except LedgerError as exc:
        raise CannotCheck(str(exc)) from None
    control = _open(base)
    try:
        meta = control.meta()
        if "ledger_id" not in meta:
            raise CannotCheck(f"{control.location}: no ledger (no metadata)")
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
        k = int(meta.get("shards", "1")) if meta.get("shards", "1").isdigit() else 0
        if not 1 <= k <= MAX_SHARDS:
            raise CannotCheck(f"{control.location}: unreadable shard count {meta['shards']!r}")
        if given > 1 and given != k:
            raise CannotCheck(f"the URL says shards={given}, the ledger has {k} shard(s)")
        answers: dict[str, str] = {}
        fetched: list[NoteSource] = []
        if fetch:
            fetched, answers = fetch_witness_notes(config, f"governance/ledger/{meta['ledger_id']}")
        chain = _Chain(home, public_key, checkpoints, deep, workers, progress)
        report = chain.check(
            control,
            meta,
            notes=[*notes, *fetched],
            config=config,
            answers=answers,
            tile_dirs=[
                *tile_dirs,
                *([tiles_dir_for(tiles_root, meta["ledger_id"])] if tiles_root is not None else []),
            ],
        )
        committed: dict[int, list[tuple[str, Checkpoint]]] = {}
        if report.ok:
            try:
                committed = committed_heads(control, report.records)
            except (ValueError, KeyError, TypeError) as exc:
                why = f"a shard_heads record is malformed: {exc}"
                report = replace(report, ok=False, code=EXIT_INTEGRITY, reason=why)
        report = stray_shards(report, committed, k)
        if k > 1:
            report = _check_shards(chain, base, meta, k, report, committed)
    finally:
        control.close()
    return report


def _open(url: str) -> LedgerStore:
    try:
        return open_store(url, create=False)
    except (StoreError, ValueError, LedgerError) as exc:  # LedgerError: an unknown URL scheme
        raise CannotCheck(str(exc)) from None


@dataclass(frozen=True)
class _Chain:
    """How to check one chain (one ledger, or one shard of a sharded ledger)."""

    home: Path
    public_key: Ed25519PublicKey
    checkpoints: Path | None
    deep: bool
    workers: int | None
    progress: Callable[[int, int], None] | None

    def check(
        self,
        store: LedgerStore,
        meta: dict[str, str],
        *,
        notes: Sequence[NoteSource] = (),
        config: WitnessConfig | None = None,
        answers: dict[str, str] | None = None,
        tile_dirs: Sequence[Path] = (),
        committed: Sequence[tuple[str, Checkpoint]] = (),
        shard: bool = False,
    ) -> Report:
        """Check the chain in ``store`` against every checkpoint and note found for it.

        A shard (``shard=True``) has no witnesses of its own (the control shard's checkpoint
        commits to it: ``committed``), and an independent copy of the checkpoints may lack it.
        """
        ledger_id = meta["ledger_id"]
        origin = f"governance/ledger/{ledger_id}"
        try:
            found: list[tuple[str, Checkpoint]] = [("stored", cp) for cp in store.checkpoints()]
        except ValueError as exc:
            raise CannotCheck(f"a checkpoint stored in the database is malformed: {exc}") from None
        found += committed
        all_notes = list(notes)
        own = self.home / "checkpoints" / ledger_id
        if own.is_dir():
            extra, kept = load_folder(own, origin)
            found += extra
            all_notes += kept
        if self.checkpoints is not None and (not shard or (self.checkpoints / ledger_id).is_dir()):
            extra, kept = load_folder(resolve_folder(self.checkpoints, ledger_id), origin)
            found += extra
            all_notes += kept
        walker = ChainWalker(
            deep=self.deep,
            canonical=meta["canonical"],
            record_format=meta.get("record_format", RECORD_FORMAT_V1),
        )

        def walk(target: int) -> tuple[MerkleTree, int]:
            tree = MerkleTree()
            end = walk_store(
                store, walker, tree, target, workers=self.workers, progress=self.progress
            )
            return tree, end.next_seq

        verifier = parse_verifier_key(verifier_key(origin, public_key_bytes(self.public_key)))
        return check(
            walk=walk,
            origin=origin,
            log_key=self.public_key,
            log_verifier=verifier,
            checkpoints=found,
            notes=all_notes,
            config=config or WitnessConfig(),
            answers=answers,
            tile_dirs=tile_dirs,
        )


def _check_shards(
    chain: _Chain,
    base: str,
    meta: dict[str, str],
    k: int,
    report: Report,
    committed: dict[int, list[tuple[str, Checkpoint]]],
) -> Report:
    """Check shards 1..k-1 after the control shard (``report``).

    Every shard is checked against its own checkpoints and those the control shard's verified
    ``shard_heads`` records commit to (``committed``). The result is the control shard's
    report (witnesses, quorum) with every shard's records and checkpoints added, ``shards``
    holding each shard's outcome, and the first failure named by shard.
    """
    from governance.ledger.postgres_store import split_url

    schema = split_url(base)[1]
    results = [(0, schema, meta["ledger_id"], report)]
    for i in range(1, k if report.ok else 1):
        url = shard_url(base, i)
        ledger_id, part = _check_shard(chain, url, i, meta, committed.get(i, []))
        results.append((i, split_url(url)[1], ledger_id, part))
        if not part.ok:
            break
    return merge_shards(report, results)


def _check_shard(
    chain: _Chain,
    url: str,
    i: int,
    control: dict[str, str],
    committed: Sequence[tuple[str, Checkpoint]],
) -> tuple[str, Report]:
    """Check shard ``i`` at ``url``; ``(its ledger id, report)``.

    A shard that is gone, or belongs to another ledger, is an integrity failure once the
    control shard has committed to its checkpoints, and cannot be checked otherwise.
    """
    promised = max((cp.size for _, cp in committed), default=0)
    try:
        store = _open(url)
    except CannotCheck as exc:
        if not promised:
            raise
        why = f"the control shard committed to {promised} of its records, and it is gone: {exc}"
        return "?", Report(ok=False, code=EXIT_INTEGRITY, reason=why)
    try:
        meta = store.meta()
        if meta.get("shard_of") != control["ledger_id"] or meta.get("shard") != str(i):
            why = (
                f"it is shard {meta.get('shard')} of ledger {meta.get('shard_of')},"
                f" not shard {i} of {control['ledger_id']}"
            )
            code = EXIT_INTEGRITY if promised else EXIT_CANNOT_CHECK
            return meta.get("ledger_id", "?"), Report(ok=False, code=code, reason=why)
        return meta["ledger_id"], chain.check(store, meta, committed=committed, shard=True)
    finally:
        store.close()
