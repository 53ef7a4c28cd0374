"""Tests for :mod:`governance.core.signing`: OpenSSF model signing with a local key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import model_signing
import pytest

from governance.core import signing


@pytest.fixture
def keys(tmp_path: Path) -> signing.KeyPair:
    return signing.ensure_keypair(tmp_path / "keys" / "sign.pem", tmp_path / "keys" / "sign.pub")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "artifacts").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "artifacts" / "scorecard.json").write_text('{"intercept": 0.25}\n')
    (root / "artifacts" / "model.joblib").write_bytes(bytes(range(256)))
    return root


def test_keypair_is_private_and_made_once(keys: signing.KeyPair) -> None:
    assert stat.S_IMODE(os.stat(keys.private).st_mode) == 0o600
    before = keys.private.read_bytes()
    again = signing.ensure_keypair(keys.private, keys.public)
    assert again.private.read_bytes() == before
    keys.public.unlink()
    signing.ensure_keypair(keys.private, keys.public)  # public key rewritten from the private
    assert signing.load_public_key(keys.public).public_numbers() == (
        signing.load_private_key(keys.private).public_key().public_numbers()
    )


def test_signature_verifies_with_the_library_itself(keys: signing.KeyPair, model: Path) -> None:
    signing.sign_directory(model, keys.private)
    signing.verify_directory(model, keys.public)
    # independent of our wrapper: the library's own verifier, hashing config guessed
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys.public).verify(
        model, model / signing.SIGNATURE_FILE
    )
    assert signing.signed_digests((model / signing.SIGNATURE_FILE).read_bytes()) == (
        signing.file_digests(model)
    )


def test_one_changed_byte_is_named(keys: signing.KeyPair, model: Path) -> None:
    signing.sign_directory(model, keys.private)
    target = model / "artifacts" / "model.joblib"
    data = bytearray(target.read_bytes())
    data[100] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(signing.SignatureError, match=r"artifacts/model\.joblib differ") as err:
        signing.verify_directory(model, keys.public, what="mortgage-denial version 3")
    assert err.value.files == ("artifacts/model.joblib",)
    assert str(err.value).startswith("mortgage-denial version 3:")


def test_added_and_removed_files_are_named(keys: signing.KeyPair, model: Path) -> None:
    signing.sign_directory(model, keys.private)
    (model / "artifacts" / "scorecard.json").unlink()
    (model / "artifacts" / "backdoor.py").write_text("print('hi')\n")
    with pytest.raises(signing.SignatureError) as err:
        signing.verify_directory(model, keys.public)
    assert err.value.files == ("artifacts/backdoor.py", "artifacts/scorecard.json")


def test_another_key_or_no_signature_is_refused(
    keys: signing.KeyPair, model: Path, tmp_path: Path
) -> None:
    with pytest.raises(signing.SignatureError, match="is not signed"):
        signing.verify_directory(model, keys.public)
    other = signing.ensure_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    signing.sign_directory(model, other.private)  # an attacker's own key
    with pytest.raises(signing.SignatureError, match="does not verify with the trusted key") as e:
        signing.verify_directory(model, keys.public)
    assert e.value.files == ()
    (model / signing.SIGNATURE_FILE).write_text("{garbage")
    with pytest.raises(signing.SignatureError, match="does not verify"):
        signing.verify_directory(model, keys.public)


def test_bad_key_files_are_one_line_errors(tmp_path: Path, model: Path) -> None:
    with pytest.raises(signing.SignatureError, match="no model-signing key at"):
        signing.sign_directory(model, tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(signing.SignatureError, match="is not an ECDSA"):
        signing.verify_directory(model, bad)
