"""Tests for :mod:`governance.ledger.note` (C2SP signed notes, checkpoints, cosignatures).

Known-answer vectors, copied as data:

* golang.org/x/mod/sumdb/note ``note_test.go`` (github.com/golang/mod at fe2ec04): the
  PeterNeumann / EnochRoot keys, the signed Peter Neumann quote, and the malformed notes of
  ``TestOpen``; ``sumdb/tlog/note_test.go``: the ``go.sum database tree`` checkpoint text.
* c2sp.org/signed-note (github.com/C2SP/C2SP at 5ba5ee8): the ``example.com/foo`` verifier key
  and signed note; c2sp.org/tlog-cosignature: the cosignature line of its example (timestamp
  1679315147).
* github.com/transparency-dev/formats ``note/note_cosigv1_test.go``: a native cosignature/v1
  verifier key (``remora.n621.de``) and a cosignature whose timestamp is 1727964367.

Ed25519 is deterministic, so signing the same text with the same seed must give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.ledger.merkle import leaf_hash
from governance.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    CheckpointBody,
    NoteError,
    Signature,
    Signer,
    UnverifiedNoteError,
    Verifier,
    cosignature_message,
    cosignature_timestamp,
    key_id,
    open_note,
    parse_checkpoint,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"\u2014 EnochRoot {ENOCH_B64}\n"

C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
C2SP_COSIGNATURE_B64 = (
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
    "qhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
FORMATS_COSIG_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
FORMATS_COSIG_B64 = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJ"
    "XORmnFBOBA=="
)
GO_TREE_TEXT = "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"


def _blob(b64: str) -> Signature:
    raw = base64.b64decode(b64)
    return Signature("x", int.from_bytes(raw[:4], "big"), raw[4:])


# -- keys ---------------------------------------------------------------------------------


def test_go_verifier_key_parses_and_round_trips() -> None:
    verifier = parse_verifier_key(PETER_VKEY)
    assert (verifier.name, verifier.key_id, verifier.alg) == ("PeterNeumann", 0xC74F20A3, 1)
    assert verifier.vkey == PETER_VKEY


def test_every_mangling_of_a_verifier_key_is_refused() -> None:
    # note_test.go TestNewVerifier: every proper substring and every single-byte increment.
    b = PETER_VKEY.encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(ValueError):
                    parse_verifier_key(b[i:j].decode())
    for i in range(len(b)):
        mangled = bytearray(b)
        mangled[i] += 1
        with pytest.raises(ValueError):
            parse_verifier_key(mangled.decode("latin-1"))
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # length
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm
    ):
        with pytest.raises(ValueError):
            parse_verifier_key(bad)


def test_every_mangling_of_a_signer_key_is_refused() -> None:
    b = PETER_SKEY.encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(ValueError):
                    parse_signer_key(b[i:j].decode())
    for i in range(len(b)):
        mangled = bytearray(b)
        mangled[i] += 1
        with pytest.raises(ValueError):
            parse_signer_key(mangled.decode("latin-1"))


def test_signer_and_verifier_agree_and_catch_corruption() -> None:
    signer = parse_signer_key(PETER_SKEY)
    verifier = signer.verifier()
    assert verifier.vkey == PETER_VKEY
    signature = signer.sign(b"hi")
    assert verifier.verify(b"hi", signature)
    assert not verifier.verify(b"hj", signature)
    assert not verifier.verify(b"hi", bytes([signature[0] ^ 1]) + signature[1:])
    assert not verifier.verify(b"hi", signature[:-1])


def test_cosignature_key_ids_use_type_0x04() -> None:
    verifier = parse_verifier_key(FORMATS_COSIG_VKEY)
    assert verifier.alg == ALG_COSIGNATURE_V1
    assert verifier.key_id == 0xDA77ADE7
    digest = hashlib.sha256(b"remora.n621.de\n\x04" + verifier.public_key).digest()
    assert key_id("remora.n621.de", 4, verifier.public_key) == int.from_bytes(digest[:4], "big")
    # The same key under type 0x01 has another key ID, so the two can never be confused.
    assert key_id("remora.n621.de", 1, verifier.public_key) != verifier.key_id


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\tb", "a\u2003b"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        Signer.generate(name)


# -- signing and opening ------------------------------------------------------------------


def test_sign_matches_go() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG
    # An existing signature by the same key is replaced, not duplicated.
    stale = parse_note(TEXT + "\n" + f"\u2014 PeterNeumann {'x08go/' + 'A' * 85}=\n")
    assert sign_note(stale, [signer]) == TEXT + "\n" + PETER_SIG


def test_sign_refuses_text_without_final_newline() -> None:
    with pytest.raises(NoteError):
        sign_note("abc", [Signer.generate("k")])


def test_c2sp_example_note_verifies() -> None:
    opened = open_note(C2SP_NOTE, [parse_verifier_key(C2SP_VKEY)])
    assert opened.text == "This is an example message.\n"
    assert [s.name for s in opened.verified] == ["example.com/foo"]


def test_open_matches_go() -> None:
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    one = open_note(note, [peter])
    assert one.text == TEXT
    assert [s.line() for s in one.verified] == [PETER_SIG]
    assert [s.line() for s in one.unverified] == [ENOCH_SIG]
    both = open_note(note, [peter, enoch])
    assert [s.line() for s in both.verified] == [PETER_SIG, ENOCH_SIG]
    assert both.unverified == ()
    with pytest.raises(UnverifiedNoteError) as caught:
        open_note(note, [])
    assert [s.line() for s in caught.value.note.signatures] == [PETER_SIG, ENOCH_SIG]
    with pytest.raises(NoteError, match="ambiguous key EnochRoot"):
        open_note(TEXT + "\n" + ENOCH_SIG, [enoch, peter, enoch])
    assert open_note(TEXT + "\n" + PETER_SIG, [enoch, peter, enoch]).verified
    with pytest.raises(NoteError, match="malformed"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [peter])
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann"):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])


def test_repeated_signatures_count_once() -> None:
    peter = parse_verifier_key(PETER_VKEY)
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    opened = open_note(note, [peter])
    assert [s.line() for s in opened.verified] == [PETER_SIG]
    assert [s.line() for s in opened.unverified] == [ENOCH_SIG, enoch_abcd]


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        TEXT + "\n" + f"\u2014 Bad Name {PETER_B64}",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_malformed_notes_are_refused(message: str | bytes) -> None:
    with pytest.raises(NoteError, match="malformed"):
        open_note(message, [parse_verifier_key(PETER_VKEY)])


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=60))
def test_any_text_round_trips_and_any_flip_is_caught(line: str) -> None:
    signer = Signer.generate("log.example/x")
    text = line + "\n"
    note = sign_note(text, [signer])
    assert open_note(note, [signer.verifier()]).text == text
    data = bytearray(note.encode())
    data[0] ^= 0x01
    with pytest.raises(NoteError):
        open_note(bytes(data), [signer.verifier()])


# -- checkpoints and cosignatures ---------------------------------------------------------


def test_go_tree_checkpoint_text() -> None:
    body = CheckpointBody("go.sum database tree", 123456789012, leaf_hash(b"hello world"))
    assert body.text() == GO_TREE_TEXT
    assert parse_checkpoint(GO_TREE_TEXT) == body
    with_extensions = CheckpointBody(body.origin, body.size, body.root, ("timestamp x", "y"))
    assert parse_checkpoint(with_extensions.text()) == with_extensions


@pytest.mark.parametrize(
    "text",
    [
        "not-" + GO_TREE_TEXT.replace("go.sum database tree\n", ""),
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
        "go.sum database tree\n0123\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "go.sum database tree\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n\n",
        "go.sum database tree\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb1=\n",
        "go.sum database tree\n1\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid checkpoint"):
        parse_checkpoint(text)


def test_published_cosignature_timestamps() -> None:
    assert cosignature_timestamp(_blob(C2SP_COSIGNATURE_B64)) == 1679315147
    assert cosignature_timestamp(_blob(FORMATS_COSIG_B64)) == 1727964367
    with pytest.raises(ValueError):
        cosignature_timestamp(_blob(PETER_B64))  # a plain Ed25519 signature


def test_cosignature_signs_the_spec_message_and_covers_extension_lines() -> None:
    clock = iter([1679315147.9])
    witness = Signer("witness.example.com/w1", ALG_COSIGNATURE_V1, Signer.generate("k").private_key)
    witness = Signer(witness.name, witness.alg, witness.private_key, clock=lambda: next(clock))
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    signature = witness.sign(text.encode())
    assert signature[:8] == (1679315147).to_bytes(8, "big")
    message = (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert cosignature_message(text.encode(), 1679315147) == message
    witness.private_key.public_key().verify(signature[8:], message)  # raises if wrong
    verifier = witness.verifier()
    assert verifier.verify(text.encode(), signature)
    assert not verifier.verify((text + "ext\n").encode(), signature)
    # A type-0x01 verifier of the same key must not accept a cosignature, nor the reverse.
    plain = Verifier(witness.name, ALG_ED25519, verifier.public_key)
    assert not plain.verify(text.encode(), signature)
    assert not verifier.verify(text.encode(), witness.private_key.sign(text.encode()))


def test_log_signature_and_cosignature_in_one_note() -> None:
    log = Signer.generate("governance/ledger/abc")
    witness = Signer.generate("witness.example/w1", ALG_COSIGNATURE_V1)
    body = CheckpointBody(log.name, 3, bytes(32), ("timestamp 2026-01-01T00:00:00.000000Z",))
    signed = sign_note(body.text(), [log])
    cosigned = sign_note(parse_note(signed), [witness])
    opened = open_note(cosigned, [log.verifier(), witness.verifier()])
    assert [s.name for s in opened.verified] == [log.name, witness.name]
    # A verifier that trusts only the log ignores the cosignature.
    assert open_note(cosigned, [log.verifier()]).unverified[0].name == witness.name
