"""Tests for governance.core.monitoring: PSI against hand computations, stored bins, performance
and fairness against scikit-learn / fairlearn, checks and their thresholds, the report."""

from __future__ import annotations

import json
import math

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

from governance.core import monitoring as m
from governance.core.monitoring import (
    Bins,
    MonitoringParams,
    ProductionFrames,
    ReferenceProfile,
    build_reference_profile,
    fit_categorical_bins,
    fit_numeric_bins,
    psi,
    psi_terms,
)

# -- PSI ----------------------------------------------------------------------------------


def test_psi_matches_a_hand_computation() -> None:
    # shares q = (0.5, 0.3, 0.2), p = (0.3, 0.3, 0.4):
    # (0.3 - 0.5) ln(0.3 / 0.5) + 0 + (0.4 - 0.2) ln(0.4 / 0.2)
    # = 0.2 * 0.5108256 + 0.2 * 0.6931472 = 0.1021651 + 0.1386294 = 0.2407946
    assert psi([50, 30, 20], [30, 30, 40]) == pytest.approx(0.2407946, abs=1e-7)
    terms = psi_terms([50, 30, 20], [30, 30, 40])
    assert terms == pytest.approx([0.1021651, 0.0, 0.1386294], abs=1e-7)


def test_psi_floors_empty_bins_at_epsilon() -> None:
    # q = (1, 0 -> 1e-4), p = (0.5, 0.5):
    # (0.5 - 1) ln(0.5) + (0.5 - 0.0001) ln(0.5 / 0.0001)
    # = 0.3465736 + 0.4999 * 8.5171932 = 0.3465736 + 4.2577449 = 4.6043185
    assert psi([10, 0], [5, 5], epsilon=1e-4) == pytest.approx(4.6043185, abs=1e-6)
    # with a larger floor the same shift reads smaller: (0.5-1)ln(.5) + (0.5-0.01)ln(50)
    assert psi([10, 0], [5, 5], epsilon=0.01) == pytest.approx(
        0.5 * math.log(2) + 0.49 * math.log(50), abs=1e-12
    )


def test_psi_is_zero_for_equal_shares_and_symmetric() -> None:
    assert psi([10, 20, 30, 0], [1, 2, 3, 0]) == 0.0  # bin empty on both sides adds nothing
    a, b = [12, 40, 7, 41], [30, 20, 25, 25]
    assert psi(a, b) == pytest.approx(psi(b, a), abs=1e-15)
    assert psi(a, b) > 0


