"""Production fairness: approval rates by group, and TPR / FPR with outcomes (fairlearn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from governance.core.fairness import INTERSECTION_SEPARATOR, fairness_report

# -- fairness -----------------------------------------------------------------------------


def _nan_to_none(value: float) -> float | None:
    return None if value is None or value != value else float(value)


def approval_by_group(
    y_pred: npt.ArrayLike, groups: pd.DataFrame, min_group_size: int = 30
) -> dict[str, Any]:
    """Approval rate (``y_pred == 0``) per group and the ratio lowest / highest.

    Parameters
    ----------
    y_pred : array-like of {0, 1}
        Effective decisions, 1 = adverse; rows match ``groups`` by position.
    groups : pandas.DataFrame
        One column per feature of the grouping, no missing values.
    min_group_size : int, default 30
        Smaller groups are reported but left out of the ratio.

    Returns
    -------
    dict
        ``by_group`` (``group``, ``values``, ``count``, ``approvals``, ``approval_rate``,
        ``excluded``), ``approval_ratio`` (``None`` with fewer than two included groups or no
        approvals at all) and ``excluded_groups``.
    """
    pred = np.asarray(y_pred, dtype="int64")
    features = [str(c) for c in groups.columns]
    frame = groups.astype(str).reset_index(drop=True)
    frame["_approved"] = (pred == 0).astype("int64")
    rows: list[dict[str, Any]] = []
    for key, part in frame.groupby(features, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        n = len(part)
        approvals = int(part["_approved"].sum())
        rows.append(
            {
                "group": ", ".join(f"{f}={v}" for f, v in zip(features, values, strict=True)),
                "values": {f: str(v) for f, v in zip(features, values, strict=True)},
                "count": n,
                "approvals": approvals,
                "approval_rate": approvals / n,
                "excluded": n < min_group_size,
            }
        )
    rates: list[float] = [r["approval_rate"] for r in rows if not r["excluded"]]
    ratio = min(rates) / max(rates) if len(rates) >= 2 and max(rates) > 0 else None
    return {
        "by_group": rows,
        "approval_ratio": ratio,
        "excluded_groups": [r["group"] for r in rows if r["excluded"]],
    }


def _groupings(features: Sequence[str]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [(f,) for f in features]
    if len(features) > 1:
        out.append(tuple(features))
    return out


def production_fairness(
    y_pred: pd.Series,
    sensitive: pd.DataFrame,
    y_true: pd.Series | None = None,
    *,
    min_group_size: int = 30,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fairness of production decisions by each sensitive attribute and their intersection.

    Each grouping uses the decisions whose callers supplied all of its attributes. Approval rates
    need only the decisions; with outcomes, TPR / FPR by group and the equalized-odds
    difference come from :func:`governance.core.fairness.fairness_report` (fairlearn
    ``MetricFrame``) on the decisions that also have an observed outcome.

    Parameters
    ----------
    y_pred : pandas.Series of {0, 1}
        Effective decisions (1 = adverse), indexed like ``sensitive``.
    sensitive : pandas.DataFrame
        Supplied sensitive attributes (missing where not supplied).
    y_true : pandas.Series of {0, 1} or missing, optional
        Observed outcomes (missing until they arrive), same index.
    min_group_size, n_bootstrap, seed
        As in :func:`governance.core.fairness.fairness_report`.

    Returns
    -------
    list of dict
        One per grouping: ``name``, ``features``, ``n``, ``approval`` (see
        :func:`approval_by_group`) and ``outcomes`` (``None`` without outcomes; else ``n``,
        ``by_group`` rows with ``count``, ``label_1_count``, ``approval_rate``, ``tpr``,
        ``fpr``, ``excluded``, and ``equalized_odds_difference`` with its interval).
    """
    out = []
    for grouping in _groupings(list(sensitive.columns)):
        cols = list(grouping)
        supplied = sensitive[cols].notna().all(axis=1)
        groups = sensitive.loc[supplied, cols].astype(str)
        entry: dict[str, Any] = {
            "name": INTERSECTION_SEPARATOR.join(grouping),
            "features": cols,
            "n": int(supplied.sum()),
            "approval": None,
            "outcomes": None,
        }
        if entry["n"]:
            entry["approval"] = approval_by_group(
                y_pred[supplied].to_numpy(), groups, min_group_size
            )
        if y_true is not None:
            known = supplied & y_true.notna()
            if known.any():
                report = fairness_report(
                    y_true[known].astype("int64").to_numpy(),
                    y_pred[known].astype("int64").to_numpy(),
                    sensitive_features=sensitive.loc[known, cols]
                    .astype(str)
                    .reset_index(drop=True),
                    n_bootstrap=n_bootstrap,
                    random_state=seed,
                    min_group_size=min_group_size,
                ).groupings[-1]
                low, high = report.equalized_odds_difference_ci
                entry["outcomes"] = {
                    "n": int(known.sum()),
                    "by_group": [
                        {
                            k: (_nan_to_none(r[k]) if isinstance(r[k], float) else r[k])
                            for k in (
                                "group",
                                "values",
                                "count",
                                "label_1_count",
                                "approval_rate",
                                "tpr",
                                "fpr",
                                "excluded",
                            )
                        }
                        for r in report.by_group
                    ],
                    "equalized_odds_difference": _nan_to_none(report.equalized_odds_difference),
                    "equalized_odds_difference_ci": [_nan_to_none(low), _nan_to_none(high)],
                    "approval_ratio": _nan_to_none(report.approval_ratio),
                    "excluded_groups": list(report.excluded_groups),
                }
        out.append(entry)
    return out
