"""Production monitoring of one model version: drift, performance and fairness (no Dagster).

Everything here is pure: it takes the version's *reference profile* (bins fitted on its training
split, see :func:`build_reference_profile`) and its production decisions as DataFrames
(:class:`ProductionFrames`, loaded from the ledger by :mod:`governance.lifecycle.monitoring`)
and returns a :class:`MonitoringReport` whose checks say whether the configured thresholds hold.

Population stability index (PSI)
--------------------------------
For a feature with bins ``i = 1..k``, reference (training) shares ``q_i`` and production shares
``p_i``::

    p'_i = max(p_i, eps)        q'_i = max(q_i, eps)
    PSI  = sum_i (p'_i - q'_i) * ln(p'_i / q'_i)

Each term is non-negative, so PSI >= 0, and it is 0 when the distributions agree bin for bin.
The floor ``eps`` (``psi_epsilon``, default 1e-4) keeps empty bins finite; shares are not
renormalised after flooring, so a bin empty on both sides contributes exactly 0. Conventional
reading: below 0.1 stable, 0.1-0.2 a moderate shift, above 0.2 a significant shift.

The bins are fitted once on the training split and stored with the profile:

* numeric features (and the score): ``psi_bins`` (default 10) quantile bins of the training
  values. The cut points are the training quantiles at ``1/k .. (k-1)/k``, de-duplicated (a
  discrete feature such as a credit-history grade gets one bin per value), intervals are closed on
  the right, ``(e_{j-1}, e_j]``, and the ends are open, ``(-inf, e_1]`` and ``(e_{k-1}, inf)``, so
  production values outside the training range still land in a bin. Missing values get their own
  bin, ``missing``.
* categorical features: one bin per category the model knows, plus ``missing`` and ``other``
  (a value the model has never seen; the decision service rejects those, so it stays empty unless
  decisions reached the ledger some other way).

Performance and fairness
------------------------
``y = 1`` is the adverse outcome (deny), as in :mod:`governance.core.fairness`. A decision's
*effective* outcome is its recorded outcome unless a reviewer overrode it (the last override
wins); production fairness is measured on effective outcomes. Performance needs ground truth:
the last ``outcome`` event of each decision. Note that outcomes are usually observed only for
approved applications (a denied applicant cannot default), so production performance describes
the approved population; the report says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import roc_auc_score

from governance.core.fairness import INTERSECTION_SEPARATOR, fairness_report
from governance.core.pages import markdown_page

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
        if not 0.0 < self.psi_epsilon < 1.0:
            raise ValueError(ERR_EPSILON.format(value=self.psi_epsilon))

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
            if f.type == "int":
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


# -- bins and PSI -------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA/NaT: a scalar that stands for "no value"."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Bins:
    """Fixed bins of one feature, fitted on the reference (training) data.

    Attributes
    ----------
    kind : {"numeric", "categorical"}
        Numeric bins are right-closed intervals between ``edges`` with open ends; categorical
        bins are ``categories`` then ``missing`` and ``other``.
    edges : tuple of float
        Numeric: the interior cut points, increasing (``k - 1`` edges make ``k`` intervals).
    categories : tuple of str
        Categorical: the known categories.
    """

    kind: Kind
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def labels(self) -> list[str]:
        """One label per bin, in bin order (the last one or two are ``missing``/``other``)."""
        if self.kind == "categorical":
            return [*self.categories, MISSING_BIN, OTHER_BIN]
        bounds = ["-inf", *(_fmt(e) for e in self.edges), "inf"]
        intervals = [
            f"({lo}, {hi}]" if hi != "inf" else f"({lo}, {hi})"
            for lo, hi in itertools.pairwise(bounds)
        ]
        return [*intervals, MISSING_BIN]

    def assign(self, values: Sequence[Any] | pd.Series) -> npt.NDArray[np.int64]:
        """The bin index of each value (missing values go to the ``missing`` bin)."""
        series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
        if self.kind == "numeric":
            x = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
            missing = ~np.isfinite(x) & ~np.isinf(x)  # NaN only: +-inf fall in the open ends
            idx = np.searchsorted(np.asarray(self.edges, dtype="float64"), x, side="left")
            idx[missing] = len(self.edges) + 1
            return idx.astype(np.int64)
        lookup = {c: i for i, c in enumerate(self.categories)}
        n = len(self.categories)
        out = np.empty(len(series), dtype=np.int64)
        for j, v in enumerate(series.tolist()):
            if _is_missing(v):
                out[j] = n
            else:
                out[j] = lookup.get(str(v), n + 1)
        return out

    def counts(self, values: Sequence[Any] | pd.Series) -> npt.NDArray[np.int64]:
        """How many values fall in each bin."""
        return np.bincount(self.assign(values), minlength=len(self.labels)).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """The bins as plain data (for the stored profile)."""
        if self.kind == "numeric":
            return {"kind": "numeric", "edges": list(self.edges), "labels": self.labels}
        return {"kind": "categorical", "categories": list(self.categories), "labels": self.labels}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Bins:
        """Inverse of :meth:`to_dict`."""
        if d["kind"] == "numeric":
            return cls("numeric", edges=tuple(float(e) for e in d["edges"]))
        return cls("categorical", categories=tuple(str(c) for c in d["categories"]))


def fit_numeric_bins(values: Sequence[Any] | pd.Series, n_bins: int = 10) -> Bins:
    """Quantile bins of the (non-missing) reference values, with open ends.

    Parameters
    ----------
    values : sequence or Series
        Reference values; NaN / ``None`` are ignored here (they have the ``missing`` bin).
    n_bins : int, default 10
        Intended number of intervals; ties (discrete features) can make fewer.

    Returns
    -------
    Bins
        Cut points at the quantiles ``1/n_bins .. (n_bins-1)/n_bins``, de-duplicated.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ValueError(ERR_N_BINS.format(value=n_bins))
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype="float64")
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Bins("numeric")
    qs = np.quantile(x, np.arange(1, n_bins) / n_bins)
    return Bins("numeric", edges=tuple(float(e) for e in np.unique(qs)))