@pytest.mark.parametrize(
    ("ref", "prod", "eps", "message"),
    [
        ([1, 2], [1, 2, 3], 1e-4, "same length"),
        ([1, -2], [1, 2], 1e-4, "non-negative"),
        ([0, 0], [1, 2], 1e-4, "reference counts are all zero"),
        ([1, 2], [0, 0], 1e-4, "production counts are all zero"),
        ([1, 2], [1, 2], 0.0, "psi_epsilon"),
    ],
)
def test_psi_rejects_bad_input(ref: list[int], prod: list[int], eps: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        psi(ref, prod, epsilon=eps)


# -- bins ---------------------------------------------------------------------------------


def test_numeric_bins_are_training_quantiles_with_open_ends() -> None:
    values = np.arange(1.0, 101.0)
    bins = fit_numeric_bins(values, 10)
    expected = np.quantile(values, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert bins.edges == pytest.approx(expected.tolist())
    assert len(bins.labels) == 11 and bins.labels[-1] == "missing"
    assert bins.labels[0] == "(-inf, 10.9]" and bins.labels[9] == "(90.1, inf)"
    # right-closed: an edge belongs to the bin below it; beyond the training range: the ends
    idx = bins.assign([10.9, 10.91, -1e9, 1e9, np.inf, -np.inf, None, np.nan])
    assert idx.tolist() == [0, 1, 0, 9, 9, 0, 10, 10]
    # ten equal-count bins on the training data itself
    assert bins.counts(values).tolist() == [10] * 10 + [0]


def test_numeric_bins_of_a_discrete_feature_get_one_bin_per_value() -> None:
    values = [1] * 80 + [2] * 10 + [3] * 10
    bins = fit_numeric_bins(values, 10)
    assert bins.edges == tuple(np.unique(np.quantile(values, np.arange(1, 10) / 10)))
    counts = bins.counts(values)
    assert sorted(c for c in counts.tolist() if c) == [10, 10, 80]


def test_numeric_bins_of_constant_or_empty_data() -> None:
    assert fit_numeric_bins([5.0] * 20).edges == (5.0,)
    empty = fit_numeric_bins([None, np.nan])
    assert empty.edges == () and empty.labels == ["(-inf, inf)", "missing"]
    with pytest.raises(ValueError, match="psi_bins"):
        fit_numeric_bins([1.0, 2.0], 1)


def test_categorical_bins_have_missing_and_other() -> None:
    bins = fit_categorical_bins(["yes", "no", "no", None, "maybe"], categories=["no", "yes"])
    assert bins.categories == ("no", "yes", "maybe")
    assert bins.labels == ["no", "yes", "maybe", "missing", "other"]
    assert bins.assign(["no", "yes", None, np.nan, "unheard-of", "maybe"]).tolist() == [
        0,
        1,
        3,
        3,
        4,
        2,
    ]


def test_bins_round_trip_through_json() -> None:
    for bins in (
        fit_numeric_bins(np.linspace(0, 1, 57), 7),
        Bins("categorical", categories=("a", "b")),
    ):
        again = Bins.from_dict(json.loads(json.dumps(bins.to_dict())))
        assert again == bins
        assert again.labels == bins.labels


# -- the reference profile and drift ------------------------------------------------------


def _frame(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0.3 + shift, 0.1, n),
            "grade": rng.integers(1, 5, n).astype(float),
            "flag": rng.choice(["no", "yes"], n, p=[0.8, 0.2]).astype(object),
        }
    )
    scores = 1 / (1 + np.exp(-(frame["x"].to_numpy() - 0.3) * 25))
    return frame, scores


def _profile(frame: pd.DataFrame, scores: np.ndarray) -> ReferenceProfile:
    return build_reference_profile(
        frame,
        scores,
        numeric=["x", "grade"],
        categorical={"flag": ["no", "yes"]},
        n_bins=10,
        source={"train_md5": "abc"},
    )


def test_profile_round_trips_and_has_zero_drift_against_itself() -> None:
    frame, scores = _frame(2000, 1)
    profile = _profile(frame, scores)
    again = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile
    assert profile.feature("x").counts == tuple(profile.feature("x").bins.counts(frame["x"]))
    result = m.drift(profile, frame, scores)
    assert [e["feature"] for e in result["features"]] == ["x", "grade", "flag"]
    assert all(e["psi"] == pytest.approx(0.0, abs=1e-12) for e in result["features"])
    assert result["score"]["psi"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="schema"):
        ReferenceProfile.from_dict({"schema": "something else"})


def test_drift_psi_equals_psi_of_the_bin_counts_computed_by_hand() -> None:
    frame, scores = _frame(2000, 1)
    profile = _profile(frame, scores)
    prod, prod_scores = _frame(500, 2, shift=0.05)
    result = m.drift(profile, prod, prod_scores, epsilon=1e-4)
    x = next(e for e in result["features"] if e["feature"] == "x")
    # independent: training deciles, right-closed, by hand with numpy
    edges = np.quantile(frame["x"], np.arange(1, 10) / 10)
    q = np.bincount(np.searchsorted(edges, frame["x"], side="left"), minlength=10) / len(frame)
    p = np.bincount(np.searchsorted(edges, prod["x"], side="left"), minlength=10) / len(prod)
    q, p = np.maximum(q, 1e-4), np.maximum(p, 1e-4)
    assert x["psi"] == pytest.approx(float(np.sum((p - q) * np.log(p / q))), abs=1e-12)
    assert x["psi"] > 0.2  # half a standard deviation is a significant shift
    assert sum(b["psi_term"] for b in x["bins"]) == pytest.approx(x["psi"])
    assert [b["bin"] for b in x["bins"]] == profile.feature("x").bins.labels


