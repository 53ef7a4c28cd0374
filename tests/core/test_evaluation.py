"""Held-out evaluation against scikit-learn's own metrics."""

from __future__ import annotations

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


def test_one_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs both outcomes"):
        evaluate(np.zeros(10), np.linspace(0, 1, 10), threshold=0.5)