def fit_categorical_bins(values: Sequence[Any] | pd.Series, categories: Sequence[str] = ()) -> Bins:
    """One bin per known category (the given ones, then any others seen in the reference).

    Parameters
    ----------
    values : sequence or Series
        Reference values.
    categories : sequence of str
        Categories known beforehand (e.g. the model's), kept in this order.
    """
    known = [str(c) for c in categories if str(c) not in (MISSING_BIN, OTHER_BIN)]
    seen = sorted({str(v) for v in values if not _is_missing(v)} - set(known))
    return Bins("categorical", categories=tuple(known + [s for s in seen if s != MISSING_BIN]))


def psi_terms(
    reference_counts: npt.ArrayLike, production_counts: npt.ArrayLike, epsilon: float = 1e-4
) -> npt.NDArray[np.float64]:
    """Each bin's term ``(p' - q') ln(p' / q')`` of the PSI (see the module docstring).

    Parameters
    ----------
    reference_counts, production_counts : array-like of int
        Counts per bin, same bins in the same order.
    epsilon : float, default 1e-4
        Floor of a share.

    Returns
    -------
    numpy.ndarray
        Non-negative terms; their sum is the PSI.

    Raises
    ------
    ValueError
        On different lengths, negative counts, an empty side or ``epsilon`` outside (0, 1).
    """
    q = np.asarray(reference_counts, dtype="float64")
    p = np.asarray(production_counts, dtype="float64")
    if q.shape != p.shape or q.ndim != 1:
        raise ValueError(ERR_COUNTS_SHAPE.format(a=q.shape, b=p.shape))
    if (q < 0).any() or (p < 0).any():
        raise ValueError(ERR_COUNTS_NEGATIVE)
    if not 0.0 < epsilon < 1.0:
        raise ValueError(ERR_EPSILON.format(value=epsilon))
    for side, c in (("reference", q), ("production", p)):
        if c.sum() == 0:
            raise ValueError(ERR_COUNTS_EMPTY.format(side=side))
    qs = np.maximum(q / q.sum(), epsilon)
    ps = np.maximum(p / p.sum(), epsilon)
    return np.asarray((ps - qs) * np.log(ps / qs), dtype="float64")