def test_drift_needs_the_profiled_features() -> None:
    frame, scores = _frame(100, 1)
    with pytest.raises(ValueError, match="flag"):
        m.drift(_profile(frame, scores), frame.drop(columns=["flag"]), scores)


# -- overrides and outcomes ---------------------------------------------------------------


def test_effective_outcome_is_the_last_override() -> None:
    outcomes = pd.Series(["deny", "approve", "deny"], index=["a", "b", "c"])
    overrides = pd.DataFrame(
        {
            "decision_id": ["a", "a", "b", "zzz"],
            "seq": [10, 12, 11, 13],
            "outcome": ["approve", "deny", "deny", "approve"],
        }
    ).sample(frac=1, random_state=3)  # order of arrival in the frame does not matter, seq does
    got = m.effective_outcomes(outcomes, overrides)
    assert got.to_dict() == {"a": "deny", "b": "deny", "c": "deny"}
    assert outcomes.to_dict() == {"a": "deny", "b": "approve", "c": "deny"}  # untouched
    empty = pd.DataFrame(columns=["decision_id", "seq", "outcome"])
    assert m.effective_outcomes(outcomes, empty).equals(outcomes)


def test_latest_outcome_per_decision() -> None:
    events = pd.DataFrame(
        {
            "decision_id": ["a", "b", "a"],
            "seq": [3, 4, 5],
            "observed": ["deny", "approve", "approve"],
        }
    )
    assert m.latest_by_decision(events, "observed").to_dict() == {"b": "approve", "a": "approve"}


# -- performance --------------------------------------------------------------------------


def test_performance_matches_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < p).astype(int)
    d = (p >= 0.5).astype(int)
    got = m.performance(y, p, d, calibration_bins=10)
    assert got["n"] == 400 and got["observed_adverse"] == int(y.sum())
    assert got["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert got["accuracy"] == pytest.approx(float(np.mean(d == y)))
    # ECE by hand: per equal-width bin |sum p - sum y|, over n
    ece = 0.0
    for b in range(10):
        inside = (p >= b / 10) & ((p < (b + 1) / 10) | (b == 9))
        ece += abs(p[inside].sum() - y[inside].sum())
    assert got["calibration_error"] == pytest.approx(ece / 400, abs=1e-12)


def test_performance_without_rows_or_with_one_class() -> None:
    assert m.performance([], [], [])["auc"] is None
    one = m.performance([0, 0, 0], [0.1, 0.2, 0.3], [0, 0, 0])
    assert one["auc"] is None and one["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)


# -- fairness -----------------------------------------------------------------------------


def _fair_data(n: int = 600, seed: int = 11) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"d{i}" for i in range(n)])
    race = pd.Series(rng.choice(["no", "yes"], n, p=[0.8, 0.2]), index=idx, dtype=object)
    single = pd.Series(rng.choice(["no", "yes"], n), index=idx, dtype=object)
    base = np.where(race == "yes", 0.35, 0.12)
    y_true = pd.Series((rng.uniform(0, 1, n) < base).astype(int), index=idx)
    y_pred = pd.Series((rng.uniform(0, 1, n) < base + 0.05).astype(int), index=idx)
    sensitive = pd.DataFrame({"race": race, "single": single})
    return y_pred, y_true, sensitive


