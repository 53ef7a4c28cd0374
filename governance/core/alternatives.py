"""The search for less discriminatory alternative models (LDA), its frontier and its gate.

Regulators expect a lender to look for a model that serves the same legitimate purpose with
less disparate effect, and to document the search (CFPB circulars 2022-03 and 2023-03; the
"less discriminatory alternative" of disparate-impact law). This module trains a documented,
configurable set of alternatives next to the model, evaluates every one on *the same held-out
rows* with *the same metrics and intervals* (:func:`governance.core.evaluation.evaluate`,
:func:`governance.core.fairness.fairness_report`), draws the accuracy-fairness frontier and
decides a gate:

* **regularisation**: the same scorecard with another ``C``;
* **feature subsets**: the scorecard without inputs that may act as proxies for a protected
  attribute (which ones is configuration, e.g. the industry's unemployment rate);
* **fairlearn reductions**: ``grid_search`` (:class:`fairlearn.reductions.GridSearch`: one
  reweighted logistic scorecard, deterministic) and ``exponentiated_gradient``
  (:class:`fairlearn.reductions.ExponentiatedGradient`: a randomized mixture of scorecards).
  Both use the sensitive attributes *while training* only; at prediction time they take the
  same inputs as the model. Their decisions here are ``P(adverse) >= threshold`` on the
  reduction's (mixture) probability.

No alternative ever takes a sensitive attribute as an input (:data:`ERR_SENSITIVE_INPUT`).

Only an exactly explainable alternative could replace the model: one that compiles to a
:class:`~governance.core.scorecard.Scorecard` whose contributions add up to its score and that
agrees with scikit-learn to 1e-9 on every held-out row. A mixture of scorecards is reported on
the frontier but marked not explainable, and by default it cannot block registration (a lender
could not adopt it and still state the specific reasons Regulation B requires).

The gate: registration is refused when an alternative it considers is *less discriminatory* by
more than ``fairness_tolerance`` on the configured measure (by default the worst approval-rate
ratio over the gated groupings) at an AUC no lower than the model's minus ``auc_tolerance``;
the refusal names the alternative and the numbers.
"""

from __future__ import annotations

import contextlib
import html
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from fairlearn.reductions import (
    DemographicParity,
    EqualizedOdds,
    ExponentiatedGradient,
    GridSearch,
    Moment,
    TruePositiveRateParity,
)
from pandas.errors import Pandas4Warning
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from governance.core.dataset import DatasetSpec
from governance.core.evaluation import evaluate
from governance.core.fairness import GroupingReport, fairness_report
from governance.core.scorecard import compile_pipeline
from governance.core.training import TrainParams, build_pipeline, model_inputs

Measure = Literal["approval_ratio", "equalized_odds_difference", "demographic_parity_difference"]
Method = Literal["grid_search", "exponentiated_gradient"]
MEASURES: Final[tuple[Measure, ...]] = (
    "approval_ratio",
    "equalized_odds_difference",
    "demographic_parity_difference",
)
_HIGHER_IS_FAIRER: Final = {
    "approval_ratio": True,
    "equalized_odds_difference": False,
    "demographic_parity_difference": False,
}
_LABELS: Final = {
    "approval_ratio": "approval-rate ratio",
    "equalized_odds_difference": "equalized-odds difference",
    "demographic_parity_difference": "demographic-parity difference",
}
_CONSTRAINTS: Final[dict[str, Callable[..., Moment]]] = {
    "demographic_parity": DemographicParity,
    "equalized_odds": EqualizedOdds,
    "true_positive_rate_parity": TruePositiveRateParity,
}
EXPLAINABLE_TOLERANCE: Final = 1e-9

