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
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger.canonical import parse_json, utc_now
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
    ChainWalker,
    index_columns,
    record_hash,
    subject_tag,
)
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
from governance.transparency.verify import NoteSource, Report, check

__all__ = ["BUNDLE_FORMAT", "BundleSummary", "verify_bundle", "write_bundle"]

BUNDLE_FORMAT = "governance.bundle/v1"
_BATCH = 4096


@dataclass(frozen=True)
class BundleSummary:
    """What :func:`write_bundle` wrote."""

    path: Path
    records: int
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
) -> BundleSummary:
    """Write an audit bundle of the records up to the newest checkpoint.

    Parameters
    ----------
    out
        A new (or empty) folder.
    store, meta
        The ledger's store and its metadata.
    public_key
        The log's public key (from ``keys/checkpoint.pub``).
    folder
        The ledger's exported checkpoint folder (``<home>/checkpoints/<ledger id>``).
    config
        The witness configuration.
    tiles_dir
        Where tiles were published, if anywhere.

    Raises
    ------
    CannotCheck
        If there is no checkpoint to bundle or ``out`` is not empty.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CannotCheck(f"{out} exists and is not an empty folder")
    origin = f"governance/ledger/{meta['ledger_id']}"
    by_size = _checkpoints(store, folder, origin)
    if not by_size:
        raise CannotCheck("no checkpoint to bundle: run `governance audit checkpoint` first")
    size = max(by_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        target = CheckpointDirectory(tmp / "checkpoints")
        for cp in by_size.values():
            target.write(cp)
        notes = local_notes(folder)
        (tmp / COSIGNED_DIR).mkdir()
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
        }
        (tmp / "ledger.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        (tmp / "README.md").write_text(bundle_readme(doc))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BundleSummary(out, size, store.head().size - size, len(by_size), len(notes), tiles)


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


def _leaf_hashes(tiles: Path, size: int) -> list[bytes] | None:
    """The level-0 tile hashes of ``size`` records, or ``None`` if a tile is missing or bad."""
    reader = TileTree(tiles, size)
    leaves: list[bytes] = []
    try:
        for index in range(0, size, TILE_WIDTH):
            width = min(TILE_WIDTH, size - index)
            data = reader.read(Tile(0, index // TILE_WIDTH, width))
            leaves += [data[i : i + 32] for i in range(0, len(data), 32)]
    except (TileError, ValueError):
        return None
    return leaves


def _row(seq: int, data: bytes, stored: bytes | None, v1: bool) -> tuple[Any, ...]:
    """A chain row for a bundled record: its columns as the record itself states them."""
    try:
        value = parse_json(data)
        rid, rtype, rts = (str(value[k]).encode() for k in ("id", "type", "ts"))
        if v1:
            sk, name, version, ref = index_columns(str(value["type"]), value["body"])
        else:
            idx = value["idx"]
            sk, name, version, ref = (idx.get(k) for k in ("subject", "model", "version", "ref"))
        tag = subject_tag(sk) if isinstance(sk, str) else None
    except (ValueError, TypeError, KeyError, AttributeError):
        rid = rtype = rts = b""  # not a record: the walker says so for this seq
        sk = tag = name = version = ref = None
    digest = record_hash(data) if stored is None else stored
    return (seq, data, digest, rid, rtype, rts, sk, tag, name, version, ref)


def _bundle_rows(
    path: Path, leaves: Sequence[bytes] | None, v1: bool
) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    with path.open("rb") as fh:
        for seq, line in enumerate(fh):
            data = line[:-1] if line.endswith(b"\n") else line
            stored = leaves[seq] if leaves is not None and seq < len(leaves) else None
            batch.append(_row(seq, data, stored, v1))
            if len(batch) >= _BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CannotCheck(f"{path.parent}: not an audit bundle ({what} is missing)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CannotCheck(f"{path}: unreadable: {exc}") from None


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

    Raises
    ------
    CannotCheck
        If the folder is not a readable bundle (exit code 2).
    """
    path = Path(path)
    if not path.is_dir():
        raise CannotCheck(f"--bundle {path}: no such folder")
    doc = _read_json(path / "ledger.json", "ledger.json")
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise CannotCheck(f"{path}/ledger.json: not a {BUNDLE_FORMAT} bundle")
    origin, size = doc["origin"], doc["size"]
    if public_key is None:
        try:
            public_key = load_public_key(path / "keys" / "checkpoint.pub")
        except (OSError, ValueError) as exc:
            raise CannotCheck(f"{path}/keys/checkpoint.pub: unreadable key: {exc}") from None
    if config is None:
        try:
            config = WitnessConfig.from_json(_read_json(path / WITNESSES_FILE, WITNESSES_FILE))
        except ValueError as exc:
            raise CannotCheck(str(exc)) from None
    try:
        checkpoints = CheckpointDirectory(path / "checkpoints").all()
    except ValueError as exc:
        raise CannotCheck(f"{path}/checkpoints: {exc}") from None
    if not (path / "records.jsonl").is_file():
        raise CannotCheck(f"{path}: not an audit bundle (records.jsonl is missing)")
    log = parse_verifier_key(verifier_key(origin, public_key_bytes(public_key)))
    all_notes = [*local_notes(path), *notes]
    answers: dict[str, str] = {}
    if fetch:
        fetched, answers = fetch_witness_notes(config, origin, timeout=timeout)
        all_notes += fetched
    signed = {cp.size: cp for cp in checkpoints if cp.origin == origin}
    tiles = path / "tiles"
    leaves = _leaf_hashes(tiles, size) if size in signed else None
    if leaves is not None and TileTree(tiles, size).root() != signed[size].root:
        leaves = None  # tiles of another tree: use the hashes the records give
    v1 = doc.get("record_format") == RECORD_FORMAT_V1

    def walk(target: int) -> tuple[MerkleTree, int]:
        walker = ChainWalker(
            deep=deep, canonical=doc["canonical"], record_format=doc["record_format"]
        )
        tree = MerkleTree()
        for rows in _bundle_rows(path / "records.jsonl", leaves, v1):
            fed: list[bytes] = []
            walker.feed(rows, fed)
            tree.extend(fed[: max(0, target - tree.size)])
        return tree, walker.next_seq

    return check(
        walk=walk,
        origin=origin,
        log_key=public_key,
        log_verifier=log,
        checkpoints=[(f"bundled {path.name}/checkpoints", cp) for cp in checkpoints],
        notes=all_notes,
        config=config,
        answers=answers,
        tile_dirs=[*tile_dirs, tiles],
    )