def test_approval_by_group_matches_fairlearn() -> None:
    y_pred, y_true, sensitive = _fair_data()
    got = m.approval_by_group(y_pred.to_numpy(), sensitive[["race"]], min_group_size=30)
    frame = MetricFrame(
        metrics={"count": count, "selection_rate": selection_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive["race"],
    )
    for row in got["by_group"]:
        ref = frame.by_group.loc[row["values"]["race"]]
        assert row["count"] == ref["count"]
        assert row["approval_rate"] == pytest.approx(1 - ref["selection_rate"], abs=1e-12)
    rates = 1 - frame.by_group["selection_rate"]
    assert got["approval_ratio"] == pytest.approx(rates.min() / rates.max(), abs=1e-12)


def test_small_groups_are_shown_but_not_compared() -> None:
    groups = pd.DataFrame({"g": ["a"] * 40 + ["b"] * 40 + ["c"] * 5})
    y_pred = np.array([0] * 40 + [0] * 20 + [1] * 20 + [1] * 5)
    got = m.approval_by_group(y_pred, groups, min_group_size=30)
    assert got["excluded_groups"] == ["g=c"]
    assert got["approval_ratio"] == pytest.approx(0.5)  # c (approval 0) is not compared
    alone = m.approval_by_group(np.array([0, 1]), pd.DataFrame({"g": ["a", "a"]}), 1)
    assert alone["approval_ratio"] is None  # one group: no ratio


def test_production_fairness_with_outcomes_matches_fairlearn() -> None:
    y_pred, y_true, sensitive = _fair_data()
    sensitive.loc[sensitive.index[:50], "race"] = np.nan  # not supplied with 50 decisions
    y_true.loc[y_true.index[-100:]] = np.nan  # outcomes of 100 decisions not yet arrived
    y_true = y_true.astype(object).where(y_true.notna(), None)
    got = {g["name"]: g for g in m.production_fairness(y_pred, sensitive, y_true, n_bootstrap=20)}
    assert set(got) == {"race", "single", "race\u00d7single"}
    race = got["race"]
    assert race["n"] == 550 and race["outcomes"]["n"] == 450
    keep = sensitive["race"].notna() & y_true.notna()
    yt, yp = y_true[keep].astype(int), y_pred[keep]
    frame = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "count": count},
        y_true=yt,
        y_pred=yp,
        sensitive_features=sensitive.loc[keep, "race"],
    )
    for row in race["outcomes"]["by_group"]:
        ref = frame.by_group.loc[row["values"]["race"]]
        assert row["count"] == ref["count"]
        assert row["tpr"] == pytest.approx(ref["tpr"], abs=1e-12)
        assert row["fpr"] == pytest.approx(ref["fpr"], abs=1e-12)
    eod = equalized_odds_difference(yt, yp, sensitive_features=sensitive.loc[keep, "race"])
    assert race["outcomes"]["equalized_odds_difference"] == pytest.approx(eod, abs=1e-12)
    # approval rates use every decision that came with the attribute, outcome or not
    supplied = sensitive["race"].notna()
    approval = {r["group"]: r["approval_rate"] for r in race["approval"]["by_group"]}
    for value in ("no", "yes"):
        rows = supplied & (sensitive["race"] == value)
        assert approval[f"race={value}"] == pytest.approx(float((y_pred[rows] == 0).mean()))
    assert got["race\u00d7single"]["n"] == 550


def test_production_fairness_without_sensitive_attributes() -> None:
    y_pred, _, sensitive = _fair_data(50)
    none = sensitive.assign(race=np.nan, single=np.nan)
    got = m.production_fairness(y_pred, none, None)
    assert all(g["n"] == 0 and g["approval"] is None for g in got)


# -- parameters ---------------------------------------------------------------------------


