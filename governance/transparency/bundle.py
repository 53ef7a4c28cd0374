"""Audit bundles: everything an outside verifier needs, and nothing secret.

``governance audit bundle OUT_DIR`` writes::

    README.md               how to check the bundle by hand (no code of ours needed)
    ledger.json             ledger id, origin, formats, the number of records bundled
    records.jsonl           records 0..N-1 exactly as hashed, one per line (N: newest checkpoint)
    checkpoints/            signed checkpoints (JSON, as exported by the ledger)
    cosigned/               checkpoint notes with the witnesses' cosignatures (C2SP notes)
    tiles/tile/...          C2SP tlog-tiles of the first N records (the published ones if they
                            match the newest checkpoint, otherwise rebuilt from stored hashes)
    keys/checkpoint.pub     the log's Ed25519 public key (PEM)
    keys/log.vkey           the same key as a C2SP note verifier key
    witnesses.json          the witnesses' names, URLs and verifier keys, and the quorum

Records carry pseudonymous subject keys and encrypted PII, never identifiers or plaintext; no
secret key (HMAC, key-encryption, signing) is read or written. :func:`verify_bundle` checks a
bundle with no access to the ledger or its state directory.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.core.files import new_folder
from governance.ledger._verify import _VerifyHelper, feed_tree
from governance.ledger.bundle_rows import BundleRows, bundle_row, split_point
from governance.ledger.canonical import CANONICAL_FORMATS, utc_now
from governance.ledger.checkpoint import (
    Checkpoint,
    CheckpointDirectory,
    load_public_key,
    public_key_bytes,
    verifier_key,
)
from governance.ledger.merkle import MerkleTree
from governance.ledger.note import parse_verifier_key
from governance.ledger.records import (
    RECORD_FORMAT_V1,
    RECORD_FORMATS,
    ChainBreak,
    ChainWalker,
    Record,
)
from governance.ledger.shards import MAX_SHARDS, SHARD_HEADS, add_committed
from governance.ledger.store import LedgerStore
from governance.ledger.tiles import (
    TILE_WIDTH,
    Tile,
    TileError,
    TileTree,
    tiles_for_size,
    write_tiles,
)
from governance.transparency.config import WITNESSES_FILE, WitnessConfig
from governance.transparency.readme import bundle_readme
from governance.transparency.sources import (
    COSIGNED_DIR,
    CannotCheck,
    fetch_witness_notes,
    local_notes,
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

__all__ = ["BUNDLE_FORMAT", "BundleSummary", "ShardSource", "verify_bundle", "write_bundle"]

BUNDLE_FORMAT = "governance.bundle/v1"
# About 60,000 records of 1.5-2 KB: below that a helper process costs more than it saves.
_PARALLEL_MIN_BYTES = 100_000_000


@dataclass(frozen=True)
class BundleSummary:
    """What :func:`write_bundle` wrote (records, newer and checkpoints over every shard)."""

    path: Path
    records: int
    newer: int
    checkpoints: int
    notes: int
    tiles: str
    shards: int = 1


@dataclass(frozen=True)
class ShardSource:
    """Shard ``1..K-1`` of a sharded ledger, for :func:`write_bundle`: its store, metadata and
    exported checkpoint folder (``<home>/checkpoints/<its ledger id>``)."""

    store: LedgerStore
    meta: dict[str, str]
    folder: Path


@dataclass(frozen=True)
class _Written:
    size: int
    newer: int
    checkpoints: int
    notes: int
    tiles: str


def _checkpoints(store: LedgerStore, folder: Path, origin: str) -> dict[int, Checkpoint]:
    found = store.checkpoints() + CheckpointDirectory(folder).all()
    by_size: dict[int, Checkpoint] = {}
    for cp in sorted(found, key=lambda c: c.timestamp):
        if cp.origin == origin:
            by_size.setdefault(cp.size, cp)
    return by_size


def write_bundle(
    out: Path,
    *,
    store: LedgerStore,
    meta: dict[str, str],
    public_key: Ed25519PublicKey,
    folder: Path,
    config: WitnessConfig,
    tiles_dir: Path | None,
    shards: Sequence[ShardSource] = (),
) -> BundleSummary:
    """Write an audit bundle of the records up to the newest checkpoint.

    Parameters
    ----------
    out
        A new (or empty) folder.
    store, meta
        The ledger's store and its metadata (a sharded ledger's: its control shard's).
    public_key
        The log's public key (from ``keys/checkpoint.pub``).
    folder
        The ledger's exported checkpoint folder (``<home>/checkpoints/<ledger id>``).
    config
        The witness configuration.
    tiles_dir
        Where tiles were published, if anywhere.
    shards
        A sharded ledger's other shards, in order: each is bundled the same way in
        ``shards/<i>/`` (up to its own newest checkpoint, no witnesses of its own), and
        ``ledger.json`` says ``"shards": K``.

    Raises
    ------
    CannotCheck
        If there is no checkpoint to bundle (in any shard) or ``out`` is not empty.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CannotCheck(f"{out} exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_folder(out.parent, f".{out.name}-")
    try:
        extra = {"shards": len(shards) + 1} if shards else {}
        parts = [_write_chain(tmp, store, meta, public_key, folder, config, tiles_dir, extra)]
        for i, shard in enumerate(shards, 1):
            try:
                parts.append(
                    _write_chain(
                        tmp / "shards" / str(i),
                        shard.store,
                        shard.meta,
                        public_key,
                        shard.folder,
                        WitnessConfig(),
                        None,
                        {"shard": i, "shard_of": meta["ledger_id"]},
                    )
                )
            except CannotCheck as exc:
                raise CannotCheck(f"shard {i}: {exc}") from None
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BundleSummary(
        out,
        sum(p.size for p in parts),
        sum(p.newer for p in parts),
        sum(p.checkpoints for p in parts),
        parts[0].notes,
        parts[0].tiles,
        len(parts),
    )


def _write_chain(
    tmp: Path,
    store: LedgerStore,
    meta: dict[str, str],
    public_key: Ed25519PublicKey,
    folder: Path,
    config: WitnessConfig,
    tiles_dir: Path | None,
    extra: dict[str, Any],
) -> _Written:
    """Bundle one chain into the folder ``tmp`` (see :func:`write_bundle`)."""
    origin = f"governance/ledger/{meta['ledger_id']}"
    by_size = _checkpoints(store, folder, origin)
    if not by_size:
        raise CannotCheck("no checkpoint to bundle: run `governance audit checkpoint` first")
    size = max(by_size)
    target = CheckpointDirectory(tmp / "checkpoints")
    for cp in by_size.values():
        target.write(cp)
    notes = local_notes(folder)
    (tmp / COSIGNED_DIR).mkdir(parents=True)
    for note in notes:
        shutil.copyfile(note.where, tmp / COSIGNED_DIR / Path(note.where).name)
    digest = hashlib.sha256()
    with (tmp / "records.jsonl").open("wb") as fh:
        for rows in store.iter_chain(0, size):
            chunk = b"".join(bytes(row[1]) + b"\n" for row in rows)
            digest.update(chunk)
            fh.write(chunk)
    tiles = _bundle_tiles(tmp / "tiles", store, size, by_size[size].root, tiles_dir)
    keys = tmp / "keys"
    keys.mkdir()
    raw = public_key_bytes(public_key)
    pem = public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    (keys / "checkpoint.pub").write_bytes(pem)
    (keys / "log.vkey").write_text(verifier_key(origin, raw) + "\n")
    WitnessConfig(config.witnesses, config.quorum).save(tmp / WITNESSES_FILE)
    doc = {
        "format": BUNDLE_FORMAT,
        "ledger_id": meta["ledger_id"],
        "origin": origin,
        "canonical": meta["canonical"],
        "record_format": meta.get("record_format", RECORD_FORMAT_V1),
        "size": size,
        "records_sha256": digest.hexdigest(),
        "created": utc_now(),
        **extra,
    }
    (tmp / "ledger.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    (tmp / "README.md").write_text(bundle_readme(doc))
    return _Written(size, store.head().size - size, len(by_size), len(notes), tiles)


def _bundle_tiles(
    out: Path, store: LedgerStore, size: int, root: bytes, published: Path | None
) -> str:
    """Copy the published tiles of ``size`` records if they match ``root``, else rebuild them."""
    if published is not None:
        try:
            if TileTree(published, size).root() == root:
                for tile in tiles_for_size(size):
                    target = out / tile.path()
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(published / tile.path(), target)
                return "published"
        except (TileError, ValueError, OSError):
            pass
    tree = MerkleTree()
    for hashes in store.iter_hashes(0, size):
        tree.extend([bytes(h) for h in hashes])
    write_tiles(out, tree, size)
    return "rebuilt from the stored hashes"


def _leaf_hashes(tiles: Path, size: int, root: bytes) -> bytes | None:
    """The level-0 tile hashes of ``size`` records, packed, if the tiles are those of the tree
    with ``root`` (``None``: a tile is missing or bad, or the tiles are of another tree)."""
    reader = TileTree(tiles, size)
    leaves: list[bytes] = []
    try:
        for index in range(0, size, TILE_WIDTH):
            width = min(TILE_WIDTH, size - index)
            leaves.append(reader.read(Tile(0, index // TILE_WIDTH, width)))
        if reader.root() != root:
            return None  # tiles of another tree: the records' own hashes are used
    except (TileError, ValueError, OSError):  # OSError: e.g. a folder where a tile should be
        return None
    return b"".join(leaves)


def _walk_bundle(
    records: Path,
    packed: bytes | None,
    v1: bool,
    walker: ChainWalker,
    tree: MerkleTree,
    target: int,
    workers: int | None,
) -> ChainWalker:
    """Walk every record of ``records.jsonl``, growing ``tree`` to ``target`` leaves.

    With a helper (see :func:`verify_bundle`'s ``workers``) this process walks ``[0, s)`` and
    the helper ``[s, end)``; a break in the first half is raised before the helper's result is
    looked at, so the first bad record is always the one named.

    Raises
    ------
    ChainBreak
        At the first bad record.
    """
    helper = _start_bundle_helper(records, packed, v1, walker, target, workers)
    stop = None if helper is None else helper.start
    source = BundleRows(records, v1, leaves=packed)
    try:
        fed: list[bytes] = []
        for rows in source.rows(0, stop):
            feed_tree(walker, tree, rows, target, fed)
        if helper is not None:
            walker = helper.finish(walker, tree)
    finally:
        if helper is not None:
            helper.close()
    return walker


def _start_bundle_helper(
    records: Path,
    packed: bytes | None,
    v1: bool,
    walker: ChainWalker,
    target: int,
    workers: int | None,
) -> _VerifyHelper | None:
    """Start a helper process on the second half of ``records.jsonl``, if worth it."""
    if workers is None:
        big = records.stat().st_size >= _PARALLEL_MIN_BYTES
        workers = 2 if (os.cpu_count() or 1) >= 2 and big else 1
    if workers < 2:
        return None
    split = split_point(records)
    if split is None:
        return None
    before = bundle_row(split.seq - 1, split.before, None, v1)
    stored = None if packed is None else packed[(split.seq - 1) * 32 : split.seq * 32]
    prev = stored if stored is not None and len(stored) == 32 else before[2]
    prev_ts = before[5]
    if not prev_ts:
        return None  # not a record there: the walk in this process names it
    source = BundleRows(
        records,
        v1,
        starts={split.seq: split.offset},
        leaves=None if packed is None else packed[split.seq * 32 :],
        leaves_from=split.seq,
    )
    try:
        return _VerifyHelper(
            source,
            split.seq,
            prev,
            prev_ts,
            walker.deep,
            target,
            walker.canonical,
            walker.record_format,
        )
    except OSError:
        return None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CannotCheck(f"{path.parent}: not an audit bundle ({what} is missing)") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, not JSON
        raise CannotCheck(f"{path}: unreadable: {exc}") from None


def _only_files_and_folders(path: Path) -> None:
    """Refuse a bundle that holds anything but regular files and folders (symlinks followed).

    The bundle comes from the operator: a FIFO would block its reader forever and a device
    (a link to ``/dev/zero``) would never end. Each folder is looked into once (link loops).

    Raises
    ------
    CannotCheck
        Naming the first such entry, or one that cannot be looked at.
    """
    if not path.is_dir():
        return  # _bundle_doc says so
    seen: set[tuple[int, int]] = set()
    folders = [path]
    while folders:
        folder = folders.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as entries:
                for entry in entries:
                    mode = os.stat(entry.path).st_mode  # through a symlink to what it names
                    if stat.S_ISDIR(mode):
                        folders.append(Path(entry.path))
                    elif not stat.S_ISREG(mode):
                        raise CannotCheck(f"{entry.path}: not a regular file or folder")
        except OSError as exc:
            raise CannotCheck(f"{exc.filename or folder}: unreadable: {exc.strerror}") from None


def verify_bundle(
    path: Path,
    *,
    public_key: Ed25519PublicKey | None = None,
    config: WitnessConfig | None = None,
    notes: Sequence[NoteSource] = (),
    fetch: bool = True,
    tile_dirs: Sequence[Path] = (),
    deep: bool = False,
    timeout: float = 10.0,
    workers: int | None = None,
) -> Report:
    """Verify an audit bundle with nothing but public material.

    Parameters
    ----------
    path
        The bundle folder.
    public_key
        The log key the verifier trusts; default: the bundle's ``keys/checkpoint.pub`` (check
        it against the key the operator published elsewhere).
    config
        The witnesses and quorum the verifier trusts; default: the bundle's ``witnesses.json``.
    notes
        Cosigned checkpoint notes the verifier kept.
    fetch
        Also ask the witnesses for the latest checkpoint they cosigned.
    tile_dirs
        Tiles of earlier publications (name the first changed record).
    deep
        Also require canonical bytes and an ``idx`` that agrees with each body.
    timeout
        Seconds to wait for the witnesses.
    workers
        Processes walking the records: 1, or 2 to have a helper process walk the second half
        of ``records.jsonl`` (checked from the hash and time of the record before it; the
        halves must meet, and a bad record in the first half is named before any in the
        second). By default 2 from 100 MB of records on a machine with two or more cores.

    Raises
    ------
    CannotCheck
        If the folder is not a readable bundle (exit code 2).
    """
    path = Path(path)
    _only_files_and_folders(path)
    doc = _bundle_doc(path)
    if public_key is None:
        try:
            public_key = load_public_key(path / "keys" / "checkpoint.pub")
        except (OSError, ValueError) as exc:
            raise CannotCheck(f"{path}/keys/checkpoint.pub: unreadable key: {exc}") from None
    if config is None:
        try:
            where = path / WITNESSES_FILE
            config = WitnessConfig.from_json(_read_json(where, WITNESSES_FILE), where)
        except ValueError as exc:
            raise CannotCheck(str(exc)) from None
    all_notes = [*local_notes(path), *notes]
    answers: dict[str, str] = {}
    if fetch:
        fetched, answers = fetch_witness_notes(config, doc["origin"], timeout=timeout)
        all_notes += fetched
    chain = _BundleChain(public_key, deep, workers)
    report = chain.check(path, doc, all_notes, config, answers, tile_dirs)
    k = doc.get("shards", 1)
    if not isinstance(k, int) or not 1 <= k <= MAX_SHARDS:
        raise CannotCheck(f"{path}/ledger.json: unreadable shard count {k!r}")
    committed: dict[int, list[tuple[str, Checkpoint]]] = {}
    if report.ok:
        try:
            committed = _committed(path / "records.jsonl", report.records)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            why = f"a shard_heads record is malformed: {exc}"
            report = replace(report, ok=False, code=EXIT_INTEGRITY, reason=why)
    report = stray_shards(report, committed, k)
    if k == 1:
        return report
    parts = [(0, ".", doc["ledger_id"], report)]
    for i in range(1, k if report.ok else 1):
        ledger_id, part = chain.shard(path / "shards" / str(i), i, doc, committed.get(i, []))
        parts.append((i, f"shards/{i}", ledger_id, part))
        if not part.ok:
            break
    return merge_shards(report, parts)


def _bundle_doc(path: Path) -> dict[str, Any]:
    """A bundle's ``ledger.json``, checked to be one (:class:`CannotCheck` otherwise): its
    ids are text, its formats known and its size a whole number."""
    if not path.is_dir():
        raise CannotCheck(f"--bundle {path}: no such folder")
    doc = _read_json(path / "ledger.json", "ledger.json")
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise CannotCheck(f"{path}/ledger.json: not a {BUNDLE_FORMAT} bundle")
    wanted: dict[str, tuple[str, Callable[[Any], bool]]] = {
        "ledger_id": ("text", lambda v: isinstance(v, str) and v != ""),
        "origin": ("text", lambda v: isinstance(v, str) and v != ""),
        "canonical": (" or ".join(CANONICAL_FORMATS), lambda v: v in CANONICAL_FORMATS),
        "record_format": (" or ".join(RECORD_FORMATS), lambda v: v in RECORD_FORMATS),
        "size": ("a whole number >= 0", lambda v: type(v) is int and v >= 0),
    }
    for key, (what, good) in wanted.items():
        if not good(doc.get(key)):
            raise CannotCheck(f"{path}/ledger.json: {key} is {doc.get(key)!r}, not {what}")
    return doc


def _committed(records: Path, stop: int) -> dict[int, list[tuple[str, Checkpoint]]]:
    """The shard checkpoints the ``shard_heads`` records among the first ``stop`` commit to."""
    found: dict[int, list[tuple[str, Checkpoint]]] = {}
    marker = f'"type":"{SHARD_HEADS}"'.encode()  # canonical JSON: no spaces
    if records.stat().st_size == 0:
        return found
    with records.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        at = mm.find(marker)  # a memory search: about the cost of reading the file once
        while at >= 0:
            start = mm.rfind(b"\n", 0, at) + 1
            end = mm.find(b"\n", at)
            record = Record.from_bytes(mm[start : end if end >= 0 else len(mm)])
            if record.seq >= stop:
                break
            if record.type == SHARD_HEADS:  # not a string inside some other record's body
                add_committed(found, record)
            at = mm.find(marker, end if end >= 0 else len(mm))
    return found


@dataclass(frozen=True)
class _BundleChain:
    """How to check one chain of a bundle (the bundle, or one shard's folder in it)."""

    public_key: Ed25519PublicKey
    deep: bool
    workers: int | None

    def shard(
        self,
        path: Path,
        i: int,
        control: dict[str, Any],
        committed: Sequence[tuple[str, Checkpoint]],
    ) -> tuple[str, Report]:
        """Check shard ``i``'s folder against its checkpoints and the ``committed`` ones."""
        try:
            doc = _bundle_doc(path)
        except CannotCheck as exc:
            if not committed:
                raise
            why = f"the control shard committed to its records, and its folder is unusable: {exc}"
            return "?", Report(ok=False, code=EXIT_INTEGRITY, reason=why)
        if doc.get("shard_of") != control["ledger_id"] or doc.get("shard") != i:
            why = (
                f"it is shard {doc.get('shard')} of ledger {doc.get('shard_of')},"
                f" not shard {i} of {control['ledger_id']}"
            )
            code = EXIT_INTEGRITY if committed else EXIT_CANNOT_CHECK
            return str(doc.get("ledger_id", "?")), Report(ok=False, code=code, reason=why)
        return doc["ledger_id"], self.check(
            path, doc, local_notes(path), WitnessConfig(), {}, (), committed
        )

    def check(
        self,
        path: Path,
        doc: dict[str, Any],
        notes: Sequence[NoteSource],
        config: WitnessConfig,
        answers: dict[str, str],
        tile_dirs: Sequence[Path],
        committed: Sequence[tuple[str, Checkpoint]] = (),
    ) -> Report:
        """Check the chain in the bundle folder ``path`` described by ``doc``."""
        origin, size = doc["origin"], doc["size"]
        try:
            checkpoints = CheckpointDirectory(path / "checkpoints").all()
        except (ValueError, OSError) as exc:
            raise CannotCheck(f"{path}/checkpoints: {exc}") from None
        if not (path / "records.jsonl").is_file():
            raise CannotCheck(f"{path}: not an audit bundle (records.jsonl is missing)")
        try:
            log = parse_verifier_key(verifier_key(origin, public_key_bytes(self.public_key)))
        except ValueError as exc:
            raise CannotCheck(f"{path}/ledger.json: origin {origin!r}: {exc}") from None
        signed = {cp.size: cp for cp in checkpoints if cp.origin == origin}
        tiles = path / "tiles"
        leaves = _leaf_hashes(tiles, size, signed[size].root) if size in signed else None
        v1 = doc.get("record_format") == RECORD_FORMAT_V1
        records = path / "records.jsonl"

        def walk(target: int) -> tuple[MerkleTree, int]:
            walker = ChainWalker(
                deep=self.deep, canonical=doc["canonical"], record_format=doc["record_format"]
            )
            tree = MerkleTree()
            walker = _walk_bundle(records, leaves, v1, walker, tree, target, self.workers)
            if walker.next_seq > target:  # the operator's bundle stops at a signed size
                raise ChainBreak(
                    target,
                    f"records.jsonl goes on past the newest checkpoint ({target:,} records):"
                    " no signature covers these records, which were added to the bundle",
                )
            return tree, walker.next_seq

        found = [(f"bundled {path.name}/checkpoints", cp) for cp in checkpoints]
        report = check(
            walk=walk,
            origin=origin,
            log_key=self.public_key,
            log_verifier=log,
            checkpoints=[*found, *committed],
            notes=notes,
            config=config,
            answers=answers,
            tile_dirs=[*tile_dirs, tiles],
        )
        if report.ok and report.records != size:  # fewer: a signed prefix, cut back by someone
            why = (
                f"{path.name}/ledger.json says the bundle holds {size:,} records, but"
                f" records.jsonl holds {report.records:,}"
            )
            return replace(
                report, ok=False, code=EXIT_INTEGRITY, reason=why, first_bad=report.records
            )
        return report
