"""A registered version's provenance for outsiders: W3C PROV that ``prov`` reads back, the
OpenLineage event log of the run that made it, and a signature that every loader checks.

The adversarial tests change the registered model in the MLflow artifact store itself (one
byte of a file, the signature, the lineage) and expect the CLI, the decision service (HTTP 409)
and the pyfunc to refuse; each restores what it changed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow.pyfunc
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prov.constants import PROV, PROV_TYPE
from prov.model import ProvActivity, ProvAgent, ProvAssociation, ProvDocument, ProvEntity
from typer.testing import CliRunner

from governance.cli import app
from governance.core import openlineage as ol
from governance.core import signing
from governance.core.provenance import stage_records
from governance.decisions.service import DecisionService, UntrustedModel
from governance.ledger import Ledger
from governance.lifecycle import promotion
from governance.lifecycle.provenance import read_event_log
from governance.pipeline.stages import STAGES
from governance.registry import mlflow as registry
from governance.registry import signing as registry_signing
from governance.service import KeyStore, create_app
from governance.settings import Settings

MODEL = "mortgage-denial"
APPROVER = "Jane Doe <jane@bank.example>"
ENV: dict[str, str | None] = dict.fromkeys(
    ("GOVERNANCE_HOME", "GOVERNANCE_MLFLOW_URI", "GOVERNANCE_LEDGER_URL", "GOVERNANCE_PROJECT")
)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """A trained project whose version 1 a named person promoted to champion."""
    from support import build_trained_project

    root, settings = build_trained_project(tmp_path_factory.mktemp("provenance"))
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        promotion.promote(settings, ledger, MODEL, "1", approver=APPROVER, reason="all gates pass")
    return root, settings


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*args, "--project", str(root)], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def ids(doc: ProvDocument, kind: type) -> set[str]:
    return {str(r.identifier) for r in doc.get_records(kind)}


def test_prov_json_holds_datasets_commit_activities_and_approver(
    promoted: tuple[Path, Settings],
) -> None:
    root, settings = promoted
    code, out, err = cli(root, "lineage", MODEL, "1", "--format", "prov-json")
    assert code == 0, err
    doc = ProvDocument.deserialize(content=out, format="json")
    lineage = registry.resolve(settings, MODEL, "1")
    entities = ids(doc, ProvEntity)
    assert {f"data:{d['md5']}" for d in lineage["datasets"]} <= entities
    assert len(lineage["datasets"]) == 3
    assert f"git:{lineage['git_commit']}" in entities
    assert {f"model:{MODEL}.1", f"card:{MODEL}.1", f"params:{lineage['params_hash']}"} <= entities
    stages = {
        a.get_attribute("gov:stage").pop()
        for a in doc.get_records(ProvActivity)
        if a.get_attribute("gov:stage")
    }
    assert {"ingest", "validate", "split", "train", "register"} <= stages
    agents = {str(a.identifier): a for a in doc.get_records(ProvAgent)}
    person = agents["person:Jane%20Doe%20%3Cjane%40bank.example%3E"]
    assert PROV["Person"] in person.get_attribute(PROV_TYPE)
    approved = {
        str(r.get_attribute("prov:activity").pop())
        for r in doc.get_records(ProvAssociation)
        if str(r.get_attribute("prov:agent").pop()) == str(person.identifier)
    }
    (activity,) = approved
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        moves = [e for e in promotion.events(ledger, MODEL) if e["action"] == "promote"]
    assert activity == f"approval:{moves[-1]['event_id']}"


def test_prov_n_parses_back_and_newest_is_the_default(promoted: tuple[Path, Settings]) -> None:
    root, _ = promoted
    code, out, err = cli(root, "lineage", MODEL, "--format", "prov-n")
    assert code == 0, err
    assert out.startswith("document")
    doc = ProvDocument.deserialize(content=out, format="provn")
    assert f"model:{MODEL}.1" in ids(doc, ProvEntity)


def test_bad_format_and_unknown_version_are_one_line_errors(
    promoted: tuple[Path, Settings],
) -> None:
    root, _ = promoted
    code, out, err = cli(root, "lineage", MODEL, "1", "--format", "prov-xml")
    assert (code, out) == (1, "")
    assert err == "error: --format must be one of prov-json, prov-n, got 'prov-xml'\n"
    code, out, err = cli(root, "lineage", MODEL, "9", "--format", "prov-json")
    assert (code, out) == (1, "")
    assert (
        err.startswith("error: model 'mortgage-denial' has no version '9'") and err.count("\n") == 1
    )


def test_event_log_reader_keeps_whole_lines_and_names_a_bad_one(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    assert read_event_log(log) == []
    log.write_text('{"a": 1}\n\n{"b": 2}\n{"c": ')  # a writer killed mid-line
    assert read_event_log(log) == [{"a": 1}, {"b": 2}]
    log.write_text('{"a": 1}\n[1]\n')
    with pytest.raises(ValueError, match=r"events.jsonl line 2 is not a JSON object"):
        read_event_log(log)
    log.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="line 2 is not a JSON object"):
        read_event_log(log)


# -- the OpenLineage event log of the in-process run ------------------------------------------


def test_event_log_alone_rebuilds_data_to_stage_to_model_version(
    promoted: tuple[Path, Settings],
) -> None:
    root, settings = promoted
    events = read_event_log(settings.openlineage_log)
    for e in events:
        ol.parse_event(e)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * len(STAGES)
    chain = stage_records(
        events, namespace=settings.mlflow_uri, model=MODEL, version="1", root=str(root)
    )
    assert {c["stage"] for c in chain} == set(STAGES)
    register = next(c for c in chain if c["stage"] == "register")
    assert register["writes"] == ["model"]
    lineage = registry.resolve(settings, MODEL, "1")
    md5 = {d["path"]: d["md5"] for d in lineage["datasets"]}
    ingest = next(c for c in chain if c["stage"] == "ingest")
    split = next(c for c in chain if c["stage"] == "split")
    assert ingest["outputs"] == [
        {"path": "data/raw/applications.csv", "md5": md5["data/raw/applications.csv"]}
    ]
    assert {o["path"]: o["md5"] for o in split["outputs"]} == {
        p: m for p, m in md5.items() if p.startswith("data/split/")
    }
    assert {"path": "data/raw/applications.csv", "md5": md5["data/raw/applications.csv"]} in (
        register["inputs"]
    )
    validate = next(
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == "validate"
    )
    assertions = validate["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert assertions and all(a["success"] for a in assertions)
    complete = next(
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == "register"
    )
    assert complete["run"]["facets"]["governance"]["mlflowRunId"] == lineage["mlflow_run_id"]
    # PROV names the same runs
    code, out, err = cli(root, "lineage", MODEL, "1", "--format", "prov-json")
    assert code == 0, err
    doc = ProvDocument.deserialize(content=out, format="json")
    assert {f"run:{c['run_id']}" for c in chain} <= ids(doc, ProvActivity)


# -- signatures ----------------------------------------------------------------------------


def model_dir(settings: Settings, version: str = "1") -> Path:
    """The registered model's directory in the MLflow artifact store (on this disk)."""
    with registry.tracking(settings) as client:
        source = client.get_model_version(MODEL, version).source  # models:/<logged model id>
        location = client.get_logged_model(source.rsplit("/", 1)[1]).artifact_location
    return Path(unquote(urlparse(location).path))


