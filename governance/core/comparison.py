"""Champion/challenger: a new candidate against the champion on the same held-out rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from governance.core.evaluation import evaluate
from governance.core.fairness import fairness_report


def compare(
    *,
    y: np.ndarray,
    candidate_scores: np.ndarray,
    champion_scores: np.ndarray,
    sensitive: pd.DataFrame,
    threshold: float,
    champion: dict[str, str],
    n_bootstrap: int,
    seed: int,
    min_group_size: int,
) -> dict[str, Any]:
    """Evaluation and fairness of both models on the same rows, and the differences.

    Both are scored on the candidate's held-out split with the same threshold, bootstrap and
    group definitions, so every difference is the models' and not the data's.
    """
    models: dict[str, dict[str, Any]] = {}
    for role, scores in (("candidate", candidate_scores), ("champion", champion_scores)):
        ev = evaluate(y, scores, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed)
        fr = fairness_report(
            y,
            (scores >= threshold).astype(int),
            sensitive_features=sensitive,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            min_group_size=min_group_size,
        )
        models[role] = {"metrics": ev.metrics, "intervals": ev.intervals, "fairness": fr.metrics()}
    cand, champ = models["candidate"], models["champion"]
    deltas = {k: cand["metrics"][k] - champ["metrics"][k] for k in cand["metrics"]}
    fairness_deltas = {
        k: cand["fairness"][k] - champ["fairness"][k]
        for k in cand["fairness"]
        if k in champ["fairness"] and k.count(".") == 1  # summary figures, not per-group rows
    }
    agree = float(np.mean((candidate_scores >= threshold) == (champion_scores >= threshold)))
    return {
        "schema": "governance.comparison/1",
        "champion": champion,
        "rows": len(y),
        "threshold": threshold,
        "candidate": cand,
        "champion_results": champ,
        "metric_deltas": deltas,
        "fairness_deltas": fairness_deltas,
        "decision_agreement": agree,
    }