def test_params_defaults_and_overrides() -> None:
    assert MonitoringParams.from_params(None) == MonitoringParams()
    p = MonitoringParams.from_params({"psi_max": 0.25, "min_outcomes": 50.0, "psi_bins": 20})
    assert (p.psi_max, p.min_outcomes, p.psi_bins, p.min_auc) == (0.25, 50, 20, 0.7)
    assert isinstance(p.min_outcomes, int)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"psi_mx": 0.3}, "unknown monitoring parameter"),
        ({"min_auc": 1.5}, "min_auc must be between 0 and 1"),
        ({"psi_max": -1}, "psi_max must be non-negative"),
        ({"min_outcomes": 2.5}, "min_outcomes must be an integer"),
        ({"psi_bins": 1}, "psi_bins"),
        ({"psi_epsilon": 0}, "psi_epsilon"),
        ({"min_auc": "high"}, "must be a number"),
        ({"n_bootstrap": True}, "must be a number"),
        # a floor near a bin's share made every bin equal: drift of PSI 1.7 read as 0.03
        ({"psi_epsilon": 0.5}, "psi_epsilon must be above 0 and at most a tenth of a bin's"),
        ({"psi_epsilon": 0.011}, r"at most a tenth of a bin's share \(0.01\)"),
        ({"psi_epsilon": 0.006, "psi_bins": 20}, r"share \(0.005\); got 0.006"),
        ({"psi_max": math.nan}, "psi_max must be a finite number"),
        ({"score_psi_max": math.inf}, "score_psi_max must be a finite number"),
        ({"min_decisions": math.inf}, "min_decisions must be a finite number"),
        ({"psi_bins": 1_000_000}, "psi_bins must be at most 1000"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
    ],
)
def test_params_are_checked(block: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MonitoringParams.from_params(block)


# -- the report and its checks ------------------------------------------------------------


def _production(
    n: int, *, shift: float = 0.0, seed: int = 5, skew: bool = False
) -> ProductionFrames:
    frame, scores = _frame(n, seed, shift)
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"d{i}" for i in range(n)], name="decision_id")
    frame.index = idx
    outcome = np.where(scores >= 0.5, "deny", "approve")
    race = rng.choice(["no", "yes"], n)
    if skew:  # deny every "yes" applicant
        outcome = np.where(race == "yes", "deny", outcome)
    observed = np.where(rng.uniform(0, 1, n) < scores, "deny", "approve")
    decisions = pd.DataFrame(
        {
            "ts": "2026-01-01T00:00:00Z",
            "seq": np.arange(n),
            "score": scores,
            "outcome": outcome,
            "effective_outcome": outcome,
            "overridden": False,
            "observed": observed.astype(object),
        },
        index=idx,
    )
    sensitive = pd.DataFrame({"race": race}, index=idx, dtype=object)
    return ProductionFrames(decisions, frame, sensitive)


def test_monitor_passes_on_reference_like_data() -> None:
    train, scores = _frame(3000, 1)
    report = m.monitor(
        _profile(train, scores), _production(800), MonitoringParams(), adverse_outcome="deny"
    )
    assert report.passed
    assert all(c.evaluated for c in report.checks.values()), report.checks
    assert report.counts["decisions"] == 800 and report.counts["with_outcome"] == 800
    doc = report.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["schema"] == "governance.monitoring/1" and doc["passed"] is True


def test_monitor_checks_fail_over_their_thresholds() -> None:
    train, scores = _frame(3000, 1)
    profile = _profile(train, scores)
    shifted = m.monitor(
        profile, _production(800, shift=0.1), MonitoringParams(), adverse_outcome="deny"
    )
    drift = shifted.checks["drift"]
    assert not drift.passed and drift.evaluated
    assert any("PSI of x" in f for f in drift.failures)
    assert any("PSI of the score" in f for f in drift.failures)
    assert not any("grade" in f or "flag" in f for f in drift.failures)

    strict = MonitoringParams(min_auc=0.99, max_calibration_error=0.001)
    perf = m.monitor(profile, _production(800), strict, adverse_outcome="deny").checks
    assert not perf["performance"].passed and len(perf["performance"].failures) == 2

    skewed = m.monitor(
        profile, _production(800, skew=True), MonitoringParams(), adverse_outcome="deny"
    )
    fair = skewed.checks["fairness"]
    assert not fair.passed and "approval-rate ratio by race" in fair.message


