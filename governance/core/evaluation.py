"""Held-out evaluation: discrimination, accuracy and calibration, with bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

ERR_ONE_CLASS = "evaluation needs both outcomes in the test data; got only {label}"


@dataclass(frozen=True)
class Evaluation:
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
    """Evaluate scores (probability of the adverse label 1) against held-out labels."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(scores, dtype=float)
    if len(np.unique(y)) < 2:
        raise ValueError(ERR_ONE_CLASS.format(label=np.unique(y).tolist()))
    metrics = _point(y, p, threshold, bins)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in metrics}
    for _ in range(n_bootstrap):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        for k, v in _point(y[i], p[i], threshold, bins).items():
            samples[k].append(v)
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
