"""Monitoring thresholds (``params.yaml`` ``monitoring``), the documents' schemas and the
module's error messages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

Kind = Literal["numeric", "categorical"]

PROFILE_SCHEMA: Final = "governance.monitoring.reference/1"
REPORT_SCHEMA: Final = "governance.monitoring/1"
MISSING_BIN: Final = "missing"
OTHER_BIN: Final = "other"
CHECKS: Final = ("drift", "performance", "fairness")

ERR_COUNTS_SHAPE = "reference and production counts must have the same length; got {a} and {b}"
ERR_COUNTS_NEGATIVE = "bin counts must be non-negative"
ERR_COUNTS_EMPTY = "{side} counts are all zero: PSI needs at least one value on each side"
ERR_EPSILON = "psi_epsilon must be strictly between 0 and 1; got {value!r}"
ERR_N_BINS = "psi_bins must be an integer of at least 2; got {value!r}"
ERR_PARAM_UNKNOWN = "unknown monitoring parameter(s) {names}; known: {known}"
ERR_PARAM_TYPE = "monitoring parameter {name} must be a number; got {value!r}"
ERR_PARAM_RANGE = "monitoring parameter {name} must be {rule}; got {value!r}"
MAX_PSI_BINS: Final = 1000
"""More quantile bins than this measure noise, and memory grows with them (a million: 8 GB)."""
EPSILON_SHARE: Final = 0.1
"""``psi_epsilon`` may be at most this fraction of one bin's share (``1 / psi_bins``)."""
ERR_PROFILE = "not a {schema} document (schema={found!r})"
ERR_FRAMES = "decisions, inputs and sensitive must share one index (decision ids)"
ERR_PROFILE_FEATURES = "production inputs lack the profiled feature(s) {names}"


# -- parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringParams:
    """Thresholds and settings of production monitoring (``monitoring`` in ``params.yaml``).

    Parameters
    ----------
    psi_max : float, default 0.2
        The drift check fails when any input feature's PSI exceeds this.
    score_psi_max : float, default 0.2
        The drift check fails when the score's PSI exceeds this.
    min_auc : float, default 0.7
        The performance check fails when the production AUC is below this.
    max_calibration_error : float, default 0.1
        The performance check fails when the expected calibration error exceeds this.
    min_approval_ratio : float, default 0.8
        The fairness check fails when the approval-rate ratio (lowest group / highest group) of
        any sensitive attribute is below this (the four-fifths rule).
    max_equalized_odds_difference : float, default 0.2
        With outcomes, the fairness check fails when any sensitive attribute's equalized-odds
        difference exceeds this.
    min_decisions : int, default 100
        Fewer decisions in the window: drift is reported but not judged.
    min_outcomes : int, default 100
        Fewer decisions with an outcome: performance is reported but not judged.
    min_group_size : int, default 30
        Smaller groups are reported but left out of the fairness ratios (and the check).
    psi_bins : int, default 10
        Quantile bins per numeric feature (and for the score).
    psi_epsilon : float, default 1e-4
        Floor of a bin's share in the PSI formula.
    calibration_bins : int, default 10
        Equal-width probability bins of the expected calibration error.
    n_bootstrap : int, default 200
        Bootstrap resamples for the fairness confidence intervals.
    seed : int, default 0
        Seed of those resamples.
    """

    psi_max: float = 0.2
    score_psi_max: float = 0.2
    min_auc: float = 0.7
    max_calibration_error: float = 0.1
    min_approval_ratio: float = 0.8
    max_equalized_odds_difference: float = 0.2
    min_decisions: int = 100
    min_outcomes: int = 100
    min_group_size: int = 30
    psi_bins: int = 10
    psi_epsilon: float = 1e-4
    calibration_bins: int = 10
    n_bootstrap: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(
                ERR_PARAM_RANGE.format(name=name, rule=rule, value=getattr(self, name))
            )

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(ERR_PARAM_TYPE.format(name=f.name, value=value))
            if not math.isfinite(value):  # nan passed every range check below
                raise bad(f.name, "a finite number")
            if f.type == "int" and value != int(value):
                raise bad(f.name, "an integer")
        for name in (
            "min_auc",
            "max_calibration_error",
            "min_approval_ratio",
            "max_equalized_odds_difference",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "between 0 and 1")
        for name in ("psi_max", "score_psi_max"):
            if getattr(self, name) < 0:
                raise bad(name, "non-negative")
        for name in (
            "min_decisions",
            "min_outcomes",
            "min_group_size",
            "n_bootstrap",
            "calibration_bins",
        ):
            if getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        if self.psi_bins < 2:
            raise ValueError(ERR_N_BINS.format(value=self.psi_bins))
        if self.psi_bins > MAX_PSI_BINS:
            raise bad("psi_bins", f"at most {MAX_PSI_BINS}")
        if self.seed < 0:
            raise bad("seed", "a whole number >= 0")
        # A floor near a bin's share (1 / psi_bins) flattens every bin: no drift is seen.
        ceiling = EPSILON_SHARE / self.psi_bins
        if not 0.0 < self.psi_epsilon <= ceiling:
            raise bad("psi_epsilon", f"above 0 and at most a tenth of a bin's share ({ceiling:g})")

    @classmethod
    def from_params(cls, block: Mapping[str, Any] | None) -> MonitoringParams:
        """Read the ``monitoring`` block of ``params.yaml``; missing keys take the defaults.

        Parameters
        ----------
        block : mapping or None
            ``params["monitoring"]`` (``None`` or absent: all defaults).

        Returns
        -------
        MonitoringParams

        Raises
        ------
        ValueError
            On an unknown key (a typo would otherwise silently fall back to a default) or a
            value out of range.
        """
        block = dict(block or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(block) - set(known))
        if unknown:
            raise ValueError(ERR_PARAM_UNKNOWN.format(names=unknown, known=known))
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in block:
                continue
            value = block[f.name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(ERR_PARAM_TYPE.format(name=f.name, value=value))
            if f.type == "int" and math.isfinite(value):
                if value != int(value):
                    rule = "an integer"
                    raise ValueError(ERR_PARAM_RANGE.format(name=f.name, rule=rule, value=value))
                value = int(value)
            else:
                value = float(value)
            values[f.name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain data."""
        return asdict(self)