def test_monitor_without_enough_data_does_not_judge() -> None:
    train, scores = _frame(3000, 1)
    profile = _profile(train, scores)
    few = _production(40)
    few.decisions["observed"] = None
    report = m.monitor(profile, few, MonitoringParams(), adverse_outcome="deny")
    assert report.passed
    assert [c.evaluated for c in report.checks.values()] == [False, False, False]
    assert "fewer than min_decisions 100" in report.checks["drift"].message
    assert "fewer than min_outcomes 100" in report.checks["performance"].message
    # two groups of about 20 decisions, both under min_group_size 30: no ratio to judge
    assert "approval ratio by race undefined" in report.checks["fairness"].message
    empty = _production(0)
    report = m.monitor(profile, empty, MonitoringParams(), adverse_outcome="deny")
    assert report.passed and report.counts["decisions"] == 0
    assert all(not c.evaluated for c in report.checks.values())
    assert "No decisions in the window" in m.render_markdown(report.to_dict())


def test_a_report_that_judged_nothing_does_not_say_all_checks_pass() -> None:
    """A window with too little data used to read "all checks pass": drift, performance and
    fairness were each "not evaluated", and a skipped check counted as a passed one."""
    train, scores = _frame(3000, 1)
    profile = _profile(train, scores)
    few = _production(40)
    report = m.monitor(profile, few, MonitoringParams(), adverse_outcome="deny")
    md = m.render_markdown(report.to_dict())
    assert "all checks pass" not in md
    assert ": no check could be evaluated (too little data)." in md
    enough = _production(300)
    enough.decisions["observed"] = None  # no outcomes yet: performance cannot be judged
    report = m.monitor(profile, enough, MonitoringParams(), adverse_outcome="deny")
    assert report.passed and not report.checks["performance"].evaluated
    md = m.render_markdown(report.to_dict())
    assert "all checks pass" not in md
    assert "drift, fairness pass; not evaluated: performance." in md


def test_monitor_counts_out_of_distribution_decisions_by_feature() -> None:
    train, scores = _frame(3000, 1)
    prod = _production(300)
    flags: list[tuple[str, ...]] = [()] * 300
    flags[3], flags[7], flags[9] = ("x",), ("x", "y"), ("y",)
    prod.decisions["out_of_distribution"] = pd.Series(flags, index=prod.decisions.index)
    report = m.monitor(_profile(train, scores), prod, MonitoringParams(), adverse_outcome="deny")
    assert report.counts["out_of_distribution"] == 3
    assert report.out_of_distribution == {"x": 2, "y": 2}
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["out_of_distribution"] == {"x": 2, "y": 2}
    md = m.render_markdown(doc)
    assert "out of distribution" in md and "by feature: x 2, y 2." in md
    # frames without the column (reports of older ledgers) count none
    plain = m.monitor(
        _profile(train, scores), _production(300), MonitoringParams(), adverse_outcome="deny"
    )
    assert plain.counts["out_of_distribution"] == 0 and plain.out_of_distribution == {}


def test_report_renders_markdown_and_escaped_html() -> None:
    train, scores = _frame(3000, 1)
    prod = _production(300, shift=0.1)
    prod.sensitive.iloc[:150, 0] = "<script>alert(1)</script>"
    report = m.monitor(
        _profile(train, scores),
        prod,
        MonitoringParams(),
        adverse_outcome="deny",
        model={"name": "demo", "version": "3", "alias": "champion"},
        reference_metrics={"auc": 0.87, "brier": 0.08},
    )
    doc = json.loads(json.dumps(report.to_dict()))
    md = m.render_markdown(doc)
    for heading in (
        "# Production monitoring: demo version 3",
        "## Checks",
        "## Input drift",
        "### Bins of x",
        "## Production performance",
        "## Production fairness",
        "### By race",
    ):
        assert heading in md, heading
    assert "| x | numeric |" in md and "| 0.870 |" in md
    page = m.render_html(doc)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert page.startswith("<!doctype html>") and "<table>" in page