ERR_SENSITIVE_INPUT = (
    "alternative {name!r} would take the sensitive attribute(s) {features} as input"
)
ERR_UNKNOWN_FEATURE = "alternative {name!r} drops {features}, which are not model inputs"
ERR_MEASURE = "alternatives.measure must be one of {allowed}, got {value!r}"
ERR_METHOD = (
    "alternatives.reductions: method must be grid_search or exponentiated_gradient, got {value!r}"
)
ERR_CONSTRAINT = "alternatives.reductions: constraint must be one of {allowed}, got {value!r}"
ERR_CONSIDER = "alternatives.gate.consider must be explainable or all, got {value!r}"
ERR_TOLERANCE = "alternatives.gate.{name} must be a number >= 0, got {value!r}"
ERR_REDUCTION = (
    "alternatives.reductions holds {value!r}: each is a mapping with method, constraint, bound"
)
ERR_WORKERS = "alternatives.workers must be a whole number >= 0 (0: one per core), got {value!r}"
GATE_PASSED = (
    "LDA gate passed: no {considered} alternative is less discriminatory by more than "
    "{fairness_tolerance} at an AUC within {auc_tolerance} of the model's"
)
GATE_FAILED = "LDA gate failed: {reasons}"
GATE_REASON = (
    "alternative {name!r} ({description}) is less discriminatory: {label} {alt:.3f} vs "
    "{base:.3f} ({grouping}), better by {gain:.3f} > tolerance {tolerance}, at AUC {alt_auc:.3f} "
    "vs {base_auc:.3f} (within {auc_tolerance})"
)


@dataclass(frozen=True)
class Reduction:
    """One fairlearn reduction to try (``alternatives.reductions`` in ``params.yaml``)."""

    method: Method
    constraint: str
    bound: float  # the constraint's difference bound (EG: also its eps)
    grid_size: int = 11

    @property
    def name(self) -> str:
        """The reduction's name as reports show it."""
        short = "gs" if self.method == "grid_search" else "eg"
        return f"{short}:{self.constraint}:{self.bound:g}"


@dataclass(frozen=True)
class AlternativesConfig:
    """What to try and how to judge it (``alternatives`` in ``params.yaml``).

    Attributes
    ----------
    C : tuple of float
        Other regularisation strengths for the same scorecard.
    drop : tuple of tuple of str
        Feature subsets to leave out, one alternative each, besides the dataset spec's
        ``proxies`` (inputs that may stand in for a protected attribute).
    reductions : tuple of Reduction
        fairlearn reductions to train.
    measure : {"approval_ratio", "equalized_odds_difference", "demographic_parity_difference"}
        The disparity the frontier and the gate use: its worst value over the gated groupings.
    fairness_tolerance, auc_tolerance : float
        The gate: refuse when an alternative is fairer by more than ``fairness_tolerance`` at
        an AUC no lower than the model's minus ``auc_tolerance``.
    consider : {"explainable", "all"}
        Which alternatives can block registration.
    max_iter : int
        ExponentiatedGradient's iterations.
    workers : int
        Threads that train and judge alternatives side by side (0: one per core). The results
        do not depend on it: every alternative is trained and judged on its own, with its own
        seeds.
    """

    C: tuple[float, ...] = (0.01, 0.1, 10.0)
    drop: tuple[tuple[str, ...], ...] = ()
    reductions: tuple[Reduction, ...] = ()
    measure: Measure = "approval_ratio"
    fairness_tolerance: float = 0.05
    auc_tolerance: float = 0.01
    consider: Literal["explainable", "all"] = "explainable"
    max_iter: int = 50
    workers: int = 0

    @classmethod
    def from_params(cls, p: Mapping[str, Any] | None) -> AlternativesConfig:
        """Read ``params.yaml`` → ``alternatives``, checking every value."""
        p = dict(p or {})
        gate = dict(p.get("gate") or {})
        measure = gate.get("measure", "approval_ratio")
        if measure not in MEASURES:
            raise ValueError(ERR_MEASURE.format(allowed=list(MEASURES), value=measure))
        consider = gate.get("consider", "explainable")
        if consider not in ("explainable", "all"):
            raise ValueError(ERR_CONSIDER.format(value=consider))
        tolerances = {}
        for name, default in (("fairness_tolerance", 0.05), ("auc_tolerance", 0.01)):
            value = gate.get(name, default)
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not (number and math.isfinite(value) and value >= 0):  # nan passed `< 0`
                raise ValueError(ERR_TOLERANCE.format(name=name, value=value))
            tolerances[name] = float(value)
        reductions = []
        for r in p.get("reductions") or []:
            if not isinstance(r, Mapping):
                raise ValueError(ERR_REDUCTION.format(value=r))
            if r.get("method") not in ("grid_search", "exponentiated_gradient"):
                raise ValueError(ERR_METHOD.format(value=r.get("method")))
            if r.get("constraint") not in _CONSTRAINTS:
                allowed = list(_CONSTRAINTS)
                raise ValueError(ERR_CONSTRAINT.format(allowed=allowed, value=r.get("constraint")))
            reductions.append(
                Reduction(
                    r["method"],
                    r["constraint"],
                    float(r.get("bound", 0.01)),
                    int(r.get("grid_size", 11)),
                )
            )
        workers = p.get("workers", 0)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(ERR_WORKERS.format(value=workers))
        return cls(
            C=tuple(float(c) for c in p.get("C") or ()),
            drop=tuple(tuple(str(f) for f in d) for d in p.get("drop") or ()),
            reductions=tuple(reductions),
            measure=measure,
            fairness_tolerance=tolerances["fairness_tolerance"],
            auc_tolerance=tolerances["auc_tolerance"],
            consider=consider,
            max_iter=int(p.get("max_iter", 50)),
            workers=workers,
        )