def psi(
    reference_counts: npt.ArrayLike, production_counts: npt.ArrayLike, epsilon: float = 1e-4
) -> float:
    """Population stability index of production counts against reference counts.

    ``PSI = sum_i (max(p_i, eps) - max(q_i, eps)) * ln(max(p_i, eps) / max(q_i, eps))`` with
    ``q_i``, ``p_i`` the reference and production shares of bin ``i``.

    Parameters
    ----------
    reference_counts, production_counts : array-like of int
        Counts per bin, same bins in the same order.
    epsilon : float, default 1e-4
        Floor of a share, so that empty bins stay finite.

    Returns
    -------
    float
        PSI >= 0.
    """
    return float(psi_terms(reference_counts, production_counts, epsilon).sum())


# -- the reference profile ----------------------------------------------------------------


@dataclass(frozen=True)
class FeatureProfile:
    """The stored bins of one feature (or the score) and the reference counts in them."""

    name: str
    bins: Bins
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.bins.to_dict(), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureProfile:
        return cls(str(d["name"]), Bins.from_dict(d), tuple(int(c) for c in d["counts"]))


@dataclass(frozen=True)
class ReferenceProfile:
    """What production is compared with: bins and counts of the training split, per version.

    Attributes
    ----------
    features : tuple of FeatureProfile
        One per model input, in the model's order.
    score : FeatureProfile
        The bins of the version's scores on its training split.
    rows : int
        Training rows.
    n_bins : int
        ``psi_bins`` the profile was fitted with.
    source : dict
        Where the reference came from (model, version, training data md5 ...).
    """

    features: tuple[FeatureProfile, ...]
    score: FeatureProfile
    rows: int
    n_bins: int
    source: dict[str, Any] = field(default_factory=dict)

    def feature(self, name: str) -> FeatureProfile:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PROFILE_SCHEMA,
            "source": dict(self.source),
            "rows": self.rows,
            "n_bins": self.n_bins,
            "features": [f.to_dict() for f in self.features],
            "score": self.score.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        if d.get("schema") != PROFILE_SCHEMA:
            raise ValueError(ERR_PROFILE.format(schema=PROFILE_SCHEMA, found=d.get("schema")))
        return cls(
            features=tuple(FeatureProfile.from_dict(f) for f in d["features"]),
            score=FeatureProfile.from_dict(d["score"]),
            rows=int(d["rows"]),
            n_bins=int(d["n_bins"]),
            source=dict(d.get("source") or {}),
        )


def build_reference_profile(
    inputs: pd.DataFrame,
    scores: npt.ArrayLike,
    *,
    numeric: Sequence[str],
    categorical: Mapping[str, Sequence[str]],
    n_bins: int = 10,
    source: Mapping[str, Any] | None = None,
) -> ReferenceProfile:
    """Fit the bins of every input and of the score on the training split.

    Parameters
    ----------
    inputs : pandas.DataFrame
        The training split's model inputs.
    scores : array-like of float
        The version's scores of those rows.
    numeric : sequence of str
        Numeric inputs (quantile bins).
    categorical : mapping of str to sequence of str
        Categorical inputs and the categories the model knows.
    n_bins : int, default 10
        Quantile bins per numeric feature and for the score.
    source : mapping, optional
        Provenance kept with the profile (model, version, data md5 ...).

    Returns
    -------
    ReferenceProfile
    """
    profiles = []
    for name in inputs.columns:
        if name in numeric:
            bins = fit_numeric_bins(inputs[name], n_bins)
        elif name in categorical:
            bins = fit_categorical_bins(inputs[name], categorical[name])
        else:
            continue
        profiles.append(FeatureProfile(str(name), bins, tuple(map(int, bins.counts(inputs[name])))))
    s = pd.Series(np.asarray(scores, dtype="float64"))
    score_bins = fit_numeric_bins(s, n_bins)
    return ReferenceProfile(
        features=tuple(profiles),
        score=FeatureProfile("score", score_bins, tuple(map(int, score_bins.counts(s)))),
        rows=len(inputs),
        n_bins=n_bins,
        source=dict(source or {}),
    )


# -- production data ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProductionFrames:
    """A model version's production decisions, as loaded from the ledger.

    Attributes
    ----------
    decisions : pandas.DataFrame
        Indexed by decision id: ``ts``, ``score``, ``outcome`` (as decided), ``effective_outcome``
        (overrides applied), ``overridden`` (bool), ``observed`` (the last recorded ground truth,
        missing until it arrives).
    inputs : pandas.DataFrame
        Same index: the recorded model inputs.
    sensitive : pandas.DataFrame
        Same index: sensitive attributes supplied by the callers, as strings; missing where a
        caller did not supply one.
    erased : int
        Decisions whose sensitive attributes were erased (GDPR art. 17) and are not counted.
    """

    decisions: pd.DataFrame
    inputs: pd.DataFrame
    sensitive: pd.DataFrame
    erased: int = 0

    def __post_init__(self) -> None:
        index = self.decisions.index
        if not (self.inputs.index.equals(index) and self.sensitive.index.equals(index)):
            raise ValueError(ERR_FRAMES)


