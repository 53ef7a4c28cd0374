"""Production monitoring in Dagster, from the ledger of a trained project (issue 4, acceptance 4).

Decisions are scored through the decision service into the session project's ledger, each batch
under its own purpose so that other tests' decisions do not mix in; the asset is materialized
with that purpose. Expected numbers are computed here directly from the rows (scikit-learn,
fairlearn, numpy), never through the monitoring module.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import brier_score_loss, roc_auc_score

from governance.core.dataset import file_md5, load_spec, read_csv
from governance.core.scorecard import Scorecard
from governance.core.training import model_inputs
from governance.decisions.service import Decision, DecisionService
from governance.definitions import defs as load_defs
from governance.defs.monitoring.assets import production_monitoring
from governance.defs.resources import GovernanceProject
from governance.ledger import Ledger
from governance.lifecycle import monitoring
from governance.pipeline.stages import Workspace
from governance.settings import Settings

MODEL = "mortgage-denial"
DECILES = np.arange(1, 10) / 10


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "GOVERNANCE_HOME",
        "GOVERNANCE_MLFLOW_URI",
        "GOVERNANCE_DVC_REMOTE",
        "GOVERNANCE_LEDGER_URL",
        "GOVERNANCE_ARTIFACTS",
    ):
        monkeypatch.delenv(var, raising=False)


def _test_split(root: Path) -> pd.DataFrame:
    return read_csv(root / "data" / "split" / "test.csv")


def _score_batch(settings: Settings, frame: pd.DataFrame, purpose: str) -> None:
    with DecisionService.open(settings) as service:
        for _ in service.score_frame(
            MODEL, frame, subject_column="application_id", alias="candidate", purpose=purpose
        ):
            pass


def _materialize(root: Path, settings: Settings, **config: str) -> dict[str, Any]:
    resource = GovernanceProject(project_dir=str(root), home=str(settings.home))
    result = dg.materialize(
        [production_monitoring],
        resources={"project": resource},
        run_config={"ops": {"production_monitoring": {"config": config}}},
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    doc = json.loads(Path(str(metadata["report_json"].value)).read_text())
    return {"checks": checks, "metadata": metadata, "doc": doc}


def _psi_by_feature(run: dict[str, Any]) -> dict[str, float]:
    table = run["metadata"]["drift"]
    return {r.data["feature"]: r.data["psi"] for r in table.records}


def test_unshifted_inputs_pass_the_drift_check(trained: tuple[Path, Settings]) -> None:
    root, settings = trained
    purpose = f"monitoring-test-plain-{uuid.uuid4().hex[:8]}"
    _score_batch(settings, _test_split(root), purpose)

    run = _materialize(root, settings, purpose=purpose)
    drift = run["checks"]["drift_within_thresholds"]
    assert drift.passed, drift.description
    assert drift.metadata["evaluated"].value is True
    psi = _psi_by_feature(run)
    spec = load_spec("hmda")
    assert set(psi) == {*spec.feature_names, "score"}
    assert max(psi.values()) < 0.1  # the held-out split is the training distribution
    doc = run["doc"]
    # before any promotion the candidate is monitored; its decisions are counted
    assert doc["model"] == {**doc["model"], "name": MODEL, "version": "1", "alias": "candidate"}
    assert doc["counts"]["decisions"] == len(_test_split(root))
    # no outcomes and no sensitive attributes yet: reported, not judged
    for name in ("performance_within_thresholds", "fairness_within_thresholds"):
        check = run["checks"][name]
        assert check.passed and check.metadata["evaluated"].value is False
        assert check.description.startswith("not evaluated")


def test_shifted_inputs_raise_the_drift_check(trained: tuple[Path, Settings]) -> None:
    root, settings = trained
    purpose = f"monitoring-test-shift-{uuid.uuid4().hex[:8]}"
    shifted = _test_split(root)
    shifted["pirat"] = shifted["pirat"] * 1.8
    shifted["lvrat"] = shifted["lvrat"] + 0.3
    _score_batch(settings, shifted, purpose)

    run = _materialize(root, settings, purpose=purpose, alias="candidate")
    drift = run["checks"]["drift_within_thresholds"]
    assert not drift.passed
    assert drift.severity == dg.AssetCheckSeverity.ERROR
    assert "PSI of pirat" in drift.description and "PSI of lvrat" in drift.description
    psi = _psi_by_feature(run)
    over = {name for name, value in psi.items() if value > 0.2}
    assert over == {"pirat", "lvrat", "score"}
    assert run["metadata"]["score_psi"].value == pytest.approx(psi["score"], abs=1e-6)
    assert "### Bins of pirat" in run["metadata"]["report"].value


def test_bins_are_stored_and_are_the_training_quantiles(trained: tuple[Path, Settings]) -> None:
    root, settings = trained
    ws = Workspace.open(root, settings=settings)
    first = monitoring.run(settings, ws.params, MODEL, purpose="no-such-purpose")
    stored = json.loads(first.paths["reference"].read_text())
    assert first.paths["reference"].parent == root / "reports/monitoring/mortgage-denial/v1"
    train = read_csv(root / "data" / "split" / "train.csv")
    features = {f["name"]: f for f in stored["features"]}
    for name in ("pirat", "lvrat", "chist"):
        expected = np.unique(np.quantile(train[name].astype(float), DECILES))
        assert features[name]["edges"] == pytest.approx(expected.tolist())
        assert sum(features[name]["counts"]) == len(train)
    assert features["phist"]["labels"] == ["no", "yes", "missing", "other"]
    spec = load_spec("hmda")
    scorecard = Scorecard.from_dict(json.loads((root / "models/scorecard.json").read_text()))
    scores, _ = scorecard.score_frame(model_inputs(train, spec))
    assert stored["score"]["edges"] == pytest.approx(np.quantile(scores, DECILES).tolist())
    # the profile names the exact training bytes it was built from
    assert stored["source"]["train_md5"] == file_md5(root / "data" / "split" / "train.csv")
    assert first.doc["reference"]["train_md5"] == stored["source"]["train_md5"]
    # reused, not rebuilt, on the next run; an empty window judges nothing
    mtime = first.paths["reference"].stat().st_mtime_ns
    again = monitoring.run(settings, ws.params, MODEL, purpose="no-such-purpose")
    assert again.paths["reference"].stat().st_mtime_ns == mtime
    assert again.report.counts["decisions"] == 0
    assert all(not c.evaluated and c.passed for c in again.report.checks.values())
    for key in ("json", "markdown", "html"):
        assert again.paths[key].is_file()
    assert again.paths["html"].read_text().startswith("<!doctype html>")


def _flip(outcome: str) -> str:
    return "approve" if outcome == "deny" else "deny"


def test_outcomes_overrides_and_sensitive_attributes_match_fairlearn(
    trained: tuple[Path, Settings],
) -> None:
    root, settings = trained
    purpose = f"monitoring-test-outcomes-{uuid.uuid4().hex[:8]}"
    spec = load_spec("hmda")
    test = _test_split(root)
    rows = model_inputs(test, spec).to_dict(orient="records")
    sensitive = spec.sensitive_frame(test).reset_index(drop=True)
    y = (test["deny"] == "yes").astype(int).to_numpy()
    observed = np.where(y == 1, "deny", "approve")
    with DecisionService.open(settings) as service:
        decisions: list[Decision] = service.decide_many(
            MODEL,
            rows,
            subject_ids=[f"{purpose}-{i}" for i in test["application_id"]],
            alias="candidate",
            purpose=purpose,
            pii=[{"sensitive": s} for s in sensitive.to_dict(orient="records")],
        )
        effective = [d.outcome for d in decisions]
        for i in range(0, 120, 10):  # twelve overrides flip the outcome
            effective[i] = _flip(effective[i])
            service.record_review(
                decisions[i].decision_id,
                kind="override",
                reviewer="credit officer",
                reason="manual review",
                outcome=effective[i],
            )
        # overridden twice: the last override counts (back to the model's outcome)
        service.record_review(
            decisions[0].decision_id,
            kind="override",
            reviewer="second reviewer",
            reason="overruled",
            outcome=decisions[0].outcome,
        )
        effective[0] = decisions[0].outcome
        service.record_review(decisions[1].decision_id, kind="review", reviewer="r", reason="ok")
        for i, d in enumerate(decisions):
            if i < 5:  # a wrong outcome first, corrected later: the last one counts
                service.record_outcome(d.decision_id, _flip(str(observed[i])))
            service.record_outcome(d.decision_id, str(observed[i]))
        first_ts = decisions[0].timestamp

    run = _materialize(root, settings, purpose=purpose)
    doc = run["doc"]
    assert doc["counts"]["decisions"] == len(test)
    assert doc["counts"]["with_outcome"] == len(test)
    assert doc["counts"]["with_sensitive"] == len(test)
    assert doc["counts"]["overridden"] == 12

    # performance, computed directly from the rows
    scores = np.array([d.score for d in decisions])
    y_eff = (np.array(effective) == "deny").astype(int)
    perf = doc["performance"]
    assert perf["n"] == len(test)
    assert perf["auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert perf["brier"] == pytest.approx(brier_score_loss(y, scores), abs=1e-12)
    assert perf["accuracy"] == pytest.approx(float(np.mean(y_eff == y)), abs=1e-12)
    assert perf["predicted_adverse_rate"] == pytest.approx(float(y_eff.mean()), abs=1e-12)
    assert run["metadata"]["auc"].value == pytest.approx(perf["auc"])

    # fairness of the effective decisions, with fairlearn on the same rows
    groupings = {g["name"]: g for g in doc["fairness"]}
    expected_pass = perf["auc"] >= 0.7
    fairness_pass = True
    for attribute in ("afam", "single"):
        frame = MetricFrame(
            metrics={
                "count": count,
                "selection_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            y_true=y,
            y_pred=y_eff,
            sensitive_features=sensitive[attribute],
        )
        g = groupings[attribute]
        approval = {r["values"][attribute]: r for r in g["approval"]["by_group"]}
        outcomes = {r["values"][attribute]: r for r in g["outcomes"]["by_group"]}
        assert set(approval) == set(outcomes) == set(frame.by_group.index)
        for value, ref in frame.by_group.iterrows():
            assert approval[value]["count"] == ref["count"]
            assert approval[value]["approval_rate"] == pytest.approx(
                1 - ref["selection_rate"], abs=1e-12
            )
            assert outcomes[value]["tpr"] == pytest.approx(ref["tpr"], abs=1e-12)
            assert outcomes[value]["fpr"] == pytest.approx(ref["fpr"], abs=1e-12)
        rates = 1 - frame.by_group["selection_rate"]
        ratio = float(rates.min() / rates.max())
        eod = float(equalized_odds_difference(y, y_eff, sensitive_features=sensitive[attribute]))
        assert g["approval"]["approval_ratio"] == pytest.approx(ratio, abs=1e-12)
        assert g["outcomes"]["equalized_odds_difference"] == pytest.approx(eod, abs=1e-12)
        fairness_pass &= ratio >= 0.8 and eod <= 0.2
        table = run["metadata"][f"fairness by {attribute}"]
        assert {r.data["group"] for r in table.records} == {f"{attribute}={v}" for v in approval}
    assert "afam\u00d7single" in groupings

    checks = run["checks"]
    assert checks["performance_within_thresholds"].passed is expected_pass
    assert checks["performance_within_thresholds"].metadata["evaluated"].value is True
    assert checks["fairness_within_thresholds"].passed is fairness_pass
    assert checks["fairness_within_thresholds"].metadata["evaluated"].value is True

    # a tighter setting demonstrably fails (params.yaml `monitoring`, here passed directly)
    ws = Workspace.open(root, settings=settings)
    strict = {**ws.params, "monitoring": {"min_auc": 0.99, "min_approval_ratio": 0.999}}
    report = monitoring.run(settings, strict, MODEL, purpose=purpose, write=False).report
    assert not report.checks["performance"].passed
    assert "auc is" in report.checks["performance"].message
    assert not report.checks["fairness"].passed

    # the time window selects decisions by their timestamp
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        kwargs: dict[str, Any] = {
            "features": spec.feature_names,
            "sensitive_features": list(spec.sensitive_features),
            "purpose": purpose,
        }
        after = monitoring.load_production(ledger, MODEL, "1", since=first_ts, **kwargs)
        before = monitoring.load_production(ledger, MODEL, "1", until=first_ts, **kwargs)
    assert len(after.decisions) == len(test) and len(before.decisions) == 0
    assert after.sensitive["afam"].tolist() == sensitive["afam"].tolist()


def test_monitoring_asset_checks_and_daily_schedule_in_the_code_location() -> None:
    defs = load_defs() if callable(load_defs) else load_defs
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("production_monitoring"))
    assert node.group_name == "monitoring"
    assert node.parent_keys == {dg.AssetKey("register")}
    checks = {k.name: graph.get(k) for k in graph.asset_check_keys}
    names = {
        "drift_within_thresholds",
        "performance_within_thresholds",
        "fairness_within_thresholds",
    }
    assert names <= set(checks)
    assert all(checks[n].key.asset_key == dg.AssetKey("production_monitoring") for n in names)
    assert not any(checks[n].blocking for n in names)

    schedule = defs.resolve_schedule_def("daily_monitoring")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 6 * * *"
    job = defs.resolve_job_def(schedule.job_name)
    assert {n.name for n in job.graph.node_defs} == {"production_monitoring"}
    with dg.instance_for_test() as instance:
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert len(data.run_requests or []) == 1


def test_sensitive_attributes_are_read_as_supplied_or_derived() -> None:
    credit = load_spec("credit")
    features = list(credit.sensitive_features)  # Marital, age_band (derived from Age)
    assert monitoring._sensitive_values({"Marital": "married", "Age": 24}, features, credit) == {
        "Marital": "married",
        "age_band": "under 25",
    }
    assert monitoring._sensitive_values({"age_band": "25-61"}, features, credit) == {
        "age_band": "25-61"
    }
    assert monitoring._sensitive_values({"Age": "n/a", "other": 1}, features, credit) == {}
