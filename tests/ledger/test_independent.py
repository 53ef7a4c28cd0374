"""What the package produces, checked by the independent verifier in ``tests/independent.py``.

The verifier imports nothing from ``governance``: RFC 9162 proofs are rebuilt from the RFC's
recursive definitions and signatures are checked by ``openssl``. It is first checked against
the published RFC 6962/9162 vectors (transparency-dev/merkle, as in ``test_merkle.py``) and the
C2SP signed-note example, so that it is not merely agreeing with the package.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from independent import consistency_ok, inclusion_ok, note_signed_by

from governance.ledger.merkle import MerkleTree
from governance.ledger.note import (
    ALG_COSIGNATURE_V1,
    CheckpointBody,
    Signer,
    parse_note,
    sign_note,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

h = bytes.fromhex
KAT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43"]
KAT_LEAVES += [bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
KAT_ROOT_8 = h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
KAT_ROOT_5 = h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4")
KAT_ROOT_2 = h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")
KAT_INCLUSION_1_5 = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
]
KAT_CONSISTENCY_2_5 = [
    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
]
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def test_independent_verifier_accepts_the_published_vectors() -> None:
    leaves = [_leaf(x) for x in KAT_LEAVES]
    assert inclusion_ok(leaves[1], 1, 5, KAT_INCLUSION_1_5, KAT_ROOT_5)
    assert not inclusion_ok(leaves[2], 1, 5, KAT_INCLUSION_1_5, KAT_ROOT_5)
    assert consistency_ok(2, 5, KAT_ROOT_2, KAT_ROOT_5, KAT_CONSISTENCY_2_5)
    assert not consistency_ok(2, 5, KAT_ROOT_2, KAT_ROOT_8, KAT_CONSISTENCY_2_5)
    assert note_signed_by(C2SP_NOTE, C2SP_VKEY)
    assert not note_signed_by(C2SP_NOTE.replace("example message", "example massage"), C2SP_VKEY)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 600), st.data())
def test_package_proofs_verify_independently(size: int, data: st.DataObject) -> None:
    leaves = [_leaf(b"record %d" % i) for i in range(size)]
    tree = MerkleTree(leaves)
    root = tree.root()
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion_proof(index)
    assert inclusion_ok(leaves[index], index, size, proof, root)
    assert not inclusion_ok(_leaf(b"forged"), index, size, proof, root)
    old = data.draw(st.integers(1, size))
    proof = tree.consistency_proof(old)
    assert consistency_ok(old, size, tree.root(old), root, proof)
    if proof:
        bad = list(proof)
        bad[data.draw(st.integers(0, len(bad) - 1))] = bytes(32)
        assert not consistency_ok(old, size, tree.root(old), root, bad)
    assert not consistency_ok(old, size, _leaf(b"other history"), root, proof)


def test_package_notes_and_cosignatures_verify_with_openssl() -> None:
    log = Signer.generate("governance/ledger/0123abcd")
    witness = Signer.generate("witness.example/w1", ALG_COSIGNATURE_V1)
    tree = MerkleTree([_leaf(b"r%d" % i) for i in range(37)])
    body = CheckpointBody(log.name, 37, tree.root(), ("timestamp 2026-07-30T12:34:56.123456Z",))
    cosigned = sign_note(parse_note(sign_note(body.text(), [log])), [witness])
    assert note_signed_by(cosigned, log.verifier().vkey)
    assert note_signed_by(cosigned, witness.verifier().vkey)
    tampered = cosigned.replace("\n37\n", "\n38\n")
    assert not note_signed_by(tampered, log.verifier().vkey)
    assert not note_signed_by(tampered, witness.verifier().vkey)
