"""The less-discriminatory-alternatives search on the real HMDA split."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from fairlearn.reductions import DemographicParity, ExponentiatedGradient, GridSearch

from governance.core import alternatives as lda
from governance.core.dataset import Feature, load_spec, read_source
from governance.core.evaluation import evaluate
from governance.core.fairness import fairness_report
from governance.core.scorecard import compile_pipeline
from governance.core.training import TrainParams, build_pipeline, model_inputs, split, train

PARAMS = TrainParams(seed=20240611)
SETTINGS = lda.EvaluationSettings(n_bootstrap=50, seed=3, fairness_n_bootstrap=50, fairness_seed=4)
CONFIG = lda.AlternativesConfig.from_params(
    {
        "C": [0.01, 0.1],
        "drop": [["hschool"]],  # also a proxy in the spec: tried once
        "reductions": [
            {
                "method": "grid_search",
                "constraint": "demographic_parity",
                "bound": 0.01,
                "grid_size": 7,
            },
            {"method": "exponentiated_gradient", "constraint": "demographic_parity", "bound": 0.02},
        ],
        "max_iter": 15,
    }
)


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    spec = load_spec("hmda")
    frame = read_source(spec.source).rename(columns=spec.rename)
    train_frame, test = split(frame, spec, test_size=0.25, seed=20240611)
    scorecard = compile_pipeline(train(train_frame, spec, PARAMS), spec, train_frame, PARAMS)
    scores, _ = scorecard.score_frame(model_inputs(test, spec))
    found = lda.search(
        spec=spec,
        train=train_frame,
        test=test,
        baseline_scores=scores,
        params=PARAMS,
        config=CONFIG,
        settings=SETTINGS,
    )
    return {"spec": spec, "train": train_frame, "test": test, "scores": scores, "search": found}


def test_the_model_is_judged_exactly_as_the_pipeline_judges_it(setup: dict[str, Any]) -> None:
    spec, test, scores = setup["spec"], setup["test"], setup["scores"]
    y = spec.labels(test).to_numpy()
    ev = evaluate(y, scores, threshold=0.5, n_bootstrap=50, seed=3)
    base = setup["search"].baseline
    assert base.metrics == ev.metrics and base.intervals == ev.intervals
    report = fairness_report(
        y,
        (scores >= 0.5).astype(int),
        sensitive_features=spec.sensitive_frame(test).reset_index(drop=True),
        n_bootstrap=50,
        random_state=4,
    )
    by = {g.name: g for g in report.groupings}
    assert base.fairness["afam"]["approval_ratio"] == by["afam"].approval_ratio
    worst = min(by["afam"].approval_ratio, by["single"].approval_ratio)
    assert base.worst == worst


def test_every_configured_alternative_is_there_and_none_takes_a_sensitive_input(
    setup: dict[str, Any],
) -> None:
    found = setup["search"]
    names = [r.name for r in found.alternatives]
    assert names == [
        "C=0.01",
        "C=0.1",
        "without:unemp",
        "without:hschool",
        "gs:demographic_parity:0.01",
        "eg:demographic_parity:0.02",
    ]
    for r in found.results:
        assert not set(r.inputs) & {"afam", "single"}
        assert 0.5 < r.metrics["auc"] <= 1 and set(r.intervals) == set(r.metrics)
    assert "unemp" not in found.alternatives[2].inputs
    assert "hschool" not in found.alternatives[3].inputs


def test_only_single_scorecards_are_exactly_explainable(setup: dict[str, Any]) -> None:
    by = {r.name: r for r in setup["search"].results}
    explainable = ("model", "C=0.01", "C=0.1", "without:unemp", "without:hschool")
    for name in (*explainable, "gs:demographic_parity:0.01"):
        assert by[name].explainable, name
    eg = by["eg:demographic_parity:0.02"]
    assert not eg.explainable and "mixture" in eg.why_not_explainable


def test_a_sensitive_attribute_as_input_is_refused(setup: dict[str, Any]) -> None:
    spec = setup["spec"]
    leaky = replace(spec, features=(*spec.features, Feature("afam", "categorical", "race")))
    with pytest.raises(ValueError, match="sensitive attribute"):
        lda.candidates(leaky, PARAMS, CONFIG)
    with pytest.raises(ValueError, match="not model inputs"):
        lda.candidates(spec, PARAMS, replace(CONFIG, drop=(("nonsense",),)))


def test_frontier_is_the_pareto_set(setup: dict[str, Any]) -> None:
    results = setup["search"].results
    for r in results:
        dominated = any(
            o is not r
            and o.metrics["auc"] >= r.metrics["auc"]
            and o.worst >= r.worst
            and (o.metrics["auc"] > r.metrics["auc"] or o.worst > r.worst)
            for o in results
        )
        assert r.on_frontier == (not dominated), r.name
    assert any(r.on_frontier for r in results)


def test_gate_passes_by_default_and_blocks_naming_the_alternative(setup: dict[str, Any]) -> None:
    found = setup["search"]
    assert found.gate.passed, found.gate.message
    fairer = [
        r for r in found.alternatives if r.explainable and r.worst > found.baseline.worst + 0.001
    ]
    assert fairer, "some explainable alternative is fairer on this split"
    best = max(fairer, key=lambda r: r.worst)
    auc_gap = found.baseline.metrics["auc"] - best.metrics["auc"]
    tight = replace(CONFIG, fairness_tolerance=0.0, auc_tolerance=max(auc_gap, 0) + 0.001)
    gate = lda.decide(found.baseline, found.alternatives, tight)
    assert not gate.passed and best.name in gate.blocking
    assert f"alternative {best.name!r}" in gate.message
    assert "approval-rate ratio" in gate.message
    # the AUC tolerance binds too: an alternative outside it never blocks
    strict_auc = replace(tight, auc_tolerance=-1.0)
    assert lda.decide(found.baseline, found.alternatives, strict_auc).passed


def test_unexplainable_alternatives_block_only_when_configured(setup: dict[str, Any]) -> None:
    found = setup["search"]
    eg = next(r for r in found.alternatives if not r.explainable)
    better = replace(eg, worst=1.0, metrics={**eg.metrics, "auc": 1.0})
    loose = replace(CONFIG, fairness_tolerance=0.0)
    assert lda.decide(found.baseline, [better], loose).passed
    gate = lda.decide(found.baseline, [better], replace(loose, consider="all"))
    assert not gate.passed and gate.blocking == (eg.name,)


def test_documents_and_picture(setup: dict[str, Any]) -> None:
    found = setup["search"]
    doc = found.to_dict()
    assert doc["frontier"] == [r.name for r in found.results if r.on_frontier]
    metrics = found.metrics()
    assert metrics["gate_passed"] == 1.0 and metrics["model.auc"] == found.baseline.metrics["auc"]
    assert all(math.isfinite(v) for v in metrics.values())
    rows = found.plot_rows()
    assert [r["model"] for r in rows] == [r.name for r in found.results]
    svg = lda.frontier_svg(doc)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    marks = root.findall(f"{ns}circle") + root.findall(f"{ns}rect")[1:]  # first rect: background
    assert len(marks) == len(found.results)
    assert "without:hschool" in svg


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gate": {"measure": "accuracy"}}, "measure must be one of"),
        ({"gate": {"consider": "some"}}, "consider must be"),
        ({"gate": {"fairness_tolerance": -1}}, "fairness_tolerance must be"),
        ({"gate": {"fairness_tolerance": math.nan}}, "fairness_tolerance must be"),
        ({"gate": {"auc_tolerance": math.inf}}, "auc_tolerance must be"),
        ({"reductions": [5]}, "alternatives.reductions holds 5: each is a mapping"),
        ({"reductions": [{"method": "magic", "constraint": "demographic_parity"}]}, "method"),
        ({"reductions": [{"method": "grid_search", "constraint": "luck"}]}, "constraint"),
        ({"workers": -1}, "workers must be a whole number >= 0"),
        ({"workers": 1.5}, "workers must be a whole number >= 0"),
        ({"workers": "2"}, "workers must be a whole number >= 0"),
        ({"workers": True}, "workers must be a whole number >= 0"),
    ],
)
def test_bad_configuration_is_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lda.AlternativesConfig.from_params(params)


def test_measure_direction() -> None:
    assert lda._fairer(0.9, 0.8, "approval_ratio") == pytest.approx(0.1)
    assert lda._fairer(0.05, 0.1, "equalized_odds_difference") == pytest.approx(0.05)
    assert np.isnan(lda._fairer(math.nan, 0.1, "equalized_odds_difference"))


def _by_name(candidate_name: str, spec: Any) -> lda.Candidate:
    return next(c for c in lda.candidates(spec, PARAMS, CONFIG) if c.name == candidate_name)


def test_a_reduction_fitted_on_encoded_rows_is_the_whole_pipeline_refitted(
    setup: dict[str, Any],
) -> None:
    """The reductions fit the preprocessing once and reweight only the classifier: the scores
    must be exactly those of fairlearn refitting the whole pipeline with the weights routed to
    the classifier, as the search used to.
    """
    spec, train_frame, test = setup["spec"], setup["train"], setup["test"]
    x_train, y_train = model_inputs(train_frame, spec), spec.labels(train_frame)
    x_test = model_inputs(test, spec)
    groups = spec.sensitive_frame(train_frame).astype(str).agg("|".join, axis=1)
    rows = lda._Rows.of(spec, train_frame, test)

    grid = _by_name("gs:demographic_parity:0.01", spec)
    whole = GridSearch(
        build_pipeline(spec, PARAMS),
        DemographicParity(difference_bound=0.01),
        grid_size=7,
        sample_weight_name="clf__sample_weight",
    )
    with lda._quiet_fairlearn():
        whole.fit(x_train, y_train, sensitive_features=groups)
        ours, explainable, _ = lda._fit(grid, spec, rows, CONFIG)
    best = whole.predictors_[whole.best_idx_]
    expected, _ = compile_pipeline(best, spec, train_frame, PARAMS).score_frame(x_test)
    assert explainable
    np.testing.assert_array_equal(ours, expected)

    mixed = _by_name("eg:demographic_parity:0.02", spec)
    whole_eg = ExponentiatedGradient(
        build_pipeline(spec, PARAMS),
        DemographicParity(difference_bound=0.02),
        eps=0.02,
        max_iter=CONFIG.max_iter,
        sample_weight_name="clf__sample_weight",
    )
    with lda._quiet_fairlearn():
        whole_eg.fit(x_train, y_train, sensitive_features=groups)
        ours_eg, explainable_eg, _ = lda._fit(mixed, spec, rows, CONFIG)
    assert not explainable_eg
    np.testing.assert_array_equal(ours_eg, whole_eg._pmf_predict(x_test)[:, 1])


def test_alternatives_sharing_the_encoded_rows_are_the_whole_pipeline_fitted(
    setup: dict[str, Any],
) -> None:
    """Every alternative shares one fitted preprocessing per set of inputs: its scores and its
    explainability must be exactly those of fitting its whole pipeline on the training rows.
    """
    spec, train_frame, test = setup["spec"], setup["train"], setup["test"]
    rows = lda._Rows.of(spec, train_frame, test)
    tried = [c for c in lda.candidates(spec, PARAMS, CONFIG) if c.reduction is None]
    assert {c.kind for c in tried} == {"regularisation", "drop"}
    for candidate in tried:
        sub = lda._subspec(spec, candidate.inputs)
        whole = build_pipeline(sub, candidate.params).fit(
            model_inputs(train_frame, sub), sub.labels(train_frame)
        )
        scorecard = compile_pipeline(whole, sub, train_frame, candidate.params)
        expected, _ = scorecard.score_frame(model_inputs(test, sub))
        ours, explainable, why_not = lda._fit(candidate, spec, rows, CONFIG)
        np.testing.assert_array_equal(ours, expected, err_msg=candidate.name)
        assert explainable, (candidate.name, why_not)


def test_group_labels_are_the_attributes_joined(setup: dict[str, Any]) -> None:
    spec, frame = setup["spec"], setup["train"]
    expected = spec.sensitive_frame(frame).astype(str).agg("|".join, axis=1)
    got = lda._groups(spec, frame)
    assert got.index.equals(frame.index)
    assert got.tolist() == expected.tolist()
    assert len(set(got)) > 2  # an intersection, not one attribute


def test_the_search_does_not_depend_on_how_many_workers_run_it(setup: dict[str, Any]) -> None:
    spec = setup["spec"]
    small = replace(CONFIG, C=(0.01,), drop=(), reductions=CONFIG.reductions[:1])
    documents = [
        lda.search(
            spec=spec,
            train=setup["train"],
            test=setup["test"],
            baseline_scores=setup["scores"],
            params=PARAMS,
            config=replace(small, workers=workers),
            settings=SETTINGS,
        ).to_dict()
        for workers in (1, 2)
    ]
    assert documents[0] == documents[1]
    assert [a["name"] for a in documents[0]["alternatives"]] == [
        "C=0.01",
        "without:unemp",
        "without:hschool",
        "gs:demographic_parity:0.01",
    ]