@dataclass(frozen=True)
class Candidate:
    """One alternative to train."""

    name: str
    kind: Literal["baseline", "regularisation", "drop", "reduction"]
    description: str
    params: TrainParams
    inputs: tuple[str, ...]
    reduction: Reduction | None = None


@dataclass(frozen=True)
class EvaluationSettings:
    """The evaluation and fairness settings the pipeline uses (same intervals, same rows)."""

    n_bootstrap: int = 200
    confidence: float = 0.95
    bins: int = 10
    seed: int = 0
    fairness_n_bootstrap: int = 200
    fairness_seed: int = 0
    min_group_size: int = 30
    gate_on: str = "each"


@dataclass(frozen=True)
class Result:
    """One evaluated model: metrics with intervals, fairness by group, the measure's worst."""

    name: str
    kind: str
    description: str
    inputs: tuple[str, ...]
    explainable: bool
    why_not_explainable: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    fairness: dict[str, dict[str, Any]]
    measure: str
    worst: float
    worst_grouping: str
    on_frontier: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready document."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "inputs": list(self.inputs),
            "explainable": self.explainable,
            "why_not_explainable": self.why_not_explainable,
            "metrics": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "fairness": self.fairness,
            "measure": self.measure,
            "worst": _finite_or_none(self.worst),
            "worst_grouping": self.worst_grouping,
            "on_frontier": self.on_frontier,
        }


@dataclass(frozen=True)
class Gate:
    """The LDA gate's verdict."""

    passed: bool
    message: str
    blocking: tuple[str, ...]
    checked: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The gate as a JSON-ready document."""
        return {
            "passed": self.passed,
            "message": self.message,
            "blocking": list(self.blocking),
            "checked": list(self.checked),
        }


@dataclass(frozen=True)
class Search:
    """The model and its alternatives, evaluated alike; the frontier and the gate."""

    baseline: Result
    alternatives: tuple[Result, ...]
    gate: Gate
    config: AlternativesConfig

    @property
    def results(self) -> tuple[Result, ...]:
        """Every candidate's result, in search order."""
        return (self.baseline, *self.alternatives)

    def to_dict(self) -> dict[str, Any]:
        """The search as a JSON-ready document."""
        return {
            "schema": "governance.alternatives/1",
            "measure": self.config.measure,
            "measure_label": _LABELS[self.config.measure],
            "higher_is_fairer": _HIGHER_IS_FAIRER[self.config.measure],
            "baseline": self.baseline.to_dict(),
            "alternatives": [r.to_dict() for r in self.alternatives],
            "frontier": [r.name for r in self.results if r.on_frontier],
            "gate": self.gate.to_dict(),
            "tolerances": {
                "fairness": self.config.fairness_tolerance,
                "auc": self.config.auc_tolerance,
                "consider": self.config.consider,
            },
        }

    def metrics(self) -> dict[str, float]:
        """Flat numbers for ``dvc metrics``: per model AUC and the measure, and the gate."""
        out: dict[str, float] = {
            "alternatives": float(len(self.alternatives)),
            "frontier_size": float(sum(r.on_frontier for r in self.results)),
            "gate_passed": float(self.gate.passed),
        }
        for r in self.results:
            out[f"{r.name}.auc"] = r.metrics["auc"]
            if math.isfinite(r.worst):
                out[f"{r.name}.{r.measure}"] = r.worst
        return out

    def plot_rows(self) -> list[dict[str, Any]]:
        """Rows for ``dvc plots`` (a scatter of AUC against the measure)."""
        return [
            {
                "model": r.name,
                "auc": r.metrics["auc"],
                self.config.measure: _finite_or_none(r.worst),
                "explainable": int(r.explainable),
                "frontier": int(r.on_frontier),
            }
            for r in self.results
        ]


