"""Tests for :mod:`governance.core.provenance`: PROV documents that ``prov`` reads back."""

from __future__ import annotations

from typing import Any

import pytest
from prov.constants import PROV, PROV_TYPE
from prov.model import ProvActivity, ProvAgent, ProvAssociation, ProvDocument, ProvEntity

from governance.core.provenance import serialize, version_provenance

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MD5 = {"raw": "a" * 32, "train": "b" * 32, "test": "c" * 32}


def _lineage() -> dict[str, Any]:
    return {
        "model": "mortgage-denial",
        "version": "3",
        "dataset": "hmda",
        "datasets": [
            {"name": n, "path": f"data/{n}.csv", "md5": m, "rows": 10, "size": 100}
            for n, m in MD5.items()
        ],
        "git_commit": COMMIT,
        "git_dirty": False,
        "params": {"train": {"C": 1.0}},
        "params_hash": "e" * 64,
        "environment": {"lock_file": "requirements/main.txt", "lock_sha256": "f" * 64},
        "model_card": "reports/model_card.md",
        "mlflow_run_id": "run123",
        "model_uri": "models:/mortgage-denial/3",
        "run": {"source": "dvc", "stage": "register"},
        "package_version": "0.1.0",
    }


STAGES = [
    {
        "stage": "ingest",
        "run_id": "11111111-1111-1111-1111-111111111111",
        "via": "dvc",
        "started": "2026-01-01T00:00:00+00:00",
        "ended": "2026-01-01T00:00:01+00:00",
        "inputs": [],
        "outputs": [{"path": "data/raw.csv", "md5": MD5["raw"]}],
    },
    {
        "stage": "split",
        "run_id": "22222222-2222-2222-2222-222222222222",
        "via": "dvc",
        "inputs": [{"path": "data/raw.csv", "md5": MD5["raw"]}],
        "outputs": [
            {"path": "data/train.csv", "md5": MD5["train"]},
            {"path": "data/test.csv", "md5": MD5["test"]},
        ],
    },
    {
        "stage": "register",
        "run_id": "33333333-3333-3333-3333-333333333333",
        "via": "dvc",
        "inputs": [{"path": "data/train.csv", "md5": MD5["train"]}],
        "outputs": [],
    },
]
APPROVAL = {
    "event_id": "01JAPPROVAL",
    "action": "promote",
    "alias": "champion",
    "approver": "Jane Doe <jane@bank.example>",
    "reason": "gates pass",
    "timestamp": "2026-01-02T00:00:00+00:00",
}


def _ids(doc: ProvDocument, kind: type) -> set[str]:
    return {str(r.identifier) for r in doc.get_records(kind)}


def test_prov_json_loads_with_prov_and_holds_the_version() -> None:
    doc = version_provenance(_lineage(), stages=STAGES, approvals=[APPROVAL])
    loaded = ProvDocument.deserialize(content=serialize(doc, "prov-json"), format="json")
    assert loaded == doc
    entities = _ids(loaded, ProvEntity)
    assert {f"data:{m}" for m in MD5.values()} <= entities
    assert f"git:{COMMIT}" in entities
    assert {"model:mortgage-denial.3", "card:mortgage-denial.3", "params:" + "e" * 64} <= entities
    assert "env:" + "f" * 64 in entities
    activities = _ids(loaded, ProvActivity)
    assert {f"run:{s['run_id']}" for s in STAGES} <= activities
    agents = {str(a.identifier): a for a in loaded.get_records(ProvAgent)}
    person = agents["person:Jane%20Doe%20%3Cjane%40bank.example%3E"]
    assert PROV["Person"] in person.get_attribute(PROV_TYPE)
    assert PROV["SoftwareAgent"] in agents["agent:governance-pipeline"].get_attribute(PROV_TYPE)
    associations = {
        (str(r.get_attribute("prov:activity").pop()), str(r.get_attribute("prov:agent").pop()))
        for r in loaded.get_records(ProvAssociation)
    }
    assert ("approval:01JAPPROVAL", str(person.identifier)) in associations
    assert ("run:33333333-3333-3333-3333-333333333333", "agent:dvc") in associations


def test_prov_n_parses_back_to_the_same_document() -> None:
    doc = version_provenance(_lineage(), stages=STAGES, approvals=[APPROVAL])
    text = serialize(doc, "prov-n")
    assert text.startswith("document") and f"git:{COMMIT}" in text
    assert ProvDocument.deserialize(content=text, format="provn") == doc


def test_generation_and_use_follow_the_stages() -> None:
    provn = serialize(version_provenance(_lineage(), stages=STAGES), "prov-n")
    assert f"wasGeneratedBy(data:{MD5['train']}, run:{STAGES[1]['run_id']}, -)" in provn
    assert f"used(run:{STAGES[1]['run_id']}, data:{MD5['raw']}, -)" in provn
    assert f"wasGeneratedBy(model:mortgage-denial.3, run:{STAGES[2]['run_id']}, -)" in provn
    assert f"wasDerivedFrom(model:mortgage-denial.3, data:{MD5['train']}, -, -, -)" in provn


def test_each_run_used_its_own_commit_and_parameters() -> None:
    """Data ingested at an older commit with other parameters, then the version trained and
    registered at its own: each activity uses what it ran with (the events say), not the
    version's commit for all."""
    old, old_params = "9" * 40, "d" * 64
    stages = [
        {**STAGES[0], "commit": old, "dirty": True, "params_hash": old_params},
        {**STAGES[1], "commit": COMMIT, "dirty": False, "params_hash": "e" * 64},
        STAGES[2],  # a run whose events say nothing: the version's
    ]
    doc = version_provenance(_lineage(), stages=stages)
    provn = serialize(doc, "prov-n")
    ingest, split, register = (f"run:{s['run_id']}" for s in STAGES)
    assert f"used({ingest}, git:{old}, -)" in provn
    assert f"used({ingest}, params:{old_params}, -)" in provn
    assert f"used({ingest}, git:{COMMIT}, -)" not in provn
    for run in (split, register):
        assert f"used({run}, git:{COMMIT}, -)" in provn and f"used({run}, git:{old}" not in provn
        assert f"used({run}, params:{'e' * 64}, -)" in provn
    assert f'gov:commit="{old}", gov:dirty="true" %% xsd:boolean' in provn
    # the model still derives from the version's own code and parameters
    assert f"wasDerivedFrom(model:mortgage-denial.3, git:{COMMIT}, -, -, -)" in provn
    assert ProvDocument.deserialize(content=provn, format="provn") == doc


def test_without_recorded_stages_the_default_graph_is_used() -> None:
    doc = version_provenance(_lineage())
    activities = _ids(doc, ProvActivity)
    assert {f"run:run123.{s}" for s in ("ingest", "validate", "split", "train", "register")} <= (
        activities
    )
    assert not any(a.startswith("approval:") for a in activities)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format must be one of"):
        serialize(version_provenance(_lineage()), "prov-xml")
