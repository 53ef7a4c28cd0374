"""Tests for :mod:`governance.core.signing`: OpenSSF model signing with a local key."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
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
    with pytest.raises(
        signing.SignatureError, match=r"files differ from its signature: artifacts/model\.joblib$"
    ) as err:
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


def test_bad_key_files_are_one_line_errors(
    tmp_path: Path, model: Path, keys: signing.KeyPair
) -> None:
    with pytest.raises(signing.SignatureError, match="no model-signing key at"):
        signing.sign_directory(model, tmp_path / "missing.pem")
    signing.sign_directory(model, keys.private)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(signing.SignatureError, match="is not an ECDSA"):
        signing.verify_directory(model, bad)


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _lineage(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "mortgage-denial",
        "dataset": "hmda",
        "datasets": [
            {"name": "raw", "path": "data/raw/applications.csv", "md5": "a" * 32},
            {"name": "train", "path": "data/split/train.csv", "md5": "b" * 32},
        ],
        "git_commit": COMMIT,
        "git_dirty": False,
        "params": {"train": {"C": 1.0}},
        "params_hash": "e" * 64,
        "environment": {"lock_file": "requirements/main.txt", "lock_sha256": "f" * 64},
        "mlflow_run_id": "run123",
        "run": {"source": "dvc", "stage": "register"},
        "package_version": "0.1.0",
    }
    return base | changes


def _sign(model: Path, keys: signing.KeyPair) -> signing.SignedModel:
    return signing.sign_model(
        model,
        keys.private,
        lineage=_lineage(),
        materials={"params.yaml": "3" * 64, "requirements/main.txt": "f" * 64},
        code_url="file:///project",
    )


def test_signed_model_verifies_with_its_lineage(keys: signing.KeyPair, model: Path) -> None:
    signed = _sign(model, keys)
    assert set(signed.files) == {"MLmodel", "artifacts/scorecard.json", "artifacts/model.joblib"}
    found = signing.verify_model(model, keys.public, lineage=_lineage())
    assert found.digests() == signed.digests()
    assert (
        signed.signature_sha256
        == hashlib.sha256((model / signing.SIGNATURE_FILE).read_bytes()).hexdigest()
    )
    # the OpenSSF signature covers the statement too
    assert signing.PROVENANCE_FILE in signing.signed_digests(
        (model / signing.SIGNATURE_FILE).read_bytes()
    )


def test_a_lineage_that_disagrees_with_the_statement_is_named(
    keys: signing.KeyPair, model: Path
) -> None:
    _sign(model, keys)
    other = _lineage(git_commit="f" * 40, params_hash="d" * 64)
    with pytest.raises(signing.SignatureError, match="the provenance does not match") as err:
        signing.verify_model(model, keys.public, lineage=other, what="v3")
    assert f"code: commit {'f' * 40} in the lineage" in str(err.value)
    assert "params.yaml: hash" in str(err.value)


def test_an_edited_statement_is_caught_by_the_signature(keys: signing.KeyPair, model: Path) -> None:
    _sign(model, keys)
    path = model / signing.PROVENANCE_FILE
    envelope = json.loads(path.read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))
    with pytest.raises(signing.SignatureError) as err:
        signing.verify_model(model, keys.public)
    assert err.value.files == (signing.PROVENANCE_FILE,)


def test_a_forger_with_another_key_is_refused(
    keys: signing.KeyPair, model: Path, tmp_path: Path
) -> None:
    """A new model file, a statement and a signature that agree, all made with the forger's key."""
    _sign(model, keys)
    (model / "artifacts" / "model.joblib").write_bytes(b"backdoored")
    forger = signing.ensure_keypair(tmp_path / "f.pem", tmp_path / "f.pub")
    _sign(model, forger)
    signing.verify_model(model, forger.public)  # consistent under the forger's own key
    with pytest.raises(signing.SignatureError, match="does not verify with the trusted key"):
        signing.verify_model(model, keys.public)


def test_a_swapped_signature_or_statement_is_refused(
    keys: signing.KeyPair, model: Path, tmp_path: Path
) -> None:
    """Both files of another model signed by the same key do not fit this one's files."""
    other = tmp_path / "other"
    shutil.copytree(model, other)
    (other / "artifacts" / "scorecard.json").write_text('{"intercept": 9}\n')
    _sign(model, keys)
    _sign(other, keys)
    for name, differ in (
        (signing.SIGNATURE_FILE, ("artifacts/scorecard.json", signing.PROVENANCE_FILE)),
        (signing.PROVENANCE_FILE, (signing.PROVENANCE_FILE,)),
    ):
        mine = model / name
        saved = mine.read_bytes()
        shutil.copyfile(other / name, mine)
        with pytest.raises(signing.SignatureError, match="files differ from its signature") as err:
            signing.verify_model(model, keys.public)
        assert err.value.files == differ
        mine.write_bytes(saved)
    signing.verify_model(model, keys.public)


def test_a_model_without_a_statement_is_refused(keys: signing.KeyPair, model: Path) -> None:
    signing.sign_directory(model, keys.private)  # signed, but no provenance
    with pytest.raises(signing.SignatureError, match=r"v1 has no provenance statement"):
        signing.verify_model(model, keys.public, what="v1")
