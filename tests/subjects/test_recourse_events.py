"""Every adverse decision is recorded with its exact recourse, linked and hashed in the ledger."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from governance.cli import app
from governance.core import dataset as ds
from governance.core.contract import derive_contract
from governance.core.recourse import RecoursePolicy, build_policy
from governance.core.validation import load_suite
from governance.decisions.service import DecisionService
from governance.settings import Settings
from governance.subjects.recourse import recourse_of

MODEL = "mortgage-denial"
ENV: dict[str, str | None] = dict.fromkeys(
    ("GOVERNANCE_HOME", "GOVERNANCE_MLFLOW_URI", "GOVERNANCE_LEDGER_URL", "GOVERNANCE_PROJECT")
)


@pytest.fixture(scope="module")
def service(trained: tuple[Path, Settings]) -> Any:
    svc = DecisionService.open(trained[1])
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def batch(trained: tuple[Path, Settings], service: DecisionService) -> list[str]:
    test = pd.read_csv(trained[0] / "data/split/test.csv")
    ids: list[str] = []
    for _, receipts, _, _ in service.score_frame(
        MODEL, test, subject_column="application_id", alias="candidate", purpose="recourse"
    ):
        ids += [r.id for r in receipts]
    return ids


def test_the_version_carries_the_policy_the_spec_and_contract_give(
    trained: tuple[Path, Settings], service: DecisionService
) -> None:
    root, _ = trained
    loaded, _ = service.model(MODEL, alias="candidate")
    assert isinstance(loaded.recourse_policy, RecoursePolicy)
    spec = ds.load_spec("hmda")
    train = ds.read_csv(root / "data/split/train.csv")
    contract = derive_contract(spec, load_suite(root / spec.suite), train)
    # the same policy tests/core/test_recourse.py checks against exhaustive search
    expected = build_policy(spec, loaded.scorecard, contract)
    assert loaded.recourse_policy.sha256() == expected.sha256()


def test_every_adverse_batch_decision_has_one_linked_recourse_that_flips(
    service: DecisionService, batch: list[str]
) -> None:
    loaded, _ = service.model(MODEL, alias="candidate")
    policy = loaded.recourse_policy
    assert policy is not None
    immutable = {a.feature for a in policy.actions if not a.actionable}
    denials = feasible = 0
    for decision_id in batch:
        record = service.ledger.get(decision_id)
        events = [e for e in service.ledger.events_for(decision_id) if e.type == "recourse"]
        if record.body["outcome"] != "deny":
            assert events == []
            continue
        denials += 1
        assert len(events) == 1
        event = events[0]
        assert event.body["decision_id"] == decision_id
        assert event.body["subject_key"] == record.body["subject_key"]
        assert event.body["policy_sha256"] == policy.sha256()
        rc = event.body["recourse"]
        assert rc["score"] == record.body["score"]
        if not rc["feasible"]:
            assert rc["combined"] is None and "No change" in rc["summary"][0]
            continue
        feasible += 1
        for cf in [rc["combined"], *rc["singles"]]:
            again = loaded.scorecard.score(cf["inputs"])  # the scorer that decided
            assert not again.adverse and again.outcome == "approve"
            assert again.score == cf["score"]
            changed = {k for k, v in cf["inputs"].items() if v != record.body["inputs"][k]}
            assert changed == {c["feature"] for c in cf["changes"]}
            assert not changed & immutable
        cheapest_single = min((s["cost"] for s in rc["singles"]), default=math.inf)
        assert rc["combined"]["cost"] <= cheapest_single + 1e-9
    assert denials > 20 and feasible > 0


def test_a_single_denial_and_its_recourse_are_one_transaction(
    service: DecisionService, trained: tuple[Path, Settings]
) -> None:
    test = pd.read_csv(trained[0] / "data/split/test.csv")
    loaded, _ = service.model(MODEL, alias="candidate")
    scores, _ = loaded.scorecard.score_frame(test[list(loaded.scorecard.order)])
    row = test[scores >= loaded.scorecard.threshold].iloc[0]
    features = {k: row[k] for k in loaded.scorecard.order}
    before = service.ledger.size()
    decision = service.decide(MODEL, features, subject_id="S-single", alias="candidate")
    assert decision.outcome == "deny"
    assert service.ledger.size() == before + 2
    recourse = service.ledger.find(ref=decision.decision_id, type="recourse")
    assert [r.seq for r in recourse] == [decision.ledger["seq"] + 1]
    approval = test[scores < loaded.scorecard.threshold].iloc[0]
    size = service.ledger.size()
    service.decide(MODEL, {k: approval[k] for k in loaded.scorecard.order}, alias="candidate")
    assert service.ledger.size() == size + 1
    assert service.ledger.verify().ok


def test_audit_recourse_cli(
    trained: tuple[Path, Settings], service: DecisionService, batch: list[str]
) -> None:
    root = trained[0]
    denial = next(i for i in batch if service.ledger.get(i).body["outcome"] == "deny")
    approval = next(i for i in batch if service.ledger.get(i).body["outcome"] == "approve")
    runner = CliRunner()
    args = ["audit", "recourse", denial, "--project", str(root)]
    result = runner.invoke(app, [*args, "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == json.loads(json.dumps(recourse_of(service.ledger, denial)))
    assert doc["adverse"] and doc["recourse"]["format"] == "governance.recourse/1"
    text = runner.invoke(app, args, env=ENV)
    assert text.exit_code == 0 and doc["recourse"]["summary"][0] in text.stdout
    ok = runner.invoke(app, ["audit", "recourse", approval, "--project", str(root)], env=ENV)
    assert ok.exit_code == 0 and "not adverse" in ok.stdout
    bad = runner.invoke(
        app,
        ["audit", "recourse", "00000000-0000-7000-8000-000000000000", "--project", str(root)],
        env=ENV,
    )
    assert bad.exit_code == 1 and bad.stderr.startswith("error: no decision with id")
