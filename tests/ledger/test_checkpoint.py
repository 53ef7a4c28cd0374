"""Tests for :mod:`governance.ledger.checkpoint` (signed checkpoints and their export)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.ledger.checkpoint import (
    CHECKPOINT_FORMAT,
    ERR_FORK,
    ERR_PUBLIC_KEY_MISMATCH,
    Checkpoint,
    CheckpointDirectory,
    key_id_for,
    load_or_create_signing_key,
    load_public_key,
    note_signature_line,
    public_key_bytes,
    public_key_path,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
)
from governance.ledger.merkle import MerkleTree, leaf_hash, verify_consistency

ORIGIN = "governance/ledger/7f3a9c"
TIMESTAMP = "2026-07-30T12:34:56.123456Z"
ROOT = bytes(range(32))

# golang.org/x/mod/sumdb/note note_test.go (github.com/golang/mod, commit 02c99138): the
# reference signed-note implementation's key pair and signed note. Ed25519 is deterministic, so
# signing the same text must give the same bytes.
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_SIGNATURE_LINE = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def cp(key: Ed25519PrivateKey) -> Checkpoint:
    return sign_checkpoint(key, origin=ORIGIN, size=1024, root=ROOT, timestamp=TIMESTAMP)


# -- signing and verification ----------------------------------------------------------------


def test_body_is_a_c2sp_checkpoint_with_a_timestamp_extension_line(cp: Checkpoint) -> None:
    root_b64 = base64.b64encode(ROOT).decode()
    assert cp.body() == f"{ORIGIN}\n1024\n{root_b64}\ntimestamp {TIMESTAMP}\n".encode()
    assert (cp.origin, cp.size, cp.root, cp.timestamp) == (ORIGIN, 1024, ROOT, TIMESTAMP)
    assert len(cp.signature) == 64


def test_sign_verify_round_trip(key: Ed25519PrivateKey, cp: Checkpoint) -> None:
    assert verify_checkpoint(cp, key.public_key())
    assert verify_checkpoint(cp, public_key_bytes(key))
    assert verify_checkpoint(cp, public_key_bytes(key.public_key()))
    key.public_key().verify(cp.signature, cp.body())  # plain Ed25519 over the body


def test_key_id_is_the_c2sp_key_hash_of_the_origin_and_key(
    key: Ed25519PrivateKey, cp: Checkpoint
) -> None:
    raw = public_key_bytes(key)
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4].hex()
    assert cp.key_id == expected == key_id_for(ORIGIN, raw)
    assert key_id_for("another/ledger", raw) != cp.key_id


def test_default_timestamp_is_utc_now_with_z(key: Ed25519PrivateKey) -> None:
    fresh = sign_checkpoint(key, origin=ORIGIN, size=0, root=ROOT)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", fresh.timestamp)
    signed_at = datetime.fromisoformat(fresh.timestamp)
    assert abs(datetime.now(UTC) - signed_at) < timedelta(minutes=1)
    assert verify_checkpoint(fresh, key.public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"size": 1023},
        {"size": 1025},
        {"root": bytes([ROOT[0] ^ 1]) + ROOT[1:]},
        {"root": ROOT[::-1]},
        {"timestamp": "2026-07-30T12:34:56.123457Z"},
        {"signature": "flip"},
        {"signature": bytes(64)},
        {"key_id": "00000000"},
        {"origin": "governance/ledger/other"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_tampered_checkpoints_are_rejected(
    key: Ed25519PrivateKey, cp: Checkpoint, change: dict[str, object]
) -> None:
    if change.get("signature") == "flip":
        change = {"signature": bytes([cp.signature[0] ^ 0x80]) + cp.signature[1:]}
    tampered = dataclasses.replace(cp, **change)  # type: ignore[arg-type]
    assert not verify_checkpoint(tampered, key.public_key())


def test_changed_origin_is_rejected_even_with_a_matching_key_id(
    key: Ed25519PrivateKey, cp: Checkpoint
) -> None:
    other = "governance/ledger/other"
    moved = dataclasses.replace(cp, origin=other, key_id=key_id_for(other, key))
    assert not verify_checkpoint(moved, key.public_key())


def test_tampered_body_in_a_note_is_rejected(key: Ed25519PrivateKey, cp: Checkpoint) -> None:
    note = cp.to_note()
    forged = note.replace("\n1024\n", "\n1000\n", 1)
    assert forged != note
    assert not verify_checkpoint(Checkpoint.from_note(forged), key.public_key())


def test_wrong_key_is_rejected(key: Ed25519PrivateKey, cp: Checkpoint) -> None:
    other = Ed25519PrivateKey.generate()
    assert not verify_checkpoint(cp, other.public_key())
    assert not verify_checkpoint(cp, public_key_bytes(other))
    # A checkpoint signed by another key that claims the trusted key's ID.
    forged = sign_checkpoint(other, origin=ORIGIN, size=1024, root=ROOT, timestamp=TIMESTAMP)
    forged = dataclasses.replace(forged, key_id=cp.key_id)
    assert not verify_checkpoint(forged, key.public_key())


def test_verify_rejects_non_checkpoints_and_refuses_bad_keys(
    key: Ed25519PrivateKey, cp: Checkpoint
) -> None:
    assert not verify_checkpoint(cp.to_json(), key.public_key())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        verify_checkpoint(cp, b"\x00" * 31)
    with pytest.raises(TypeError):
        verify_checkpoint(cp, "not a key")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("origin", ""),
        ("origin", "has space"),
        ("origin", "has+plus"),
        ("origin", "has\nnewline"),
        ("origin", "tab\there"),
        ("size", -1),
        ("size", True),
        ("size", "1024"),
        ("root", ROOT[:31]),
        ("root", ROOT.hex()),
        ("timestamp", "2026-07-30T12:34:56+00:00"),
        ("timestamp", "2026-07-30 12:34:56Z"),
        ("timestamp", "2026-07-30T12:34:56.1234567Z"),
        ("timestamp", "2026-13-30T12:34:56Z"),
        ("timestamp", "2026-07-30"),
        ("key_id", "ABCDEF01"),
        ("key_id", "abcdef0"),
        ("signature", bytes(63)),
    ],
)
def test_malformed_fields_are_refused(cp: Checkpoint, field: str, value: object) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(cp, **{field: value})  # type: ignore[arg-type]


def test_sign_refuses_malformed_fields(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError):
        sign_checkpoint(key, origin="bad origin", size=1, root=ROOT, timestamp=TIMESTAMP)
    with pytest.raises(ValueError):
        sign_checkpoint(key, origin=ORIGIN, size=1, root=ROOT[:8], timestamp=TIMESTAMP)
    with pytest.raises(ValueError):
        sign_checkpoint(key, origin=ORIGIN, size=1, root=ROOT, timestamp="yesterday")


# -- serialisation -----------------------------------------------------------------------------


def test_json_round_trip(key: Ed25519PrivateKey, cp: Checkpoint) -> None:
    data = cp.to_json()
    assert data == {
        "format": CHECKPOINT_FORMAT,
        "origin": ORIGIN,
        "size": 1024,
        "root": ROOT.hex(),
        "timestamp": TIMESTAMP,
        "key_id": cp.key_id,
        "signature": cp.signature.hex(),
    }
    again = Checkpoint.from_json(json.loads(json.dumps(data)))
    assert again == cp
    assert verify_checkpoint(again, key.public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"format": "something/else"},
        {"format": None},
        {"root": None},
        {"root": ROOT.hex().upper()},
        {"root": "zz" * 32},
        {"root": ROOT.hex()[:-1]},
        {"root": " ".join([ROOT.hex()[:32], ROOT.hex()[32:]])},
        {"signature": 123},
        {"size": "1024"},
        {"timestamp": None},
    ],
)
def test_from_json_refuses_malformed_input(cp: Checkpoint, change: dict[str, object]) -> None:
    data = {**cp.to_json(), **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValueError):
        Checkpoint.from_json(data)
    with pytest.raises(ValueError):
        Checkpoint.from_json([data])  # type: ignore[arg-type]


def test_note_round_trip_and_format(key: Ed25519PrivateKey, cp: Checkpoint) -> None:
    note = cp.to_note()
    body, _, signatures = note.rpartition("\n\n")
    assert (body + "\n").encode() == cp.body()
    blob = base64.b64encode(bytes.fromhex(cp.key_id) + cp.signature).decode()
    assert signatures == f"\u2014 {ORIGIN} {blob}\n"
    assert Checkpoint.from_note(note) == cp
    # Other signatures (e.g. a witness cosignature) are skipped.
    witness = note_signature_line("witness.example/w1", "01020304", bytes(64))
    assert Checkpoint.from_note(note + witness) == cp
    assert Checkpoint.from_note(cp.body().decode() + "\n" + witness + signatures) == cp


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n"),
        lambda n: n.replace("\n1024\n", "\n01024\n"),
        lambda n: n.replace("\n1024\n", "\n-1024\n"),
        lambda n: n.replace("timestamp ", "time "),
        lambda n: n.replace(ORIGIN + " ", "someone/else "),
        lambda n: n.replace("\u2014", "-"),
        lambda n: n[:-1],
        lambda n: n.replace("=\n", "!\n"),
    ],
)
def test_from_note_refuses_malformed_notes(cp: Checkpoint, mangle: object) -> None:
    with pytest.raises(ValueError):
        Checkpoint.from_note(mangle(cp.to_note()))  # type: ignore[operator]


def test_matches_the_go_signed_note_reference_vector() -> None:
    _, _, name, key_hash, encoded = GO_SIGNER_KEY.split("+", 4)
    seed = base64.b64decode(encoded)
    assert seed[0] == 1  # Ed25519
    go_key = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert key_id_for(name, go_key) == key_hash == "c74f20a3"
    assert verifier_key(name, go_key.public_key()) == GO_VERIFIER_KEY
    line = note_signature_line(name, key_id_for(name, go_key), go_key.sign(GO_TEXT))
    assert line == GO_SIGNATURE_LINE


def test_verifier_key_of_a_checkpoint_key(key: Ed25519PrivateKey, cp: Checkpoint) -> None:
    name, key_hash, encoded = verifier_key(ORIGIN, key).split("+", 2)
    assert (name, key_hash) == (ORIGIN, cp.key_id)
    assert base64.b64decode(encoded) == b"\x01" + public_key_bytes(key)


# -- key files ---------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_signing_key_is_created_0600_with_its_public_key_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "nested" / "ledger.pem"
    key = load_or_create_signing_key(path)
    assert _mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    pub_path = public_key_path(path)
    assert pub_path == tmp_path / "secrets" / "nested" / "ledger.pub"
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert _mode(pub_path) == 0o644
    assert public_key_bytes(load_public_key(pub_path)) == public_key_bytes(key)

    before = path.read_bytes(), pub_path.read_bytes()
    again = load_or_create_signing_key(path)
    assert public_key_bytes(again) == public_key_bytes(key)
    assert (path.read_bytes(), pub_path.read_bytes()) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.pem", "ledger.pub"]

    # An auditor verifies offline with nothing but the .pub file.
    checkpoint = sign_checkpoint(key, origin=ORIGIN, size=3, root=ROOT)
    assert verify_checkpoint(checkpoint, load_public_key(pub_path))


def test_missing_public_key_file_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    key = load_or_create_signing_key(path)
    public_key_path(path).unlink()
    load_or_create_signing_key(path)
    assert public_key_bytes(load_public_key(tmp_path / "ledger.pub")) == public_key_bytes(key)


def test_mismatched_public_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.pem"
    load_or_create_signing_key(path)
    other = Ed25519PrivateKey.generate().public_key()
    public_key_path(path).write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    message = ERR_PUBLIC_KEY_MISMATCH.format(path=public_key_path(path))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_or_create_signing_key(path)


def test_existing_unusable_key_files_are_refused_not_overwritten(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    with pytest.raises(ValueError):
        load_or_create_signing_key(garbage)
    assert garbage.read_bytes() == b"not a key"

    ecdsa = tmp_path / "ecdsa.pem"
    ecdsa.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        load_or_create_signing_key(ecdsa)
    with pytest.raises(ValueError):
        load_or_create_signing_key(tmp_path / "ledger.pub")
    with pytest.raises(ValueError):
        load_public_key(garbage)


def test_concurrent_first_use_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.pem"
    barrier = threading.Barrier(8)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(public_key_bytes(load_or_create_signing_key(path)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert public_key_bytes(load_or_create_signing_key(path)) == results[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.pem", "ledger.pub"]


# -- the checkpoint directory ------------------------------------------------------------------


def _signed(key: Ed25519PrivateKey, size: int, root: bytes = ROOT, **kw: str) -> Checkpoint:
    return sign_checkpoint(
        key,
        origin=kw.get("origin", ORIGIN),
        size=size,
        root=root,
        timestamp=kw.get("timestamp", TIMESTAMP),
    )


def test_write_names_files_by_zero_padded_size(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    directory = CheckpointDirectory(tmp_path / "checkpoints")
    assert directory.all() == []
    assert directory.latest() is None
    path = directory.write(_signed(key, 1024))
    assert path == tmp_path / "checkpoints" / "000000001024.json"
    assert json.loads(path.read_text()) == _signed(key, 1024).to_json()
    assert directory.path_for(7).name == "000000000007.json"


def test_write_is_idempotent(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    directory = CheckpointDirectory(tmp_path)
    cp = _signed(key, 10)
    path = directory.write(cp)
    content = path.read_bytes()
    assert directory.write(cp) == path
    assert path.read_bytes() == content
    # The same tree head signed later: the first attestation is kept, nothing is overwritten.
    later = _signed(key, 10, timestamp="2027-01-01T00:00:00Z")
    assert directory.write(later) == path
    assert path.read_bytes() == content
    assert directory.all() == [cp]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000000010.json"]  # no temp files


def test_write_refuses_a_fork(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    directory = CheckpointDirectory(tmp_path)
    path = directory.write(_signed(key, 10))
    content = path.read_bytes()
    forked_root = bytes(32)
    message = ERR_FORK.format(path=path, size=10, existing=ROOT.hex(), new=forked_root.hex())
    with pytest.raises(ValueError, match=re.escape(message)):
        directory.write(_signed(key, 10, root=forked_root))
    assert path.read_bytes() == content
    with pytest.raises(ValueError, match="origin"):
        directory.write(_signed(key, 10, origin="governance/ledger/other"))
    assert path.read_bytes() == content


def test_all_is_ordered_by_size_and_latest_is_the_largest(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    directory = CheckpointDirectory(tmp_path)
    sizes = [512, 3, 10**12 + 5, 0, 1024, 99]
    for size in sizes:
        directory.write(_signed(key, size, root=size.to_bytes(32, "big")))
    (tmp_path / "README.txt").write_text("checkpoints of the decision ledger\n")
    (tmp_path / ".000000000004.json.abc.tmp").write_text("{")  # a crashed writer's leftover
    found = directory.all()
    assert [cp.size for cp in found] == sorted(sizes)
    assert all(verify_checkpoint(cp, key.public_key()) for cp in found)
    latest = directory.latest()
    assert latest is not None
    assert latest.size == 10**12 + 5
    assert latest.root == (10**12 + 5).to_bytes(32, "big")


def test_renamed_or_corrupted_files_are_reported(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    directory = CheckpointDirectory(tmp_path)
    path = directory.write(_signed(key, 10))
    path.rename(tmp_path / "000000000011.json")
    with pytest.raises(ValueError, match="file name says size 000000000011"):
        directory.all()
    (tmp_path / "000000000011.json").write_text("{not json")
    with pytest.raises(ValueError):
        directory.all()
    with pytest.raises(ValueError):
        directory.latest()


def test_exported_checkpoints_detect_truncation_and_rewriting(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """The end-to-end purpose: a copy of the directory still convicts a rewritten ledger."""
    leaves = [leaf_hash(b"record %d" % i) for i in range(100)]
    tree = MerkleTree(leaves)
    exported = CheckpointDirectory(tmp_path / "exported")
    for size in (50, 100):
        exported.write(_signed(key, size, root=tree.root(size)))
    copy = tmp_path / "auditor-copy"
    shutil.copytree(exported.path, copy)
    audited = CheckpointDirectory(copy).all()
    assert [cp.size for cp in audited] == [50, 100]
    assert all(verify_checkpoint(cp, key.public_key()) for cp in audited)

    truncated = MerkleTree(leaves[:80])
    latest = CheckpointDirectory(copy).latest()
    assert latest is not None
    assert latest.size > truncated.size  # the ledger lost records

    rewritten = [*leaves, leaf_hash(b"record 100")]
    rewritten[10] = leaf_hash(b"a different decision")
    forged = MerkleTree(rewritten)
    for cp in audited:
        assert forged.root(cp.size) != cp.root
        assert not verify_consistency(
            cp.size, forged.size, cp.root, forged.root(), forged.consistency_proof(cp.size)
        )
    honest = MerkleTree([*leaves, leaf_hash(b"record 100")])
    for cp in audited:
        assert verify_consistency(
            cp.size, honest.size, cp.root, honest.root(), honest.consistency_proof(cp.size)
        )