def run_artifact(settings: Settings, path: str, version: str = "1") -> Path:
    with registry.tracking(settings) as client:
        run_id = client.get_model_version(MODEL, version).run_id
        uri = client.get_run(run_id).info.artifact_uri
    return Path(unquote(urlparse(uri).path)) / path


@contextmanager
def altered(path: Path, data: bytes) -> Iterator[None]:
    saved = path.read_bytes()
    path.write_bytes(data)
    try:
        yield
    finally:
        path.write_bytes(saved)


def flip(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def refusals(root: Path, settings: Settings) -> tuple[str, str, int, str]:
    """What the CLI, a fresh decision service, HTTP and the pyfunc say about version 1."""
    code, out, err = cli(root, "lineage", MODEL, "1", "--verify-signature")
    assert (code, out) == (1, ""), out
    row = pd.read_csv(root / "data" / "split" / "test.csv").head(1)
    with DecisionService.open(settings) as svc:
        with pytest.raises(UntrustedModel) as refused:
            svc.decide(MODEL, row.iloc[0].to_dict(), version="1")
        keys = KeyStore.for_home(settings.home)
        token = keys.create(f"scorer-{uuid.uuid4().hex[:8]}", "scorer")
        with TestClient(create_app(svc, keys)) as http:
            features = {k: v for k, v in row.iloc[0].to_dict().items() if k not in ("deny",)}
            r = http.post(
                "/v1/decisions",
                json={"model": MODEL, "version": "1", "features": features, "subject_id": "s"},
                headers={"Authorization": f"Bearer {token}"},
            )
    with registry.tracking(settings), pytest.raises(Exception) as pyfunc_error:
        mlflow.pyfunc.load_model(
            f"models:/{MODEL}/1",
            model_config={"signing_public_key": str(settings.signing_public_key)},
        )
    assert str(refused.value).startswith("refusing to serve: ")
    return err, r.json()["error"], r.status_code, str(pyfunc_error.value)


def test_verify_signature_of_an_untouched_version(promoted: tuple[Path, Settings]) -> None:
    root, settings = promoted
    code, out, err = cli(root, "lineage", MODEL, "1", "--verify-signature")
    assert code == 0, err
    assert out.startswith(f"{MODEL} version 1: signature and provenance verified")
    code, out, err = cli(root, "lineage", MODEL, "1", "--verify-signature", "--json")
    doc = json.loads(out)
    lineage = registry.resolve(settings, MODEL, "1")
    assert doc["signature_sha256"] == lineage["tags"]["signing.signature_sha256"]
    assert doc["provenance_sha256"] == lineage["tags"]["signing.provenance_sha256"]
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        (registration,) = ledger.find(model=MODEL, version="1", type="registration")
    assert registration.id == doc["registration_event"]
    assert registration.body["signing"]["signature_sha256"] == doc["signature_sha256"]
    assert registration.body["signing"]["provenance_sha256"] == doc["provenance_sha256"]
    assert (model_dir(settings) / signing.SIGNATURE_FILE).is_file()
    assert (model_dir(settings) / signing.PROVENANCE_FILE).is_file()


def test_one_changed_byte_in_the_artifact_store_is_refused_everywhere(
    promoted: tuple[Path, Settings],
) -> None:
    root, settings = promoted
    target = model_dir(settings) / "artifacts" / "scorecard.json"
    with altered(target, flip(target.read_bytes())):
        cli_error, http_error, status, pyfunc_error = refusals(root, settings)
    expected = "files differ from its signature: artifacts/scorecard.json"
    assert cli_error == f"error: {MODEL} version 1: {expected}\n"
    assert status == 409
    assert http_error == f"refusing to serve: {MODEL} version 1: {expected}"
    assert expected in pyfunc_error
    code, _, err = cli(root, "lineage", MODEL, "1", "--verify-signature")
    assert code == 0, err  # restored: verifies again


def test_a_signature_by_another_key_is_refused(
    promoted: tuple[Path, Settings], tmp_path: Path
) -> None:
    root, settings = promoted
    forger = signing.ensure_keypair(tmp_path / "forger.pem", tmp_path / "forger.pub")
    copy = tmp_path / "model"
    shutil.copytree(model_dir(settings), copy)
    signing.sign_directory(copy, forger.private)
    sig = model_dir(settings) / signing.SIGNATURE_FILE
    with altered(sig, (copy / signing.SIGNATURE_FILE).read_bytes()):
        cli_error, http_error, status, pyfunc_error = refusals(root, settings)
    assert "the signature does not verify with the trusted key" in cli_error
    assert status == 409 and "does not verify with the trusted key" in http_error
    assert "does not verify with the trusted key" in pyfunc_error


def test_a_lineage_that_contradicts_the_statement_is_refused(
    promoted: tuple[Path, Settings],
) -> None:
    """The lineage in the run's artifacts claims other training data than the model was signed
    with: the signed statement disagrees, so the version is not served."""
    root, settings = promoted
    path = run_artifact(settings, "lineage.json")
    lineage = json.loads(path.read_text())
    train = next(d for d in lineage["datasets"] if d["name"] == "train")
    train["md5"] = "0" * 32
    with altered(path, json.dumps(lineage).encode()):
        code, _, err = cli(root, "lineage", MODEL, "1", "--verify-signature")
        with DecisionService.open(settings) as svc, pytest.raises(UntrustedModel) as refused:
            row = pd.read_csv(root / "data" / "split" / "test.csv").head(1)
            svc.decide(MODEL, row.iloc[0].to_dict(), version="1")
    assert code == 1
    assert f"data data/split/train.csv: md5 {'0' * 32} in the lineage" in err
    assert "the provenance does not match" in str(refused.value)


def test_an_insider_who_resigns_a_changed_model_is_caught_by_the_ledger(
    promoted: tuple[Path, Settings],
) -> None:
    """Holding the signing key is not enough: the registration ledger event recorded the
    digests of the signature and statement that were registered."""
    root, settings = promoted
    directory = model_dir(settings)
    saved = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    target = directory / "artifacts" / "scorecard.json"
    try:
        target.write_bytes(flip(target.read_bytes()))
        lineage = registry.resolve(settings, MODEL, "1")
        signing.sign_model(
            directory,
            settings.signing_key,
            lineage=lineage,
            materials=registry_signing.materials(root, lineage),
            code_url="file:///elsewhere",
        )
        code, _, err = cli(root, "lineage", MODEL, "1", "--verify-signature")
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
    assert code == 1
    assert "is not the" in err and "that registration ledger event" in err
