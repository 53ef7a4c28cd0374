"""The monitoring report of one model version: drift, performance and fairness, and its checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from governance.core.monitoring.drift import FeatureProfile, ReferenceProfile, psi_terms
from governance.core.monitoring.fairness import production_fairness
from governance.core.monitoring.params import (
    CHECKS,
    ERR_PROFILE_FEATURES,
    REPORT_SCHEMA,
    MonitoringParams,
)
from governance.core.monitoring.performance import performance
from governance.core.monitoring.production import ProductionFrames

# -- the report and its checks ------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    """One monitoring check's verdict.

    Attributes
    ----------
    name : str
        ``drift``, ``performance`` or ``fairness``.
    passed : bool
        False only when a threshold was evaluated and violated.
    evaluated : bool
        False when there was not enough data to judge (then ``passed`` is True).
    message : str
        One line for the asset check and the report.
    failures : tuple of str
        One sentence per violated threshold.
    checked : tuple of dict
        Every comparison made (what, value, threshold, passed).
    """

    name: str
    passed: bool
    evaluated: bool
    message: str
    failures: tuple[str, ...] = ()
    checked: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The check as a JSON-ready document."""
        d = asdict(self)
        d["failures"], d["checked"] = list(self.failures), list(self.checked)
        return d


@dataclass(frozen=True)
class MonitoringReport:
    """Drift, performance and fairness of one model version in production, with checks."""

    model: dict[str, Any]
    window: dict[str, Any]
    counts: dict[str, int]
    reference: dict[str, Any]
    drift: dict[str, Any]
    performance: dict[str, Any]
    fairness: list[dict[str, Any]]
    checks: dict[str, CheckOutcome]
    params: MonitoringParams
    generated_at: str = ""
    out_of_distribution: dict[str, int] = field(
        default_factory=dict
    )  # flagged decisions by feature

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as strict JSON-able data."""
        return {
            "schema": REPORT_SCHEMA,
            "generated_at": self.generated_at,
            "model": self.model,
            "window": self.window,
            "counts": self.counts,
            "out_of_distribution": self.out_of_distribution,
            "reference": self.reference,
            "drift": self.drift,
            "performance": self.performance,
            "fairness": self.fairness,
            "checks": {k: v.to_dict() for k, v in self.checks.items()},
            "params": self.params.to_dict(),
            "passed": self.passed,
        }


def _drift_entry(profile: FeatureProfile, values: pd.Series, epsilon: float) -> dict[str, Any]:
    counts = profile.bins.counts(values)
    ref = np.asarray(profile.counts, dtype="float64")
    terms = psi_terms(ref, counts, epsilon)
    n_prod = int(counts.sum())
    return {
        "feature": profile.name,
        "kind": profile.bins.kind,
        "psi": float(terms.sum()),
        "n_reference": int(ref.sum()),
        "n_production": n_prod,
        "bins": [
            {
                "bin": label,
                "reference_count": int(r),
                "reference_share": float(r / ref.sum()),
                "production_count": int(c),
                "production_share": float(c / n_prod),
                "psi_term": float(t),
            }
            for label, r, c, t in zip(profile.bins.labels, ref, counts, terms, strict=True)
        ],
    }


def drift(
    profile: ReferenceProfile, inputs: pd.DataFrame, scores: npt.ArrayLike, epsilon: float = 1e-4
) -> dict[str, Any]:
    """PSI of every profiled input and of the score (no rows: empty ``features``).

    Returns
    -------
    dict
        ``features``: one entry per input (``feature``, ``kind``, ``psi``, ``n_reference``,
        ``n_production``, ``bins`` with reference / production counts and shares and each bin's
        PSI term), and ``score``: the same for the score (``None`` without decisions).
    """
    if len(inputs) == 0:
        return {"features": [], "score": None}
    absent = [f.name for f in profile.features if f.name not in inputs.columns]
    if absent:
        raise ValueError(ERR_PROFILE_FEATURES.format(names=absent))
    return {
        "features": [_drift_entry(f, inputs[f.name], epsilon) for f in profile.features],
        "score": _drift_entry(profile.score, pd.Series(np.asarray(scores)), epsilon),
    }


def _check_drift(report_drift: dict[str, Any], n: int, params: MonitoringParams) -> CheckOutcome:
    if n < params.min_decisions:
        why = f"not evaluated: {n} decisions, fewer than min_decisions {params.min_decisions}"
        return CheckOutcome("drift", True, False, why)
    checked, failures = [], []
    entries = [(e, params.psi_max) for e in report_drift["features"]]
    entries.append((report_drift["score"], params.score_psi_max))
    for e, limit in entries:
        ok = e["psi"] <= limit
        checked.append(
            {
                "what": e["feature"],
                "metric": "psi",
                "value": e["psi"],
                "threshold": limit,
                "bound": "max",
                "passed": ok,
            }
        )
        if not ok:
            name = "the score" if e is report_drift["score"] else e["feature"]
            failures.append(f"PSI of {name} is {e['psi']:.3f}, above {limit}")
    worst = max(report_drift["features"], key=lambda e: e["psi"], default=None)
    if failures:
        message = "drift: " + "; ".join(failures)
    else:
        top = f"largest feature PSI {worst['psi']:.3f} ({worst['feature']}), " if worst else ""
        score = report_drift["score"]["psi"]
        message = f"no drift over the thresholds: {top}score PSI {score:.3f}"
    return CheckOutcome("drift", not failures, True, message, tuple(failures), tuple(checked))


def _check_performance(perf: dict[str, Any], params: MonitoringParams) -> CheckOutcome:
    n = int(perf["n"])
    if n < params.min_outcomes:
        why = (
            f"not evaluated: {n} decisions with outcomes, "
            f"fewer than min_outcomes {params.min_outcomes}"
        )
        return CheckOutcome("performance", True, False, why)
    if perf["auc"] is None:
        why = f"not evaluated: the {n} observed outcomes are all of one kind, so AUC is undefined"
        return CheckOutcome("performance", True, False, why)
    checked, failures = [], []
    for metric, limit, bound in (
        ("auc", params.min_auc, "min"),
        ("calibration_error", params.max_calibration_error, "max"),
    ):
        value = float(perf[metric])
        ok = value >= limit if bound == "min" else value <= limit
        checked.append(
            {
                "what": "production",
                "metric": metric,
                "value": value,
                "threshold": limit,
                "bound": bound,
                "passed": ok,
            }
        )
        if not ok:
            side = "below the minimum" if bound == "min" else "above the maximum"
            failures.append(f"{metric} is {value:.3f} on {n} outcomes, {side} {limit}")
    message = (
        "performance: " + "; ".join(failures)
        if failures
        else f"AUC {perf['auc']:.3f}, calibration error {perf['calibration_error']:.3f} "
        f"on {n} outcomes"
    )
    return CheckOutcome("performance", not failures, True, message, tuple(failures), tuple(checked))


def _check_fairness(groupings: list[dict[str, Any]], params: MonitoringParams) -> CheckOutcome:
    checked, failures, notes = [], [], []
    for g in groupings:
        if len(g["features"]) != 1:
            continue  # the intersection is reported, not judged (as in the pipeline's gate)
        name = g["name"]
        ratio = (g["approval"] or {}).get("approval_ratio")
        if ratio is None:
            notes.append(f"approval ratio by {name} undefined ({g['n']} decisions supplied it)")
        else:
            ok = ratio >= params.min_approval_ratio
            checked.append(
                {
                    "what": name,
                    "metric": "approval_ratio",
                    "value": ratio,
                    "threshold": params.min_approval_ratio,
                    "bound": "min",
                    "passed": ok,
                }
            )
            if not ok:
                failures.append(
                    f"approval-rate ratio by {name} is {ratio:.3f}, below the minimum "
                    f"{params.min_approval_ratio}"
                )
        eod = (g["outcomes"] or {}).get("equalized_odds_difference")
        if eod is not None:
            ok = eod <= params.max_equalized_odds_difference
            checked.append(
                {
                    "what": name,
                    "metric": "equalized_odds_difference",
                    "value": eod,
                    "threshold": params.max_equalized_odds_difference,
                    "bound": "max",
                    "passed": ok,
                }
            )
            if not ok:
                failures.append(
                    f"equalized-odds difference by {name} is {eod:.3f}, above the maximum "
                    f"{params.max_equalized_odds_difference}"
                )
    if not checked:
        supplied = any(g["n"] for g in groupings)
        why = "; ".join(notes) if supplied else "no decision came with sensitive attributes"
        return CheckOutcome("fairness", True, False, f"not evaluated: {why}")
    if failures:
        message = "fairness: " + "; ".join(failures)
    else:
        message = "; ".join(
            f"{c['metric'].replace('_', ' ')} by {c['what']} {c['value']:.3f}" for c in checked
        )
    return CheckOutcome("fairness", not failures, True, message, tuple(failures), tuple(checked))


def monitor(
    profile: ReferenceProfile,
    frames: ProductionFrames,
    params: MonitoringParams,
    *,
    adverse_outcome: str,
    model: Mapping[str, Any] | None = None,
    window: Mapping[str, Any] | None = None,
    reference_metrics: Mapping[str, Any] | None = None,
    generated_at: str = "",
) -> MonitoringReport:
    """Monitor a version's production decisions against its reference profile.

    Parameters
    ----------
    profile : ReferenceProfile
        The version's training-split bins.
    frames : ProductionFrames
        Its decisions in the window, with outcomes, overrides and sensitive attributes.
    params : MonitoringParams
        Thresholds and settings.
    adverse_outcome : str
        The outcome label that means adverse (e.g. ``"deny"``).
    model, window : mapping, optional
        Shown in the report (name, version, alias ...; since, until, purpose).
    reference_metrics : mapping, optional
        The version's held-out evaluation (auc, brier, calibration_error ...) for comparison.
    generated_at : str
        Timestamp of the run.

    Returns
    -------
    MonitoringReport
    """
    d = frames.decisions
    y_pred = (d["effective_outcome"] == adverse_outcome).astype("int64")
    observed = d["observed"]
    has_outcome = observed.notna()
    y_true = observed.where(has_outcome).map(
        lambda v: None if v is None or v != v else int(v == adverse_outcome)
    )
    perf = performance(
        y_true[has_outcome].astype("int64").to_numpy(),
        d.loc[has_outcome, "score"].to_numpy(dtype="float64"),
        y_pred[has_outcome].to_numpy(),
        calibration_bins=params.calibration_bins,
    )
    perf["reference"] = {
        k: reference_metrics[k]
        for k in ("auc", "brier", "calibration_error", "accuracy")
        if reference_metrics and k in reference_metrics
    }
    report_drift = drift(profile, frames.inputs, d["score"].to_numpy(), params.psi_epsilon)
    fair = production_fairness(
        y_pred,
        frames.sensitive,
        y_true if has_outcome.any() else None,
        min_group_size=params.min_group_size,
        n_bootstrap=params.n_bootstrap,
        seed=params.seed,
    )
    n = len(d)
    ood = d["out_of_distribution"].tolist() if "out_of_distribution" in d else []
    by_feature: dict[str, int] = {}
    for flags in ood:
        for name in flags or ():
            by_feature[str(name)] = by_feature.get(str(name), 0) + 1
    if n:
        checks = {
            "drift": _check_drift(report_drift, n, params),
            "performance": _check_performance(perf, params),
            "fairness": _check_fairness(fair, params),
        }
    else:
        none = "not evaluated: no decisions of this version in the window"
        checks = {name: CheckOutcome(name, True, False, none) for name in CHECKS}
    counts = {
        "decisions": n,
        "with_outcome": int(has_outcome.sum()),
        "with_sensitive": int(frames.sensitive.notna().any(axis=1).sum()),
        "overridden": int(d["overridden"].sum()) if n else 0,
        "adverse_effective": int(y_pred.sum()),
        "sensitive_erased": int(frames.erased),
        "out_of_distribution": int(sum(1 for flags in ood if flags)),
    }
    return MonitoringReport(
        model=dict(model or {}),
        window=dict(window or {}),
        counts=counts,
        reference={
            "rows": profile.rows,
            "n_bins": profile.n_bins,
            "epsilon": params.psi_epsilon,
            **profile.source,
        },
        drift=report_drift,
        performance=perf,
        fairness=fair,
        checks=checks,
        params=params,
        generated_at=generated_at,
        out_of_distribution=dict(sorted(by_feature.items())),
    )
