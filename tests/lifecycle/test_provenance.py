"""A registered version's provenance for outsiders: W3C PROV that ``prov`` reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
from prov.constants import PROV, PROV_TYPE
from prov.model import ProvActivity, ProvAgent, ProvAssociation, ProvDocument, ProvEntity
from typer.testing import CliRunner

from governance.cli import app
from governance.ledger import Ledger
from governance.lifecycle import promotion
from governance.lifecycle.provenance import read_event_log
from governance.registry import mlflow as registry
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
