"""The fitted pipeline compiled to its coefficients: fast, exact, explainable scoring.

A logistic model's log-odds is a sum over features. Compiling the fitted scikit-learn pipeline
(imputation, scaling, one-hot encoding, coefficients) into plain numbers lets one application be
scored with its explanation in microseconds, where ``Pipeline.predict_proba`` on a one-row
DataFrame costs milliseconds (DESIGN §6).

Explanation: each feature's contribution is its term in the log-odds minus that term's average
over the training data, so contributions say how this applicant differs from the average one,
and ``base_value + sum(contributions) == logit(score)`` exactly (up to float rounding).

Principal reasons (Regulation B's adverse-action reasons) belong to adverse outcomes only: they
are the features that raised the probability of the adverse outcome most, in words. A favorable
outcome has none; it carries its **main factors** instead, named as such: the features that
lowered the probability of the adverse outcome most, with their plain label. The same scorer
serves decisions and replays them.

A reason is said as the spec words it only where the fitted model agrees with those words
(:func:`worded_reason`): a spec that says "too high" of a feature whose fitted weight makes
*low* values raise the score would otherwise tell an applicant the opposite of what the model
did; for a categorical feature, the levels the spec's words do not describe get words of their
own (``value_reasons``). Nor is an input the applicant left out described as if given: the
model scored the missing value as the training median (or its missing category), and the
reason, or the main factor, says the input was not provided (``missing_reasons``,
``missing_factors``). The words are fixed when the pipeline is compiled and stored with the
scorecard (format 2), so every decision and its replay say the same thing; a scorecard of
format 1, compiled before, keeps the words it was registered with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from governance.core.dataset import DatasetSpec, Feature
from governance.core.training import MISSING, TrainParams, model_inputs

FORMAT = "governance.scorecard/2"
FORMATS = ("governance.scorecard/1", FORMAT)  # 1: no per-input words
GIVEN: Any = object()  # "an input was given": the words of a feature without its value
ERR_UNKNOWN_FEATURE = "unknown feature {name!r}; the model takes {expected}"
ERR_MISSING_FEATURE = "missing feature {name!r}"
ERR_CATEGORY = "feature {name!r}: {value!r} is not one of {allowed}"
ERR_NUMBER = "feature {name!r}: expected a finite number, got {value!r}"
ERR_NULL = "feature {name!r} must not be null"
ERR_RANGE = "feature {name!r}: value too large to score"


@dataclass(frozen=True)
class Explanation:
    """Why a score is what it is, in log-odds."""

    base_value: float
    contributions: dict[str, float]
    logit: float

    def to_dict(self) -> dict[str, Any]:
        """The explanation as a JSON-ready document."""
        return {
            "link": "logit",
            "base_value": self.base_value,
            "contributions": self.contributions,
            "logit": self.logit,
        }


@dataclass(frozen=True)
class ScoredFrame:
    """Many scored applications as arrays: row ``i`` is what :meth:`Scorecard.conclude` gives.

    Attributes
    ----------
    logits, scores
        Log-odds and probabilities of the adverse outcome, shape ``(n,)``.
    adverse
        Whether each score is at or above the threshold, shape ``(n,)``.
    reasons
        Column indexes (into ``order``) of each adverse row's principal reasons, most adverse
        first, shape ``(n, reason_count)``; ``-1`` pads rows with fewer (favorable rows: all).
    factors
        Column indexes of each favorable row's main factors, most favorable first, same shape;
        ``-1`` pads (adverse rows: all).
    """

    logits: np.ndarray
    scores: np.ndarray
    adverse: np.ndarray
    reasons: np.ndarray
    factors: np.ndarray


@dataclass(frozen=True)
class Scored:
    """One scored application."""

    score: float
    outcome: str
    adverse: bool
    explanation: Explanation
    reasons: list[dict[str, Any]]
    factors: list[dict[str, Any]]


def _left_out(value: Any) -> bool:
    """Whether an input is scored as missing: ``None``, or the imputer's category itself."""
    return value is None or (isinstance(value, str) and value == MISSING)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Scorecard:
    """A compiled logistic scorecard. Build with :func:`compile_pipeline`."""

    intercept: float
    numeric: dict[str, dict[str, float]]  # name -> fill, mean, scale, weight, reference
    categorical: dict[str, dict[str, Any]]  # name -> weights {category: w}, reference
    order: tuple[str, ...]
    threshold: float
    reasons: dict[str, str]
    reason_count: int
    outcomes: dict[str, str]
    nullable: frozenset[str] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)  # plain words per feature
    format: str = FORMAT
    # format 2: the principal-reason words of a nullable feature the caller left out, of the
    # categories the spec's words do not describe, and the main-factor words of an input left out
    missing_reasons: dict[str, str] = field(default_factory=dict)
    value_reasons: dict[str, dict[str, str]] = field(default_factory=dict)
    missing_factors: dict[str, str] = field(default_factory=dict)

    @cached_property
    def base_value(self) -> float:
        """The average applicant's log-odds: the intercept plus every term's training mean."""
        refs = [v["reference"] for v in self.numeric.values()]
        refs += [v["reference"] for v in self.categorical.values()]
        return self.intercept + math.fsum(refs)

    # -- one application -------------------------------------------------------------------
    def check(self, features: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` saying what is wrong with one application's features."""
        for name in features:
            if name not in self.numeric and name not in self.categorical:
                raise ValueError(ERR_UNKNOWN_FEATURE.format(name=name, expected=list(self.order)))
        for name in self.order:
            if name not in features:
                raise ValueError(ERR_MISSING_FEATURE.format(name=name))
            if features[name] is None and name not in self.nullable:
                raise ValueError(ERR_NULL.format(name=name))
        for name in self.numeric:
            value = features[name]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(ERR_NUMBER.format(name=name, value=value))
            try:
                x = float(value)
            except OverflowError:
                raise ValueError(ERR_RANGE.format(name=name)) from None
            if not math.isfinite(x):
                raise ValueError(ERR_NUMBER.format(name=name, value=value))
            n = self.numeric[name]
            if not math.isfinite(n["weight"] * ((x - n["mean"]) / n["scale"])):
                raise ValueError(ERR_RANGE.format(name=name))
        for name, spec in self.categorical.items():
            value = features[name]
            if value is not None and value not in spec["weights"]:
                allowed = [c for c in spec["weights"] if c != MISSING]
                raise ValueError(ERR_CATEGORY.format(name=name, value=value, allowed=allowed))

    def contributions(self, features: Mapping[str, Any]) -> dict[str, float]:
        """Per-feature contributions to the log-odds (features assumed checked)."""
        out: dict[str, float] = {}
        for name, n in self.numeric.items():
            value = features[name]
            x = n["fill"] if value is None else float(value)
            out[name] = n["weight"] * ((x - n["mean"]) / n["scale"]) - n["reference"]
        for name, c in self.categorical.items():
            value = features[name]
            out[name] = c["weights"][MISSING if value is None else value] - c["reference"]
        return out

    def score(self, features: Mapping[str, Any], *, check: bool = True) -> Scored:
        """Score one application with its explanation and principal reasons."""
        if check:
            self.check(features)
        return self.conclude(self.contributions(features), features)

    def conclude(
        self, contributions: dict[str, float], features: Mapping[str, Any] | None = None
    ) -> Scored:
        """Score, outcome and reasons from contributions: the one place they are computed.

        Batch scoring computes the contributions vectorised (element-wise, so bit-identical)
        and finishes each row here, so a batch decision replays exactly one at a time.
        ``features``, the inputs, choose the words where they depend on them (format 2).
        """
        base = self.base_value
        logit, p, adverse = self.odds(contributions)
        return Scored(
            score=p,
            outcome=self.outcomes["adverse" if adverse else "favorable"],
            adverse=adverse,
            explanation=Explanation(base, contributions, logit),
            reasons=self.principal_reasons(contributions, features) if adverse else [],
            factors=[] if adverse else self.main_factors(contributions, features),
        )

    def odds(self, contributions: dict[str, float]) -> tuple[float, float, bool]:
        """The log-odds, score and adversity of the contributions, without the words.

        :meth:`conclude`'s own arithmetic; recourse re-scores every candidate change with it.
        """
        logit = self.base_value + math.fsum(contributions.values())
        p = _sigmoid(logit)
        return logit, p, p >= self.threshold

    def principal_reasons(
        self, contributions: Mapping[str, float], features: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The features that raised the probability of the adverse outcome most, in words.

        Adverse-action reasons: :meth:`conclude` gives them on adverse outcomes only, each in
        :meth:`reason_for`'s words for the applicant's input (``features``; without them, the
        words of a given input that the spec's words describe).
        """
        raising = sorted(
            ((c, name) for name, c in contributions.items() if c > 0), key=lambda t: (-t[0], t[1])
        )
        say: Callable[[str], str] = self.reasons.__getitem__  # the words of a given input
        if features is not None and (self.missing_reasons or self.value_reasons):
            say = lambda name: self.reason_for(name, features[name])  # noqa: E731
        return [
            {"feature": name, "reason": say(name), "contribution": c}
            for c, name in raising[: self.reason_count]
        ]

    def reason_for(self, name: str, value: Any = GIVEN) -> str:
        """One feature's principal-reason words for one input ``value`` (``None``: left out;
        so is the imputer's own category, which the model scores as a missing input)."""
        if _left_out(value) and name in self.missing_reasons:
            return self.missing_reasons[name]
        by_value = self.value_reasons.get(name)
        if by_value and isinstance(value, str) and value in by_value:
            return by_value[value]
        return self.reasons[name]

    def main_factors(
        self, contributions: Mapping[str, float], features: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The features that lowered the probability of the adverse outcome most.

        What a favorable outcome carries instead of principal reasons: each with its plain
        label (not the adverse-action wording; :meth:`factor_for`), most favorable first, ties
        by name.
        """
        lowering = sorted(
            ((c, name) for name, c in contributions.items() if c < 0), key=lambda t: (t[0], t[1])
        )
        labels = self.labels
        say: Callable[[str], str] = lambda name: labels.get(name, name)  # noqa: E731  # given
        if features is not None and self.missing_factors:
            say = lambda name: self.factor_for(name, features[name])  # noqa: E731
        return [
            {"feature": name, "factor": say(name), "contribution": c}
            for c, name in lowering[: self.reason_count]
        ]

    def factor_for(self, name: str, value: Any = GIVEN) -> str:
        """One feature's main-factor words for one input ``value`` (``None``: left out)."""
        if _left_out(value) and name in self.missing_factors:
            return self.missing_factors[name]
        return self.labels.get(name, name)

    def conclude_frame(self, contrib: np.ndarray) -> ScoredFrame:
        """:meth:`conclude` for every row of a contribution matrix (columns in ``order``).

        Bit-identical to :meth:`conclude` row by row, so a batch decision replays exactly one at
        a time: each logit is ``base_value + math.fsum(row)`` and each score the same
        ``math.exp`` expression (numpy's vectorised ``exp`` may differ in the last bit), while
        the principal reasons (adverse rows) and main factors (favorable rows) are ordered for
        all rows at once (by contribution, descending among the positive ones / ascending among
        the negative ones, then by feature name).
        """
        rows = contrib.tolist()
        logits = np.asarray([self.base_value + math.fsum(row) for row in rows], dtype=np.float64)
        scores = np.asarray(list(map(_sigmoid, logits.tolist())), dtype=np.float64)
        n, k = contrib.shape
        rank = np.empty(k, dtype=np.int64)
        rank[sorted(range(k), key=lambda c: self.order[c])] = np.arange(k)
        adverse = scores >= self.threshold
        by_name = np.broadcast_to(rank, (n, k))
        reasons = self._ranked(contrib > 0, -contrib, by_name, adverse)
        factors = self._ranked(contrib < 0, contrib, by_name, ~adverse)
        return ScoredFrame(logits, scores, adverse, reasons, factors)

    def _ranked(
        self, eligible: np.ndarray, key: np.ndarray, by_name: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """Per row, the first ``reason_count`` eligible columns by ``key`` then name; -1 pads."""
        primary = np.where(eligible, key, np.inf)
        order = np.lexsort((by_name, primary), axis=-1)
        picked = order[:, : self.reason_count].astype(np.int64)
        count = np.where(rows, np.minimum(eligible.sum(axis=1), self.reason_count), 0)
        picked[np.arange(picked.shape[1])[None, :] >= count[:, None]] = -1
        return picked

    # -- many applications -----------------------------------------------------------------
    def score_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised scores and contribution matrix (columns in ``order``) for a frame."""
        columns = []
        for name in self.order:
            if name in self.numeric:
                n = self.numeric[name]
                x = frame[name].astype("float64").to_numpy(copy=True)
                x[np.isnan(x)] = n["fill"]
                columns.append(n["weight"] * ((x - n["mean"]) / n["scale"]) - n["reference"])
            else:
                c = self.categorical[name]
                values = frame[name].astype(object).where(frame[name].notna(), MISSING)
                found = pd.Index(list(c["weights"])).get_indexer(values)
                if (found < 0).any():
                    bad = values.iloc[int(np.argmax(found < 0))]
                    allowed = [k for k in c["weights"] if k != MISSING]
                    raise ValueError(ERR_CATEGORY.format(name=name, value=bad, allowed=allowed))
                weights = np.array(list(c["weights"].values()), dtype="float64")
                columns.append(weights[found] - c["reference"])
        contrib = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
        logits = self.base_value + contrib.sum(axis=1)
        return 1.0 / (1.0 + np.exp(-logits)), contrib

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The scorecard as a JSON-ready document (what the registry stores), in its format."""
        doc = {
            "format": self.format,
            "intercept": self.intercept,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "order": list(self.order),
            "threshold": self.threshold,
            "reasons": self.reasons,
            "reason_count": self.reason_count,
            "outcomes": self.outcomes,
            "nullable": sorted(self.nullable),
            "labels": self.labels,
        }
        if self.format == FORMAT:
            doc["missing_reasons"] = self.missing_reasons
            doc["value_reasons"] = self.value_reasons
            doc["missing_factors"] = self.missing_factors
        return doc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scorecard:
        """A scorecard from :meth:`to_dict`'s document."""
        if d.get("format") not in FORMATS:
            raise ValueError(f"not a {FORMAT} document (format={d.get('format')!r})")
        return cls(
            intercept=float(d["intercept"]),
            numeric={k: dict(v) for k, v in d["numeric"].items()},
            categorical={k: dict(v) for k, v in d["categorical"].items()},
            order=tuple(d["order"]),
            threshold=float(d["threshold"]),
            reasons=dict(d["reasons"]),
            reason_count=int(d["reason_count"]),
            outcomes=dict(d["outcomes"]),
            nullable=frozenset(d.get("nullable", ())),
            labels=dict(d.get("labels") or {}),
            format=d["format"],
            **_words(d),
        )


def _words(d: Mapping[str, Any]) -> dict[str, Any]:
    """A format 2 document's per-input words (format 1 has none)."""
    if d["format"] != FORMAT:
        return {}
    return {
        "missing_reasons": dict(d["missing_reasons"]),
        # written from the first format 2 on; absent in the few that came before them
        "value_reasons": {k: dict(v) for k, v in d.get("value_reasons", {}).items()},
        "missing_factors": dict(d.get("missing_factors", {})),
    }


def _capitalised(words: str) -> str:
    return words[:1].upper() + words[1:]


def adverse_values(feature: Feature, scorecard: Scorecard) -> tuple[str, ...]:
    """The values of one feature for which the fitted model raises the adverse score.

    ``("high",)`` or ``("low",)`` for a numeric feature (by its weight's sign; ``()`` for a zero
    weight); for a categorical one, the categories whose weight is above the training average
    (only those give a positive contribution). A missing input is not among them: its reason
    says it was not provided.
    """
    if feature.name in scorecard.numeric:
        w = scorecard.numeric[feature.name]["weight"]
        return ("high",) if w > 0 else ("low",) if w < 0 else ()
    c = scorecard.categorical[feature.name]
    return tuple(k for k, w in c["weights"].items() if w > c["reference"] and k != MISSING)


def worded_reason(feature: Feature, scorecard: Scorecard) -> str:
    """The principal-reason words of one feature: the spec's, unless the model contradicts them.

    The spec's ``adverse`` says which values its reason describes. When the fitted weight of a
    numeric feature has the other sign, the spec's words would be false for every applicant who
    gets them; the reason then names the feature and the side the model penalises, in its plain
    label: "Housing expenses to income ratio too low". A feature whose reason states no
    direction keeps its words, and so does a categorical one (see :func:`value_reasons`).
    """
    model = adverse_values(feature, scorecard)
    if feature.kind != "numeric" or not feature.adverse or set(model) <= set(feature.adverse):
        return feature.reason
    return f"{_capitalised(feature.words)} too {model[0]}"


def value_reasons(feature: Feature, scorecard: Scorecard) -> dict[str, str]:
    """The words of the categories the model penalises but the spec's reason does not describe.

    An applicant with such a level gets a reason naming the feature and their own level,
    "Self-employment: no", while one with a level the spec describes keeps its words.
    """
    if feature.kind != "categorical" or not feature.adverse:
        return {}
    return {
        k: f"{_capitalised(feature.words)}: {k}"
        for k in adverse_values(feature, scorecard)
        if k not in feature.adverse
    }


def catalogue(
    features: Sequence[Feature], scorecard: Scorecard
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The model card's reason-code catalogue: what decisions say of each feature, and which
    features' spec words the fitted model contradicts (with what is said instead)."""
    reasons: list[dict[str, Any]] = []
    reworded: list[dict[str, Any]] = []
    for f in features:
        words = scorecard.reasons[f.name]
        entry: dict[str, Any] = {"feature": f.name, "reason": words}
        if f.name in scorecard.missing_reasons:
            entry["missing"] = scorecard.missing_reasons[f.name]
        by_value = scorecard.value_reasons.get(f.name, {})
        if by_value:
            entry["by_value"] = dict(by_value)
        reasons.append(entry)
        said = ([words] if words != f.reason else []) + list(by_value.values())
        if said:
            reworded.append(
                {
                    "feature": f.name,
                    "kind": f.kind,
                    "spec_reason": f.reason,
                    "said": said,
                    "spec": list(f.adverse),
                    "model": list(adverse_values(f, scorecard)),
                }
            )
    return reasons, reworded


def compile_pipeline(
    pipeline: Pipeline, spec: DatasetSpec, train_frame: pd.DataFrame, params: TrainParams
) -> Scorecard:
    """Compile a fitted pipeline from :func:`governance.core.training.build_pipeline`."""
    pre = pipeline.named_steps["pre"]
    clf = pipeline.named_steps["clf"]
    coef = clf.coef_.ravel()
    names = list(pre.get_feature_names_out())
    weights = dict(zip(names, coef, strict=True))
    x_train = model_inputs(train_frame, spec)

    numeric: dict[str, dict[str, float]] = {}
    if spec.numeric:
        num = pre.named_transformers_["num"]
        fills = num.named_steps["impute"].statistics_
        scaler = num.named_steps["scale"]
        for i, name in enumerate(spec.numeric):
            w = float(weights[f"num__{name}"])
            mean, scale = float(scaler.mean_[i]), float(scaler.scale_[i])
            x = x_train[name].fillna(float(fills[i])).to_numpy()
            numeric[name] = {
                "fill": float(fills[i]),
                "mean": mean,
                "scale": scale,
                "weight": w,
                "reference": float(np.mean(w * ((x - mean) / scale))),
            }
    categorical: dict[str, dict[str, Any]] = {}
    if spec.categorical:
        onehot = pre.named_transformers_["cat"].named_steps["onehot"]
        for name, cats in zip(spec.categorical, onehot.categories_, strict=True):
            cat_weights = {str(c): float(weights[f"cat__{name}_{c}"]) for c in cats}
            observed = x_train[name].fillna(MISSING).map(cat_weights)
            categorical[name] = {"weights": cat_weights, "reference": float(observed.mean())}
    fitted = Scorecard(
        intercept=float(clf.intercept_[0]),
        numeric=numeric,
        categorical=categorical,
        order=tuple(spec.feature_names),
        threshold=params.threshold,
        reasons={f.name: f.reason for f in spec.features},
        reason_count=params.reason_count,
        outcomes=dict(spec.outcomes),
        nullable=frozenset(f.name for f in spec.features if f.nullable),
        labels={f.name: f.words for f in spec.features},
    )
    nullable = [f for f in spec.features if f.nullable]
    return replace(
        fitted,
        reasons={f.name: worded_reason(f, fitted) for f in spec.features},
        missing_reasons={f.name: f"{_capitalised(f.words)} not provided" for f in nullable},
        value_reasons={f.name: words for f in spec.features if (words := value_reasons(f, fitted))},
        missing_factors={f.name: f"{f.words} (not provided)" for f in nullable},
    )


def agreement(
    scorecard: Scorecard, pipeline: Pipeline, frame: pd.DataFrame, spec: DatasetSpec
) -> float:
    """Largest absolute difference between the scorecard's and scikit-learn's probabilities."""
    x = model_inputs(frame, spec)
    ours, _ = scorecard.score_frame(x)
    theirs = pipeline.predict_proba(x)[:, 1]
    return float(np.max(np.abs(ours - theirs))) if len(frame) else 0.0