def candidates(
    spec: DatasetSpec, params: TrainParams, config: AlternativesConfig
) -> list[Candidate]:
    """The alternatives the configuration asks for, each checked never to take a sensitive
    attribute as input.
    """
    inputs = tuple(spec.feature_names)
    out = []
    for c in config.C:
        if c == params.C:
            continue
        out.append(
            Candidate(
                f"C={c:g}",
                "regularisation",
                f"regularisation strength C={c:g} instead of {params.C:g}",
                replace(params, C=c),
                inputs,
            )
        )
    subsets = list(dict.fromkeys([*spec.proxies, *config.drop]))
    for dropped in subsets:
        unknown = sorted(set(dropped) - set(inputs))
        if unknown:
            raise ValueError(ERR_UNKNOWN_FEATURE.format(name="-".join(dropped), features=unknown))
        out.append(
            Candidate(
                "without:" + "+".join(dropped),
                "drop",
                "without " + ", ".join(dropped),
                params,
                tuple(f for f in inputs if f not in dropped),
            )
        )
    for r in config.reductions:
        method = "GridSearch" if r.method == "grid_search" else "ExponentiatedGradient"
        out.append(
            Candidate(
                r.name,
                "reduction",
                f"fairlearn {method}, {r.constraint.replace('_', ' ')} bound {r.bound:g}",
                params,
                inputs,
                r,
            )
        )
    for candidate in out:
        leaked = sorted(set(candidate.inputs) & set(spec.sensitive_features))
        if leaked:
            raise ValueError(ERR_SENSITIVE_INPUT.format(name=candidate.name, features=leaked))
    return out


def _subspec(spec: DatasetSpec, inputs: Sequence[str]) -> DatasetSpec:
    return replace(spec, features=tuple(f for f in spec.features if f.name in inputs))


@dataclass(frozen=True)
class _Rows:
    """What every alternative shares: the split's model inputs, labels and group labels, and
    the preprocessing of all the model's inputs, fitted once on the training rows (it does not
    depend on C, and only the classifier sees a reduction's weights).
    """

    x_train: pd.DataFrame
    y_train: pd.Series
    x_test: pd.DataFrame
    groups: pd.Series
    pre: Any
    encoded_train: np.ndarray
    encoded_test: np.ndarray

    @classmethod
    def of(cls, spec: DatasetSpec, train: pd.DataFrame, test: pd.DataFrame) -> _Rows:
        x_train, x_test = model_inputs(train, spec), model_inputs(test, spec)
        pre = build_pipeline(spec, TrainParams()).named_steps["pre"]
        encoded_train = pre.fit_transform(x_train)
        return cls(
            x_train,
            spec.labels(train),
            x_test,
            _groups(spec, train),
            pre,
            encoded_train,
            pre.transform(x_test),
        )

    def encoded(self, spec: DatasetSpec, sub: DatasetSpec) -> tuple[Any, np.ndarray, np.ndarray]:
        """The fitted preprocessing of ``sub``'s inputs and the encoded train and test rows."""
        if sub.feature_names == spec.feature_names:
            return self.pre, self.encoded_train, self.encoded_test
        names = sub.feature_names
        pre = build_pipeline(sub, TrainParams()).named_steps["pre"]
        return pre, pre.fit_transform(self.x_train[names]), pre.transform(self.x_test[names])


