"""The blocking fairness gate: a :class:`~governance.core.fairness.report.FairnessReport`
checked against the bounds in ``params.yaml``.

A check passes when the point estimate is within its bound (the confidence interval is reported,
not gated). A gated summary that is undefined (NaN) fails with a sentence saying why. A grouping
the gate does not cover (the intersection under ``gate_on: each``) is still measured against the
same bounds and named "not gated" when past one, never hidden behind "passed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

from governance.core.fairness.report import (
    FairnessReport,
    GroupingReport,
    _check_min_group_size,
    _jsonable,
)

GateOn = Literal["each", "each_and_intersection"]
Bound = Literal["min", "max"]
GATE_PASSED: Final = "fairness gate passed"
GATE_FAILED: Final = "fairness gate failed: {failures}"

ERR_THRESHOLD_RANGE = "{name} must be between 0 and 1; got {value!r}"
ERR_GATE_ON = "gate_on must be one of {allowed}; got {value!r}"
ERR_UNKNOWN_KEYS = "params.yaml fairness: unknown setting(s) {names}; known: {known}"
SECTION_KEYS: Final = (
    "min_approval_ratio",
    "max_equalized_odds_difference",
    "max_demographic_parity_difference",
    "gate_on",
    "min_group_size",
    "n_bootstrap",
    "seed",
)
"""The settings of ``params.yaml`` → ``fairness``: a misspelt bound would gate on nothing."""
ERR_GROUP_SIZE_MISMATCH = (
    "the report leaves out groups under {report} rows but the thresholds say {thresholds}; "
    "compute it with fairness_report(..., min_group_size={thresholds})"
)
FAIL_BELOW = "{label} by {grouping} is {value} ({ci}), below the minimum {threshold} by {gap}"
FAIL_ABOVE = "{label} by {grouping} is {value} ({ci}), above the maximum {threshold} by {gap}"
FAIL_UNDEFINED = (
    "{label} by {grouping} is undefined ({reason}), so the {bound} {threshold} cannot be verified"
)
EXCLUDED_NOTE = " [groups under {size} rows not gated: {groups}]"
NOT_GATED = (
    "{label} by {grouping} is {value}, past its bound ({comparison} {threshold}) but not gated"
    " (gate_on: {gate_on})"
)
NOT_GATED_NOTE = "; not gated: {notes}"

_GATE_ON_VALUES: Final = ("each", "each_and_intersection")
_LABELS: Final = {
    "approval_ratio": "approval-rate ratio",
    "demographic_parity_difference": "demographic-parity difference",
    "equalized_odds_difference": "equalized-odds difference",
}


@dataclass(frozen=True)
class FairnessThresholds:
    """The blocking fairness gate's bounds (``fairness`` in ``params.yaml``).

    Parameters
    ----------
    min_approval_ratio : float, default 0.8
        Minimum of (lowest group approval rate / highest group approval rate): the
        four-fifths rule.
    max_equalized_odds_difference : float, default 0.2
        Maximum fairlearn equalized-odds difference (larger of the TPR gap and the FPR gap).
    max_demographic_parity_difference : float or None, default None
        Maximum demographic-parity difference; ``None`` does not gate on it.
    gate_on : {"each", "each_and_intersection"}, default "each"
        Which groupings are gated. The intersection is always reported.
    min_group_size : int, default 30
        Groups with fewer rows are reported but not gated. Must match the report's.
    """

    min_approval_ratio: float = 0.8
    max_equalized_odds_difference: float = 0.2
    max_demographic_parity_difference: float | None = None
    gate_on: GateOn = "each"
    min_group_size: int = 30

    def __post_init__(self) -> None:
        bounds = {
            "min_approval_ratio": self.min_approval_ratio,
            "max_equalized_odds_difference": self.max_equalized_odds_difference,
            "max_demographic_parity_difference": self.max_demographic_parity_difference,
        }
        for name, value in bounds.items():
            if value is None and name == "max_demographic_parity_difference":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(ERR_THRESHOLD_RANGE.format(name=name, value=value))
            if not 0.0 <= value <= 1.0:  # nan fails too
                raise ValueError(ERR_THRESHOLD_RANGE.format(name=name, value=value))
        if self.gate_on not in _GATE_ON_VALUES:
            raise ValueError(ERR_GATE_ON.format(allowed=_GATE_ON_VALUES, value=self.gate_on))
        _check_min_group_size(self.min_group_size)


def check_section(block: dict[str, Any]) -> None:
    """Refuse a ``fairness`` setting that is not one of :data:`SECTION_KEYS`, naming it:
    ``max_demographic_parity_diference`` would leave that bound unchecked while the records
    show it."""
    unknown = sorted(set(block) - set(SECTION_KEYS))
    if unknown:
        raise ValueError(ERR_UNKNOWN_KEYS.format(names=unknown, known=list(SECTION_KEYS)))


@dataclass(frozen=True)
class GateResult:
    """Outcome of the fairness gate.

    Attributes
    ----------
    passed : bool
        Whether every gated check passed.
    failures : tuple of str
        One sentence per failed check, with the measured value, its CI, the threshold and the
        gap (or why the value is undefined).
    checked : tuple of dict
        Every check evaluated (grouping, metric, value, CI, threshold, passed, ...), JSON-able.
    """

    passed: bool
    failures: tuple[str, ...]
    checked: tuple[dict[str, Any], ...]
    not_gated: tuple[dict[str, Any], ...] = ()

    @property
    def not_gated_past_bound(self) -> tuple[str, ...]:
        """One sentence per ungated check past its bound: value, bound and "not gated"."""
        return tuple(c["sentence"] for c in self.not_gated if not c["within_bound"])

    def message(self) -> str:
        """One line for logs, asset-check descriptions and the CLI.

        A metric past its bound on a grouping the gate does not cover (the intersection under
        ``gate_on: each``) is named with the words "not gated", never hidden behind "passed".
        """
        notes = self.not_gated_past_bound
        suffix = NOT_GATED_NOTE.format(notes="; ".join(notes)) if notes else ""
        if self.passed:
            return GATE_PASSED + suffix
        return GATE_FAILED.format(failures="; ".join(self.failures)) + suffix

    def to_dict(self) -> dict[str, Any]:
        """The gate as JSON: ``passed``, ``message``, ``failures``, ``checked``, ``not_gated``."""
        return {
            "passed": self.passed,
            "message": self.message(),
            "failures": list(self.failures),
            "checked": list(self.checked),
            "not_gated": list(self.not_gated),
        }


def evaluate_gate(report: FairnessReport, thresholds: FairnessThresholds) -> GateResult:
    """Check a fairness report against the gate's thresholds.

    A check passes when the point estimate is within its bound (the confidence interval is
    reported, not gated). A check whose value is undefined (NaN) fails with a sentence saying
    why. Groups under ``min_group_size`` rows are not gated; failure sentences name them.

    Parameters
    ----------
    report : FairnessReport
        From :func:`fairness_report`, computed with ``thresholds.min_group_size``.
    thresholds : FairnessThresholds
        The bounds.

    Returns
    -------
    GateResult

    Raises
    ------
    ValueError
        If the report was computed with a different ``min_group_size``.
    """
    if report.min_group_size != thresholds.min_group_size:
        raise ValueError(
            ERR_GROUP_SIZE_MISMATCH.format(
                report=report.min_group_size, thresholds=thresholds.min_group_size
            )
        )
    bounds: list[tuple[str, float, Bound]] = [
        ("approval_ratio", thresholds.min_approval_ratio, "min"),
        ("equalized_odds_difference", thresholds.max_equalized_odds_difference, "max"),
    ]
    if thresholds.max_demographic_parity_difference is not None:
        bounds.append(
            ("demographic_parity_difference", thresholds.max_demographic_parity_difference, "max")
        )
    gated = [
        g
        for g in report.groupings
        if thresholds.gate_on == "each_and_intersection" or len(g.features) == 1
    ]
    not_gated = [
        _not_gated(g, metric, threshold, bound, thresholds.gate_on)
        for g in report.groupings
        if g not in gated
        for metric, threshold, bound in bounds
    ]
    checked: list[dict[str, Any]] = []
    failures: list[str] = []
    for g in gated:
        for metric, threshold, bound in bounds:
            value = float(getattr(g, metric))
            ci: tuple[float, float] = getattr(g, f"{metric}_ci")
            if math.isnan(value):
                passed = False
            else:
                passed = value >= threshold if bound == "min" else value <= threshold
            checked.append(
                _jsonable(
                    {
                        "grouping": g.name,
                        "features": list(g.features),
                        "metric": metric,
                        "value": value,
                        "ci": list(ci),
                        "threshold": threshold,
                        "comparison": ">=" if bound == "min" else "<=",
                        "passed": passed,
                        "excluded_groups": list(g.excluded_groups),
                    }
                )
            )
            if not passed:
                sentence = _failure_sentence(g, metric, value, ci, threshold, bound, report)
                failures.append(sentence)
    return GateResult(
        passed=not failures,
        failures=tuple(failures),
        checked=tuple(checked),
        not_gated=tuple(not_gated),
    )


def _not_gated(
    g: GroupingReport, metric: str, threshold: float, bound: Bound, gate_on: str
) -> dict[str, Any]:
    """A check the gate does not make, measured against the same bound all the same."""
    value = float(getattr(g, metric))
    within = not math.isnan(value) and (
        value >= threshold if bound == "min" else value <= threshold
    )
    comparison = ">=" if bound == "min" else "<="
    d = _decimals(value, threshold) if not math.isnan(value) else 3
    sentence = NOT_GATED.format(
        label=_LABELS[metric], grouping=g.name, value=f"{value:.{d}f}", comparison=comparison,
        threshold=f"{threshold:.{d}f}", gate_on=gate_on,
    )  # fmt: skip
    ci = list(getattr(g, f"{metric}_ci"))
    return _jsonable(
        {"grouping": g.name, "features": list(g.features), "metric": metric, "value": value,
         "ci": ci, "threshold": threshold, "comparison": comparison, "within_bound": within,
         "gated": False, "sentence": sentence}
    )  # fmt: skip


def _undefined_reason(g: GroupingReport, metric: str, min_group_size: int) -> str:
    included = [r for r in g.by_group if not r["excluded"]]
    if len(included) < 2:
        return f"only {len(included)} group(s) with at least {min_group_size} rows to compare"
    reasons: list[str] = []
    if metric == "approval_ratio":
        reasons.append("no compared group has any approvals")
    if metric == "equalized_odds_difference":
        for r in included:
            if r["label_1_count"] == 0:
                reasons.append(f"true-positive rate undefined for {r['group']}: no rows with y=1")
            if r["label_0_count"] == 0:
                reasons.append(f"false-positive rate undefined for {r['group']}: no rows with y=0")
    return " and ".join(reasons) or "not computable"


def _decimals(value: float, threshold: float) -> int:
    """Fewest decimals (3 to 6) at which the gap between value and threshold is visible."""
    for decimals in range(3, 7):
        if round(abs(threshold - value), decimals) > 0:
            return decimals
    return 6


def _failure_sentence(
    g: GroupingReport,
    metric: str,
    value: float,
    ci: tuple[float, float],
    threshold: float,
    bound: Bound,
    report: FairnessReport,
) -> str:
    label = _LABELS[metric]
    bound_word = "minimum" if bound == "min" else "maximum"
    if math.isnan(value):
        sentence = FAIL_UNDEFINED.format(
            label=label,
            grouping=g.name,
            reason=_undefined_reason(g, metric, report.min_group_size),
            bound=bound_word,
            threshold=f"{threshold:.3f}",
        )
    else:
        d = _decimals(value, threshold)
        level = f"{report.confidence * 100:g}% CI"
        ci_text = (
            f"{level} unavailable"
            if any(math.isnan(x) for x in ci)
            else f"{level} {ci[0]:.2f}\u2013{ci[1]:.2f}"
        )
        template = FAIL_BELOW if bound == "min" else FAIL_ABOVE
        sentence = template.format(
            label=label,
            grouping=g.name,
            value=f"{value:.{d}f}",
            ci=ci_text,
            threshold=f"{threshold:.{d}f}",
            gap=f"{abs(threshold - value):.{d}f}",
        )
    if g.excluded_groups:
        sizes = {r["group"]: r["count"] for r in g.by_group}
        groups = ", ".join(f"{name} (n={sizes[name]})" for name in g.excluded_groups)
        sentence += EXCLUDED_NOTE.format(size=report.min_group_size, groups=groups)
    return sentence


__all__ = [
    "GATE_FAILED",
    "GATE_PASSED",
    "Bound",
    "FairnessThresholds",
    "GateOn",
    "GateResult",
    "evaluate_gate",
]
