"""Production performance once outcomes arrive: AUC, Brier score, calibration error."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

# -- performance --------------------------------------------------------------------------


def calibration_error(y_true: npt.ArrayLike, scores: npt.ArrayLike, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins.

    ``ECE = sum_b |sum_{i in b} p_i - sum_{i in b} y_i| / n``, the same definition as the
    pipeline's held-out evaluation (:mod:`governance.core.evaluation`).
    """
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(scores, dtype="float64")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    pred = np.bincount(idx, weights=p, minlength=bins)
    obs = np.bincount(idx, weights=y, minlength=bins)
    return float(np.abs(pred - obs).sum() / len(y))


def performance(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    *,
    calibration_bins: int = 10,
) -> dict[str, Any]:
    """Production performance on the decisions whose outcome arrived.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        Observed outcome, 1 = adverse.
    scores : array-like of float
        The recorded scores (probability of the adverse outcome).
    y_pred : array-like of {0, 1}
        The effective decision, 1 = adverse.
    calibration_bins : int, default 10
        Bins of the expected calibration error.

    Returns
    -------
    dict
        ``n``, ``observed_adverse``, ``observed_adverse_rate``, ``predicted_adverse_rate``,
        ``mean_score``, ``auc`` (``None`` with one class), ``brier``, ``calibration_error``,
        ``accuracy``; all ``None`` but ``n`` when there are no rows.
    """
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(scores, dtype="float64")
    d = np.asarray(y_pred, dtype="float64")
    n = len(y)
    if n == 0:
        keys = (
            "observed_adverse",
            "observed_adverse_rate",
            "predicted_adverse_rate",
            "mean_score",
            "auc",
            "brier",
            "calibration_error",
            "accuracy",
        )
        return {"n": 0, **dict.fromkeys(keys)}
    both = len(np.unique(y)) == 2
    return {
        "n": n,
        "observed_adverse": int(y.sum()),
        "observed_adverse_rate": float(y.mean()),
        "predicted_adverse_rate": float(d.mean()),
        "mean_score": float(p.mean()),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "brier": float(np.mean((p - y) ** 2)),
        "calibration_error": calibration_error(y, p, calibration_bins),
        "accuracy": float(np.mean(d == y)),
    }