def _fit(
    candidate: Candidate, spec: DatasetSpec, rows: _Rows, config: AlternativesConfig
) -> tuple[np.ndarray, bool, str]:
    """Train one alternative; return its held-out scores and whether it is exactly explainable.

    The preprocessing (imputation, scaling, one-hot) is fitted once per set of inputs and the
    classifier, or a reduction's dozens of classifiers on reweighted rows, work on the encoded
    matrix. The fitted model is the same :func:`~governance.core.training.build_pipeline`
    pipeline, bit for bit, as fitting the whole pipeline (every time) would give
    (``tests/core/test_alternatives.py``).
    """
    sub = _subspec(spec, candidate.inputs)
    names = sub.feature_names
    x_train, x_test = rows.x_train[names], rows.x_test[names]
    pre, encoded, encoded_test = rows.encoded(spec, sub)
    classifier = build_pipeline(sub, candidate.params).named_steps["clf"]
    r = candidate.reduction
    if r is None:
        classifier.fit(encoded, rows.y_train)
    else:
        constraint = _CONSTRAINTS[r.constraint](difference_bound=r.bound)
        if r.method == "exponentiated_gradient":
            mixture = ExponentiatedGradient(
                classifier, constraint, eps=r.bound, max_iter=config.max_iter
            )
            mixture.fit(encoded, rows.y_train, sensitive_features=rows.groups)
            scores = mixture._pmf_predict(encoded_test)[:, 1]
            n = int(np.sum(np.asarray(mixture.weights_) > 0))
            return scores, False, f"a randomized mixture of {n} scorecards: no one set of reasons"
        search = GridSearch(classifier, constraint, grid_size=r.grid_size)
        search.fit(encoded, rows.y_train, sensitive_features=rows.groups)
        classifier = search.predictors_[search.best_idx_]
    pipeline = Pipeline([("pre", pre), ("clf", classifier)])
    scorecard = compile_pipeline(pipeline, sub, x_train, candidate.params)
    scores, _ = scorecard.score_frame(x_test)
    diff = float(np.max(np.abs(scores - classifier.predict_proba(encoded_test)[:, 1])))
    if diff > EXPLAINABLE_TOLERANCE:
        return scores, False, f"compiled scorecard disagrees with scikit-learn by {diff:.2g}"
    return scores, True, ""


@contextlib.contextmanager
def _quiet_fairlearn() -> Iterator[None]:
    """fairlearn 0.15 sets Series items in ways pandas 3 deprecates, and logs advice about grid
    sizes on every fit (the size is configuration): neither is news to our users.
    """
    grid_log = logging.getLogger("fairlearn.reductions._grid_search._grid_generator")
    level = grid_log.level
    grid_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=Pandas4Warning)
            yield
    finally:
        grid_log.setLevel(level)


def _groups(spec: DatasetSpec, frame: pd.DataFrame) -> pd.Series:
    """One training-time group label per row: the sensitive attributes' intersection."""
    sf = spec.sensitive_frame(frame)
    labels = sf.iloc[:, 0].astype(str)
    for name in sf.columns[1:]:
        labels = labels + "|" + sf[name].astype(str)
    return pd.Series(labels.to_numpy(dtype=object), index=frame.index)


def _worst(groupings: Sequence[GroupingReport], measure: str, gate_on: str) -> tuple[float, str]:
    gated = [g for g in groupings if gate_on == "each_and_intersection" or len(g.features) == 1]
    values = [(float(getattr(g, measure)), g.name) for g in gated]
    values = [(v, n) for v, n in values if math.isfinite(v)]
    if not values:
        return math.nan, ""
    pick = min if _HIGHER_IS_FAIRER[measure] else max
    return pick(values, key=lambda t: t[0])


def assess(
    name: str,
    kind: str,
    description: str,
    inputs: Sequence[str],
    scores: np.ndarray,
    *,
    explainable: bool,
    why_not: str,
    spec: DatasetSpec,
    test: pd.DataFrame,
    threshold: float,
    settings: EvaluationSettings,
    measure: str,
) -> Result:
    """Evaluate one model's held-out scores exactly as the evaluate and fairness stages do."""
    y = spec.labels(test).to_numpy()
    ev = evaluate(
        y,
        scores,
        threshold=threshold,
        n_bootstrap=settings.n_bootstrap,
        confidence=settings.confidence,
        bins=settings.bins,
        seed=settings.seed,
    )
    report = fairness_report(
        y,
        (scores >= threshold).astype(int),
        sensitive_features=spec.sensitive_frame(test).reset_index(drop=True),
        n_bootstrap=settings.fairness_n_bootstrap,
        random_state=settings.fairness_seed,
        min_group_size=settings.min_group_size,
    )
    worst, grouping = _worst(report.groupings, measure, settings.gate_on)
    fairness = {
        g.name: {
            m: _finite_or_none(getattr(g, m))
            for m in (
                "approval_ratio",
                "equalized_odds_difference",
                "demographic_parity_difference",
            )
        }
        | {
            f"{m}_ci": [_finite_or_none(v) for v in getattr(g, f"{m}_ci")]
            for m in ("approval_ratio", "equalized_odds_difference")
        }
        for g in report.groupings
    }
    return Result(
        name=name,
        kind=kind,
        description=description,
        inputs=tuple(inputs),
        explainable=explainable,
        why_not_explainable=why_not,
        metrics=dict(ev.metrics),
        intervals=dict(ev.intervals),
        fairness=fairness,
        measure=measure,
        worst=worst,
        worst_grouping=grouping,
    )


