"""Held-out evaluation against scikit-learn's own metrics."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score

from governance.core.evaluation import evaluate


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    p = rng.uniform(size=600)
    y = (rng.uniform(size=600) < p).astype(int)
    return y, p


def test_point_estimates_match_scikit_learn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    result = evaluate(y, p, threshold=0.4, n_bootstrap=50, seed=1)
    assert result.metrics["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.4), abs=1e-12)
    assert result.metrics["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    assert [c["observed"] for c in result.calibration] == pytest.approx(list(observed))
    assert [c["predicted"] for c in result.calibration] == pytest.approx(list(predicted))


def test_intervals_are_seeded_and_bracket_the_auc(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    a = evaluate(y, p, threshold=0.5, n_bootstrap=100, seed=9)
    b = evaluate(y, p, threshold=0.5, n_bootstrap=100, seed=9)
    assert a.intervals == b.intervals
    low, high = a.intervals["auc"]
    assert low < a.metrics["auc"] < high
    assert set(a.flat()) >= {"auc", "auc_ci_low", "auc_ci_high", "n"}


def test_bootstrap_metrics_equal_scikit_learn_on_each_resample() -> None:
    """The O(n) resample metrics agree with scikit-learn run on the resampled rows, ties too."""
    rng = np.random.default_rng(11)
    p = rng.integers(0, 40, size=500) / 40.0  # many tied scores
    y = (rng.uniform(size=500) < p).astype(float)
    result = evaluate(y, p, threshold=0.5, n_bootstrap=60, seed=5, bins=10)
    draws = np.random.default_rng(5)
    reference: dict[str, list[float]] = {k: [] for k in result.metrics}
    for _ in range(60):
        i = draws.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        yi, pi = y[i], p[i]
        reference["auc"].append(roc_auc_score(yi, pi))
        reference["accuracy"].append(accuracy_score(yi, pi >= 0.5))
        reference["brier"].append(brier_score_loss(yi, pi))
        reference["adverse_rate"].append(float(np.mean(pi >= 0.5)))
        b = np.minimum((pi * 10).astype(int), 9)
        gap = np.bincount(b, weights=pi, minlength=10) - np.bincount(b, weights=yi, minlength=10)
        reference["calibration_error"].append(float(np.abs(gap).sum() / len(yi)))
    for name, values in reference.items():
        low, high = np.quantile(values, 0.025), np.quantile(values, 0.975)
        assert result.intervals[name] == (low, high), name  # to the last bit


def test_one_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs both outcomes"):
        evaluate(np.zeros(10), np.linspace(0, 1, 10), threshold=0.5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_bootstrap": -1}, "evaluate.n_bootstrap must be a whole number >= 1, got -1"),
        ({"n_bootstrap": 0}, "evaluate.n_bootstrap must be a whole number >= 1"),
        ({"bins": 0}, "evaluate.calibration_bins must be a whole number >= 1, got 0"),
        ({"confidence": 1.5}, "evaluate.confidence must be between 0 and 1, got 1.5"),
        ({"confidence": 0.0}, "evaluate.confidence must be between 0 and 1"),
        ({"confidence": float("nan")}, "evaluate.confidence must be between 0 and 1"),
        ({"seed": -1}, "evaluate.seed must be a whole number >= 0, got -1"),
    ],
)
def test_evaluation_settings_out_of_range_are_named(change: dict[str, float], message: str):
    """Before, these failed deep inside numpy ("index -1 is out of bounds") or not at all
    (a confidence of 0 gave intervals of a single point)."""
    y = np.array([0, 1] * 20)
    scores = np.linspace(0.01, 0.99, 40)
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(y, scores, threshold=0.5, **change)  # type: ignore[arg-type]
