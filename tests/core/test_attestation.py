"""Tests for :mod:`governance.core.attestation`: SLSA statements in DSSE envelopes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement, statement_pb2
from model_signing._signing import sign_sigstore_pb

from governance.core import attestation as at

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _lineage() -> dict[str, Any]:
    return {
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


FILES = {"MLmodel": "1" * 64, "artifacts/scorecard.json": "2" * 64}
MATERIALS = {"params.yaml": "3" * 64, "requirements/main.txt": "f" * 64}


def _statement() -> dict[str, Any]:
    return at.provenance_statement(
        subjects=FILES,
        lineage=_lineage(),
        materials=MATERIALS,
        code_url="file:///project",
        started_on="2026-01-01T00:00:00Z",
        finished_on="2026-01-01T00:01:00Z",
    )


def test_pae_known_answer_from_the_dsse_spec() -> None:
    assert (
        at.pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # and model-signing's own implementation agrees on an in-toto payload
    payload = b'{"_type": "x"}'
    assert at.pae(at.PAYLOAD_TYPE, payload) == sign_sigstore_pb.pae(payload)


def test_statement_is_in_toto_v1_with_an_slsa_v1_predicate() -> None:
    doc = _statement()
    pb = json_format.ParseDict(doc, statement_pb2.Statement())
    statement.Statement.copy_from_pb(pb).validate()
    json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())  # no unknown fields
    assert at.statement_subjects(doc) == FILES
    deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps[0] == {
        "uri": f"git+file:///project@{COMMIT}",
        "digest": {"gitCommit": COMMIT},
        "annotations": {"dirty": False},
    }
    assert {"name": "data/split/train.csv", "digest": {"md5": "b" * 32}} in deps
    assert {"name": "requirements/main.txt", "digest": {"sha256": "f" * 64}} in deps


def test_envelope_round_trip_and_refusals() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = at.sign_envelope(_statement(), key)
    assert at.open_envelope(data, key.public_key()) == _statement()
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(at.AttestationError, match="does not verify"):
        at.open_envelope(data, other)
    envelope = json.loads(data)
    forged = json.loads(base64.b64decode(envelope["payload"]))
    forged["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(forged).encode()).decode()
    with pytest.raises(at.AttestationError, match="does not verify"):
        at.open_envelope(json.dumps(envelope).encode(), key.public_key())
    envelope = json.loads(data) | {"payloadType": "text/plain"}
    with pytest.raises(at.AttestationError, match="carries 'text/plain'"):
        at.open_envelope(json.dumps(envelope).encode(), key.public_key())
    with pytest.raises(at.AttestationError, match="malformed"):
        at.open_envelope(b"{not json", key.public_key())


def test_p384_keys_sign_with_sha384() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    assert at.open_envelope(at.sign_envelope(_statement(), key), key.public_key())


def test_check_statement_names_what_disagrees() -> None:
    doc = _statement()
    assert at.check_statement(doc, lineage=_lineage(), files=FILES) == []
    changed = FILES | {"artifacts/scorecard.json": "9" * 64}
    (problem,) = at.check_statement(doc, lineage=_lineage(), files=changed)
    assert problem.startswith("artifacts/scorecard.json: sha256 999")
    extra = FILES | {"artifacts/extra.bin": "8" * 64}
    assert at.check_statement(doc, lineage=_lineage(), files=extra) == [
        "artifacts/extra.bin: present but not in the provenance statement"
    ]
    assert at.check_statement(doc, lineage=None, files=extra) == [
        "artifacts/extra.bin: present but not in the provenance statement"
    ]
    lineage = _lineage()
    lineage["datasets"][1]["md5"] = "c" * 32
    lineage["git_commit"] = "f" * 40
    lineage["params_hash"] = "0" * 64
    lineage["environment"]["lock_sha256"] = "1" * 64
    problems = at.check_statement(doc, lineage=lineage)
    assert [p.split(":")[0] for p in problems] == [
        "data data/split/train.csv",
        "code",
        "params.yaml",
        "requirements/main.txt",
    ]
    assert at.check_statement(doc, lineage=None) == []  # materials not compared