def search(
    *,
    spec: DatasetSpec,
    train: pd.DataFrame,
    test: pd.DataFrame,
    baseline_scores: np.ndarray,
    params: TrainParams,
    config: AlternativesConfig,
    settings: EvaluationSettings,
) -> Search:
    """Train and evaluate every alternative next to the model; the frontier and the gate.

    Parameters
    ----------
    spec
        The dataset spec (inputs and sensitive attributes).
    train, test
        The pipeline's own split: alternatives train on ``train`` and are judged on ``test``,
        the rows the model itself was judged on.
    baseline_scores
        The model's held-out scores (from its compiled scorecard).
    params
        The model's training parameters (seed, threshold, C ...).
    config
        What to try and the gate's tolerances.
    settings
        Evaluation and fairness settings, the same as the pipeline's.
    """
    common = {
        "spec": spec,
        "test": test,
        "threshold": params.threshold,
        "settings": settings,
        "measure": config.measure,
    }
    baseline = assess(
        "model",
        "baseline",
        f"the trained scorecard (C={params.C:g})",
        spec.feature_names,
        np.asarray(baseline_scores, dtype=float),
        explainable=True,
        why_not="",
        **common,
    )

    def train_and_judge(c: Candidate) -> Result:
        scores, explainable, why_not = _fit(c, spec, rows, config)
        return assess(
            c.name,
            c.kind,
            c.description,
            c.inputs,
            scores,
            explainable=explainable,
            why_not=why_not,
            **common,
        )

    # Side by side, one per core: most of a fit is scikit-learn's loss and numpy, which run
    # without the GIL. Each keeps to one BLAS thread: OpenBLAS's own threads only spin against
    # the other fits (1M applications on 2 cores: 132 s one by one with OpenBLAS's threads,
    # 121 s without them, 89 s two at a time without them). Results come in candidate order.
    todo = candidates(spec, params, config)
    rows = _Rows.of(spec, train, test)
    workers = max(1, min(config.workers or os.cpu_count() or 1, len(todo)))
    with (
        _quiet_fairlearn(),
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(workers, "alternatives") as pool,
    ):
        results = list(pool.map(train_and_judge, todo))
    marked = _mark_frontier([baseline, *results], config.measure)
    gate = decide(marked[0], marked[1:], config)
    return Search(marked[0], tuple(marked[1:]), gate, config)


def _fairer(a: float, b: float, measure: str) -> float:
    """How much fairer ``a`` is than ``b`` (positive = fairer)."""
    return a - b if _HIGHER_IS_FAIRER[measure] else b - a


def _mark_frontier(results: Sequence[Result], measure: str) -> list[Result]:
    """Mark the Pareto-optimal models: none is at least as accurate and as fair, and better in
    one of the two.
    """
    out = []
    for r in results:
        dominated = math.isnan(r.worst) or any(
            o is not r
            and math.isfinite(o.worst)
            and o.metrics["auc"] >= r.metrics["auc"]
            and _fairer(o.worst, r.worst, measure) >= 0
            and (o.metrics["auc"] > r.metrics["auc"] or _fairer(o.worst, r.worst, measure) > 0)
            for o in results
        )
        out.append(replace(r, on_frontier=not dominated))
    return out