def latest_by_decision(events: pd.DataFrame, value: str) -> pd.Series:
    """The last event's ``value`` per decision (events with ``decision_id``, ``seq``, value).

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``decision_id``, ``seq`` and ``value``.
    value : str
        The column to take.

    Returns
    -------
    pandas.Series
        Indexed by decision id.
    """
    if events.empty:
        return pd.Series(dtype=object, name=value)
    last = events.sort_values("seq").groupby("decision_id", sort=False).tail(1)
    return last.set_index("decision_id")[value]


def effective_outcomes(outcomes: pd.Series, overrides: pd.DataFrame) -> pd.Series:
    """Recorded outcomes with overrides applied: the last override of a decision wins.

    Parameters
    ----------
    outcomes : pandas.Series
        Recorded outcome per decision id.
    overrides : pandas.DataFrame
        Override reviews: ``decision_id``, ``seq``, ``outcome``. Overrides of decisions not in
        ``outcomes`` are ignored.

    Returns
    -------
    pandas.Series
        Same index as ``outcomes``.
    """
    latest = latest_by_decision(overrides, "outcome")
    latest = latest[latest.index.isin(outcomes.index)]
    out = outcomes.copy()
    out.loc[latest.index] = latest.to_numpy()
    return out


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

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as strict JSON-able data."""
        return {
            "schema": REPORT_SCHEMA,
            "generated_at": self.generated_at,
            "model": self.model,
            "window": self.window,
            "counts": self.counts,
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
    )


# -- rendering ----------------------------------------------------------------------------


def _n(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(doc: Mapping[str, Any]) -> str:
    """The report (:meth:`MonitoringReport.to_dict`) as Markdown."""
    m, w, c, p = doc["model"], doc["window"], doc["counts"], doc["params"]
    title = f"{m.get('name', '?')} version {m.get('version', '?')}"
    out = [f"# Production monitoring: {title}", ""]
    verdict = "all checks pass" if doc["passed"] else "**at least one check fails**"
    alias = f" (alias `{m['alias']}`)" if m.get("alias") else ""
    out += [
        f"Generated {doc.get('generated_at') or 'n/a'} for `{m.get('name')}` version "
        f"{m.get('version')}{alias}: {verdict}.",
        "",
        f"Window: since {w.get('since') or 'the first decision'}, until "
        f"{w.get('until') or 'now'}"
        + (f", purpose `{w['purpose']}`" if w.get("purpose") else "")
        + ".",
        "",
        "## Checks",
        "",
    ]
    out += _table(
        ["check", "result", "detail"],
        [
            [
                name,
                ("pass" if ch["passed"] else "FAIL") if ch["evaluated"] else "not evaluated",
                ch["message"],
            ]
            for name, ch in doc["checks"].items()
        ],
    )
    out += ["## Decisions", ""]
    out += _table(
        [
            "decisions",
            "with outcome",
            "with sensitive attributes",
            "overridden",
            "adverse (effective)",
            "sensitive attributes erased",
        ],
        [
            [
                c["decisions"],
                c["with_outcome"],
                c["with_sensitive"],
                c["overridden"],
                c["adverse_effective"],
                c["sensitive_erased"],
            ]
        ],
    )
    r = doc["reference"]
    out += [
        "## Input drift",
        "",
        f"Population stability index against the training split ({r.get('rows')} rows"
        + (f", data md5 `{r['train_md5']}`" if r.get("train_md5") else "")
        + f"): PSI = sum over bins of (p - q) ln(p / q), shares floored at {r.get('epsilon')}; "
        f"numeric features in up to {r.get('n_bins')} training-quantile bins with open ends, "
        "categorical features by category, each with a `missing` bin. Thresholds: feature PSI "
        f"at most {p['psi_max']}, score PSI at most {p['score_psi_max']}.",
        "",
    ]
    drift_doc = doc["drift"]
    if not drift_doc["features"]:
        out += ["No decisions in the window.", ""]
    else:
        rows = [
            [
                e["feature"],
                e["kind"],
                _n(e["psi"], 4),
                e["n_production"],
                "over" if e["psi"] > p["psi_max"] else "ok",
            ]
            for e in drift_doc["features"]
        ]
        s = drift_doc["score"]
        rows.append(
            [
                "**score**",
                "numeric",
                _n(s["psi"], 4),
                s["n_production"],
                "over" if s["psi"] > p["score_psi_max"] else "ok",
            ]
        )
        out += _table(["feature", "kind", "PSI", "decisions", "status"], rows)
        shifted = [e for e in drift_doc["features"] if e["psi"] > p["psi_max"]]
        if s["psi"] > p["score_psi_max"]:
            shifted.append(s)
        for e in shifted:
            out += [f"### Bins of {e['feature']}", ""]
            out += _table(
                ["bin", "training share", "production share", "PSI term"],
                [
                    [
                        b["bin"],
                        _n(b["reference_share"]),
                        _n(b["production_share"]),
                        _n(b["psi_term"], 4),
                    ]
                    for b in e["bins"]
                ],
            )
    perf = doc["performance"]
    ref = perf.get("reference") or {}
    out += [
        "## Production performance",
        "",
        f"On the {perf['n']} decisions whose outcome has arrived (ground truth recorded as "
        "`outcome` events). Outcomes are usually observed only for approved applications, so "
        "these figures describe that population. Thresholds: AUC at least "
        f"{p['min_auc']}, calibration error at most {p['max_calibration_error']}, judged from "
        f"{p['min_outcomes']} outcomes.",
        "",
    ]
    out += _table(
        ["metric", "production", "held-out evaluation"],
        [
            [k, _n(perf.get(k)), _n(ref.get(k))]
            for k in ("auc", "brier", "calibration_error", "accuracy")
        ]
        + [
            ["observed adverse rate", _n(perf.get("observed_adverse_rate")), ""],
            ["predicted adverse rate", _n(perf.get("predicted_adverse_rate")), ""],
        ],
    )
    out += [
        "## Production fairness",
        "",
        "Approval rates of the effective decisions (overrides applied) by each sensitive "
        "attribute that callers supplied with the decision (stored encrypted, never given to the "
        f"model); groups under {p['min_group_size']} decisions are shown but not compared. "
        f"Thresholds: approval-rate ratio at least {p['min_approval_ratio']}; with outcomes, "
        f"equalized-odds difference at most {p['max_equalized_odds_difference']}.",
        "",
    ]
    if not any(g["n"] for g in doc["fairness"]):
        out += ["No decision in the window came with sensitive attributes.", ""]
    for g in doc["fairness"]:
        if not g["n"]:
            continue
        a = g["approval"]
        o = g["outcomes"] or {}
        by_outcome = {row["group"]: row for row in o.get("by_group", [])}
        out += [
            f"### By {g['name']}",
            "",
            f"{g['n']} decisions; approval-rate ratio {_n(a['approval_ratio'])}"
            + (
                f"; with {o['n']} outcomes, equalized-odds difference "
                f"{_n(o['equalized_odds_difference'])} (interval "
                f"{_n(o['equalized_odds_difference_ci'][0])}–"
                f"{_n(o['equalized_odds_difference_ci'][1])})"
                if o
                else ""
            )
            + ".",
            "",
        ]
        out += _table(
            ["group", "decisions", "approval rate", "outcomes", "TPR", "FPR", "compared"],
            [
                [
                    row["group"],
                    row["count"],
                    _n(row["approval_rate"]),
                    by_outcome.get(row["group"], {}).get("count", 0),
                    _n(by_outcome.get(row["group"], {}).get("tpr")),
                    _n(by_outcome.get(row["group"], {}).get("fpr")),
                    "no" if row["excluded"] else "yes",
                ]
                for row in a["by_group"]
            ],
        )
    return "\n".join(out).rstrip() + "\n"


def render_html(doc: Mapping[str, Any]) -> str:
    """The report as a self-contained HTML page (no external assets, no raw HTML passed)."""
    m = doc["model"]
    title = f"Production monitoring: {m.get('name')} version {m.get('version')}"
    return markdown_page(title, render_markdown(doc))