def decide(baseline: Result, alternatives: Sequence[Result], config: AlternativesConfig) -> Gate:
    """The LDA gate (see the module docstring)."""
    reasons, blocking, checked = [], [], []
    for a in alternatives:
        considered = a.explainable or config.consider == "all"
        gain = _fairer(a.worst, baseline.worst, config.measure)
        auc_ok = a.metrics["auc"] >= baseline.metrics["auc"] - config.auc_tolerance
        blocks = considered and math.isfinite(gain) and gain > config.fairness_tolerance and auc_ok
        checked.append(
            {
                "alternative": a.name,
                "considered": considered,
                "fairness_gain": _finite_or_none(gain),
                "auc_difference": a.metrics["auc"] - baseline.metrics["auc"],
                "blocks": blocks,
            }
        )
        if blocks:
            blocking.append(a.name)
            reasons.append(
                GATE_REASON.format(
                    name=a.name,
                    description=a.description,
                    label=_LABELS[config.measure],
                    alt=a.worst,
                    base=baseline.worst,
                    grouping=f"worst by {a.worst_grouping}; model's worst by "
                    f"{baseline.worst_grouping}",
                    gain=gain,
                    tolerance=config.fairness_tolerance,
                    alt_auc=a.metrics["auc"],
                    base_auc=baseline.metrics["auc"],
                    auc_tolerance=config.auc_tolerance,
                )
            )
    if blocking:
        return Gate(
            False, GATE_FAILED.format(reasons="; ".join(reasons)), tuple(blocking), tuple(checked)
        )
    message = GATE_PASSED.format(
        considered="exactly explainable" if config.consider == "explainable" else "",
        fairness_tolerance=config.fairness_tolerance,
        auc_tolerance=config.auc_tolerance,
    ).replace("no  alternative", "no alternative")
    return Gate(True, message, (), tuple(checked))


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


# -- the frontier as a picture ----------------------------------------------------------------


def frontier_svg(doc: Mapping[str, Any], width: int = 640, height: int = 400) -> str:
    """A scatter of AUC against the fairness measure, the frontier joined, as standalone SVG.

    ``doc`` is :meth:`Search.to_dict`'s output; the picture needs nothing but it.
    """
    results = [doc["baseline"], *doc["alternatives"]]
    points = [(r, r["metrics"]["auc"], r["worst"]) for r in results if r["worst"] is not None]
    left, right, top, bottom = 60, 20, 20, 50
    xs = [p[1] for p in points] or [0.0, 1.0]
    ys = [p[2] for p in points] or [0.0, 1.0]
    x0, x1 = _padded(min(xs), max(xs))
    y0, y1 = _padded(min(ys), max(ys))

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    label = html.escape(doc.get("measure_label", doc["measure"]))
    middle = (top + height - bottom) / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="AUC against {label} for the model and its alternatives">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>',
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 12}" text-anchor="middle" '
        'font-size="12">AUC (held-out)</text>',
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {middle:.1f})">{label} (worst group)</text>',
    ]
    for t in np.linspace(x0, x1, 5):
        parts.append(
            f'<text x="{px(t):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="10">{t:.3f}</text>'
        )
    for t in np.linspace(y0, y1, 5):
        parts.append(
            f'<text x="{left - 6}" y="{py(t) + 3:.1f}" text-anchor="end" font-size="10">'
            f"{t:.3f}</text>"
        )
    frontier = sorted((p for p in points if p[0]["on_frontier"]), key=lambda p: p[1])
    if len(frontier) > 1:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for _, x, y in frontier)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>')
    for r, x, y in points:
        color = (
            "#d1242f" if r["kind"] == "baseline" else ("#1f6feb" if r["on_frontier"] else "#888")
        )
        shape = "circle" if r["explainable"] else "rect"
        if shape == "circle":
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{color}"/>')
        else:
            parts.append(
                f'<rect x="{px(x) - 4:.1f}" y="{py(y) - 4:.1f}" width="8" height="8" '
                f'fill="none" stroke="{color}" stroke-width="2"/>'
            )
        parts.append(
            f'<text x="{px(x) + 7:.1f}" y="{py(y) - 6:.1f}" font-size="10">'
            f"{html.escape(r['name'])}</text>"
        )
    parts.append(
        f'<text x="{width - right}" y="{top + 4}" text-anchor="end" font-size="10">'
        "red: the model; blue: frontier; square: not exactly explainable</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _padded(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-9:
        return lo - 0.01, hi + 0.01
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


__all__ = [
    "MEASURES",
    "AlternativesConfig",
    "Candidate",
    "EvaluationSettings",
    "Gate",
    "Reduction",
    "Result",
    "Search",
    "assess",
    "candidates",
    "decide",
    "frontier_svg",
    "search",
]
