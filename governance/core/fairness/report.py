"""Group fairness of a credit model's decisions: the measurement (the gate is in ``gate.py``).

The model predicts the *adverse* outcome: ``y = 1`` means deny (or bad credit) and the
favourable outcome, approval, is ``y_pred == 0``. A group's approval rate is therefore
``1 - selection_rate``. True- and false-positive rates are computed on the adverse label (1), as
fairlearn does by default.

:func:`fairness_report` disaggregates the decisions with fairlearn's :class:`MetricFrame` by each
sensitive feature and by their intersection, and summarises each grouping with three disparity
measures, each with a seeded percentile-bootstrap confidence interval:

* the approval-rate ratio (lowest group approval rate / highest; the four-fifths rule),
* the demographic-parity difference (fairlearn ``demographic_parity_difference``),
* the equalized-odds difference (fairlearn ``equalized_odds_difference``: the larger of the
  between-group TPR gap and FPR gap).

Groups with fewer than ``min_group_size`` rows are reported but left out of these summaries (and
so out of the gate). A rate that is undefined for a group (TPR for a group with no label-1 rows,
FPR for a group with no label-0 rows) is NaN in the table, never a silent 0 (fairlearn itself
returns 0 there), and a summary that depends on it is NaN.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

INTERSECTION_SEPARATOR: Final = "\u00d7"  # multiplication sign: "afam\u00d7single"
METRIC_KEY_SEPARATOR: Final = "_x_"  # "afam_x_single": MLflow metric names must be ASCII-ish

ERR_EMPTY = "y_true is empty: a fairness report needs at least one row"
ERR_NOT_1D = "{name} must be one-dimensional; got shape {shape}"
ERR_NON_BINARY = (
    "{name} must be binary (0/1 or bool, 1 = the adverse outcome); found other values: {values}"
)
ERR_LENGTH_MISMATCH = (
    "y_true, y_pred and sensitive_features must have the same number of rows; "
    "got {n_true}, {n_pred} and {n_sf}"
)
ERR_INDEX_MISMATCH = (
    "{name} has a pandas index that differs from sensitive_features.index; rows are matched "
    "by position, so align them first (e.g. .loc[sensitive_features.index])"
)
ERR_SF_NOT_FRAME = (
    "sensitive_features must be a pandas DataFrame, one column per sensitive feature; got {type}"
)
ERR_SF_NO_COLUMNS = "sensitive_features has no columns"
ERR_SF_DUPLICATE_COLUMNS = "sensitive_features has duplicate column names: {columns}"
ERR_SF_MISSING = (
    "sensitive_features has missing values ({detail}); map them to an explicit category "
    "(e.g. 'missing') so that they are measured as a group instead of silently dropped"
)
ERR_N_BOOTSTRAP = "n_bootstrap must be a positive integer; got {value!r}"
ERR_CONFIDENCE = "confidence must be strictly between 0 and 1; got {value!r}"
ERR_MIN_GROUP_SIZE = "min_group_size must be a positive integer; got {value!r}"


# Resample in chunks of at most this many row indices, so memory stays bounded for large data.
_MAX_RESAMPLE_ELEMENTS: Final = 4_000_000
# A CI from fewer finite resamples than this fraction (the rest had an undefined rate) is not
# reported: it would describe only the resamples where, say, a small group happened to have
# positives.
_MIN_FINITE_RESAMPLE_FRACTION: Final = 0.5
_SUMMARIES: Final = (
    "approval_ratio",
    "demographic_parity_difference",
    "equalized_odds_difference",
)


def _approval_rate(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Fraction of favourable decisions (``y_pred == 0``): fairlearn's selection rate of 0."""
    return float(selection_rate(y_true, y_pred, pos_label=0, sample_weight=sample_weight))


def _label_1_count(y_true: Any, y_pred: Any, sample_weight: Any = None) -> int:
    """Number of rows whose true label is the adverse outcome (1)."""
    if sample_weight is None:
        return int(np.sum(y_true))
    return int(np.sum(np.asarray(sample_weight)[np.asarray(y_true) == 1]))


def _count(y_true: Any, y_pred: Any, sample_weight: Any = None) -> int:
    """Number of rows (fairlearn's ``count``, counting each row ``sample_weight`` times)."""
    return int(count(y_true, y_pred)) if sample_weight is None else int(np.sum(sample_weight))


_TABLE_METRICS: Final = {
    "count": _count,
    "label_1_count": _label_1_count,
    "approval_rate": _approval_rate,
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "accuracy": accuracy_score,
}
_WEIGHT = "__rows"


def _distinct_rows(
    y_true: npt.NDArray[np.int8], y_pred: npt.NDArray[np.int8], sf: pd.DataFrame
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8], pd.DataFrame, npt.NDArray[np.float64]]:
    """The distinct (sensitive values, y_true, y_pred) rows, and how many rows each stands for.

    fairlearn's ``MetricFrame`` hands every group's rows to each metric through Python-level
    stacking (about 0.4 ms per 1,000 rows per metric), which made the fairness stage the slowest
    of the pipeline at a million rows. Every metric here is a ratio of counts, and fairlearn and
    scikit-learn accept the counts as ``sample_weight``: on the distinct rows (at most 4 per
    group) they compute the same integer counts and the same divisions, so the same values,
    whatever the number of rows.
    """
    frame = sf.reset_index(drop=True).assign(__y_true=y_true, __y_pred=y_pred)
    distinct = frame.groupby(list(frame.columns), sort=True, observed=True).size()
    table = distinct.reset_index(name=_WEIGHT)
    weights = table.pop(_WEIGHT).to_numpy(dtype=np.float64)
    truth = table.pop("__y_true").to_numpy(dtype=np.int8)
    pred = table.pop("__y_pred").to_numpy(dtype=np.int8)
    return truth, pred, table, weights


@dataclass(frozen=True)
class GroupingReport:
    """Fairness of the decisions for one grouping (one feature, or the intersection).

    Attributes
    ----------
    name : str
        The feature name, or for the intersection the feature names joined by a multiplication
        sign (``INTERSECTION_SEPARATOR``), e.g. ``afam\u00d7single``.
    features : tuple of str
        The sensitive features that define the groups.
    by_group : list of dict
        One row per group (from fairlearn ``MetricFrame.by_group``): ``group`` (e.g.
        ``"afam=yes, single=no"``), ``values``, ``count``, ``label_1_count``, ``label_0_count``,
        ``approval_rate``, ``selection_rate``, ``tpr``, ``fpr`` (NaN when undefined),
        ``accuracy`` and ``excluded`` (fewer than ``min_group_size`` rows).
    approval_ratio, demographic_parity_difference, equalized_odds_difference : float
        Disparities between the groups that are not excluded; NaN when undefined (fewer than two
        such groups, or a rate they depend on is undefined for one of them).
    approval_ratio_ci, demographic_parity_difference_ci, equalized_odds_difference_ci : tuple
        Percentile-bootstrap confidence intervals ``(low, high)``; NaN when unavailable.
    excluded_groups : list of str
        Groups with fewer than ``min_group_size`` rows: reported, not summarised or gated.
    """

    name: str
    features: tuple[str, ...]
    by_group: list[dict[str, Any]]
    approval_ratio: float
    approval_ratio_ci: tuple[float, float]
    demographic_parity_difference: float
    demographic_parity_difference_ci: tuple[float, float]
    equalized_odds_difference: float
    equalized_odds_difference_ci: tuple[float, float]
    excluded_groups: list[str]

    @property
    def metric_key(self) -> str:
        """The grouping's prefix in :meth:`FairnessReport.metrics` (``afam_x_single``)."""
        return METRIC_KEY_SEPARATOR.join(_slug(f) for f in self.features)


@dataclass(frozen=True)
class FairnessReport:
    """Fairness of a set of decisions: each sensitive feature, then their intersection."""

    groupings: tuple[GroupingReport, ...]
    n: int
    confidence: float
    n_bootstrap: int
    min_group_size: int = 30
    random_state: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-able data (NaN becomes ``None``)."""
        return {
            "n": self.n,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "min_group_size": self.min_group_size,
            "random_state": self.random_state,
            "groupings": [_jsonable(_grouping_dict(g)) for g in self.groupings],
        }

    def metrics(self) -> dict[str, float]:
        """Return flat metrics for ``dvc metrics`` and MLflow.

        Keys are ``<grouping>.<summary>`` (with ``_ci_low`` / ``_ci_high`` variants) and
        ``<grouping>.<group>.<rate>``, using only characters MLflow accepts, e.g.
        ``afam.approval_ratio`` or ``afam_x_single.afam-yes_single-no.approval_rate``.
        Undefined values (NaN) are left out, so the result is strict JSON; :meth:`to_dict` has
        them as ``null``.
        """
        out: dict[str, float] = {}
        for g in self.groupings:
            key = g.metric_key
            for summary in _SUMMARIES:
                low, high = getattr(g, f"{summary}_ci")
                out[f"{key}.{summary}"] = float(getattr(g, summary))
                out[f"{key}.{summary}_ci_low"] = float(low)
                out[f"{key}.{summary}_ci_high"] = float(high)
            out[f"{key}.excluded_groups"] = float(len(g.excluded_groups))
            for row in g.by_group:
                group_key = "_".join(f"{_slug(f)}-{_slug(v)}" for f, v in row["values"].items())
                for rate in ("count", "approval_rate", "tpr", "fpr"):
                    out[f"{key}.{group_key}.{rate}"] = float(row[rate])
        return {k: v for k, v in out.items() if not math.isnan(v)}


def fairness_report(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    *,
    sensitive_features: pd.DataFrame,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    random_state: int = 0,
    min_group_size: int = 30,
) -> FairnessReport:
    """Measure group fairness of binary decisions by each sensitive feature and their intersection.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, 1 = the adverse outcome (deny / bad credit), 0 = favourable. Bool allowed.
    y_pred : array-like of shape (n,)
        Decisions, same encoding (``y_pred == 0`` is an approval).
    sensitive_features : pandas.DataFrame
        One column per sensitive feature, one row per decision, matched to ``y_true`` by
        position. Values are compared as strings; missing values are rejected.
    n_bootstrap : int, default 200
        Number of bootstrap resamples (of rows) for the confidence intervals.
    confidence : float, default 0.95
        Confidence level of the percentile intervals.
    random_state : int, default 0
        Seed of the :class:`numpy.random.Generator` that draws the resamples.
    min_group_size : int, default 30
        Groups with fewer rows are reported but left out of the disparity summaries.

    Returns
    -------
    FairnessReport
        One :class:`GroupingReport` per sensitive feature, then (with more than one feature)
        one for their intersection.

    Raises
    ------
    ValueError
        On empty input, mismatched lengths or indexes, non-binary labels, missing sensitive
        values, or out-of-range parameters.
    TypeError
        If ``sensitive_features`` is not a DataFrame.
    """
    truth, pred, sf = _validate(y_true, y_pred, sensitive_features)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise ValueError(ERR_N_BOOTSTRAP.format(value=n_bootstrap))
    if not 0.0 < confidence < 1.0:
        raise ValueError(ERR_CONFIDENCE.format(value=confidence))
    _check_min_group_size(min_group_size)

    features = list(sf.columns)
    groupings = [(f,) for f in features]
    if len(features) > 1:
        groupings.append(tuple(features))

    tables = [_group_table(truth, pred, sf, g, min_group_size) for g in groupings]
    samples = _bootstrap(truth, pred, tables, n_bootstrap, np.random.default_rng(random_state))
    reports = tuple(
        _grouping_report(truth, pred, sf, table, sample, confidence)
        for table, sample in zip(tables, samples, strict=True)
    )
    return FairnessReport(
        groupings=reports,
        n=len(truth),
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        min_group_size=min_group_size,
        random_state=random_state,
    )


# --- implementation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _GroupTable:
    """One grouping's fairlearn table plus what the bootstrap needs."""

    features: tuple[str, ...]
    rows: list[dict[str, Any]]
    codes: npt.NDArray[np.int64]  # each row's group, indexing `rows`
    included: npt.NDArray[np.bool_]  # per group: at least min_group_size rows


def _check_min_group_size(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(ERR_MIN_GROUP_SIZE.format(value=value))


def _is_binary_value(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return True
    if isinstance(value, int | float | np.integer | np.floating):
        return bool(value == 0 or value == 1)  # NaN is neither
    return False


def _as_binary(arr: npt.NDArray[Any], name: str) -> npt.NDArray[np.int8]:
    if arr.dtype == np.bool_:
        return arr.astype(np.int8)
    uniques = pd.unique(arr) if arr.dtype == object else np.unique(arr)
    bad = [v for v in uniques if not _is_binary_value(v)]
    if bad:
        plain = [v.item() if isinstance(v, np.generic) else v for v in bad]
        shown = ", ".join(sorted(repr(v) for v in plain)[:5])
        raise ValueError(ERR_NON_BINARY.format(name=name, values=shown))
    return arr.astype(np.int8)


def _validate(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, sensitive_features: pd.DataFrame
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8], pd.DataFrame]:
    if not isinstance(sensitive_features, pd.DataFrame):
        raise TypeError(ERR_SF_NOT_FRAME.format(type=type(sensitive_features).__name__))
    if sensitive_features.shape[1] == 0:
        raise ValueError(ERR_SF_NO_COLUMNS)
    arrays = {"y_true": np.asarray(y_true), "y_pred": np.asarray(y_pred)}
    for name, arr in arrays.items():
        if arr.ndim != 1:
            raise ValueError(ERR_NOT_1D.format(name=name, shape=arr.shape))
    n_true, n_pred = len(arrays["y_true"]), len(arrays["y_pred"])
    if n_true == 0:
        raise ValueError(ERR_EMPTY)
    if not n_true == n_pred == len(sensitive_features):
        raise ValueError(
            ERR_LENGTH_MISMATCH.format(n_true=n_true, n_pred=n_pred, n_sf=len(sensitive_features))
        )
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        index = getattr(values, "index", None)
        if isinstance(index, pd.Index) and not index.equals(sensitive_features.index):
            raise ValueError(ERR_INDEX_MISMATCH.format(name=name))
    truth, pred = _as_binary(arrays["y_true"], "y_true"), _as_binary(arrays["y_pred"], "y_pred")

    columns = [str(c) for c in sensitive_features.columns]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValueError(ERR_SF_DUPLICATE_COLUMNS.format(columns=duplicates))
    missing = sensitive_features.isna().sum()
    if missing.any():
        detail = ", ".join(f"{c}: {k} rows" for c, k in missing.items() if k)
        raise ValueError(ERR_SF_MISSING.format(detail=detail))
    sf = pd.DataFrame(
        {str(c): sensitive_features[c].astype(str).to_numpy() for c in sensitive_features}
    )
    return truth, pred, sf


def _group_table(
    y_true: npt.NDArray[np.int8],
    y_pred: npt.NDArray[np.int8],
    sf: pd.DataFrame,
    features: tuple[str, ...],
    min_group_size: int,
) -> _GroupTable:
    truth, pred, distinct, weights = _distinct_rows(y_true, y_pred, sf[list(features)])
    frame = MetricFrame(
        metrics=_TABLE_METRICS,
        y_true=truth,
        y_pred=pred,
        sensitive_features=distinct,
        sample_params={name: {"sample_weight": weights} for name in _TABLE_METRICS},
    )
    # With several features, fairlearn lists every combination of their values, including ones
    # no row has (all-NaN rows): those are not groups.
    by_group = frame.by_group[frame.by_group["count"].notna()]
    rows: list[dict[str, Any]] = []
    for key, r in by_group.iterrows():
        values = key if isinstance(key, tuple) else (key,)
        n, n1 = int(r["count"]), int(r["label_1_count"])
        rows.append(
            {
                "group": ", ".join(f"{f}={v}" for f, v in zip(features, values, strict=True)),
                "values": {f: str(v) for f, v in zip(features, values, strict=True)},
                "count": n,
                "label_1_count": n1,
                "label_0_count": n - n1,
                "approval_rate": float(r["approval_rate"]),
                "selection_rate": float(r["selection_rate"]),
                # fairlearn (via sklearn's normalised confusion matrix) reports 0 for a rate whose
                # denominator is empty; that would look like a measured value, so make it NaN.
                "tpr": float(r["tpr"]) if n1 > 0 else math.nan,
                "fpr": float(r["fpr"]) if n - n1 > 0 else math.nan,
                "accuracy": float(r["accuracy"]),
                "excluded": n < min_group_size,
            }
        )
    if len(features) == 1:
        codes = by_group.index.get_indexer(pd.Index(sf[features[0]]))
    else:
        codes = by_group.index.get_indexer(pd.MultiIndex.from_frame(sf[list(features)]))
    assert (codes >= 0).all(), "every row belongs to a group of the MetricFrame"
    included = np.array([not row["excluded"] for row in rows], dtype=bool)
    return _GroupTable(features, rows, codes.astype(np.int64), included)


def _disparities(cells: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Approval ratio, DP difference and EO difference from confusion counts.

    ``cells`` has shape ``(..., groups, 2, 2)`` indexed ``[..., group, y_true, y_pred]``; the
    result has shape ``(..., 3)``. Any undefined rate makes the affected summary NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = cells.sum(axis=(-2, -1))
        approval = (cells[..., 0, 0] + cells[..., 1, 0]) / n
        tpr = cells[..., 1, 1] / cells[..., 1, :].sum(axis=-1)
        fpr = cells[..., 0, 1] / cells[..., 0, :].sum(axis=-1)
        low, high = approval.min(axis=-1), approval.max(axis=-1)
        ratio = low / high
        dp = high - low
        eo = np.maximum(np.ptp(tpr, axis=-1), np.ptp(fpr, axis=-1))
    return np.stack([ratio, dp, eo], axis=-1)


def _bootstrap(
    y_true: npt.NDArray[np.int8],
    y_pred: npt.NDArray[np.int8],
    tables: list[_GroupTable],
    n_bootstrap: int,
    rng: np.random.Generator,
) -> list[npt.NDArray[np.float64]]:
    """Resample rows (the same resamples for every grouping); return (n_bootstrap, 3) each."""
    n = len(y_true)
    outcome = 2 * y_true.astype(np.int64) + y_pred  # 0..3 = (y_true, y_pred)
    row_cells = [table.codes * 4 + outcome for table in tables]
    samples = [np.full((n_bootstrap, 3), np.nan) for _ in tables]
    chunk = max(1, _MAX_RESAMPLE_ELEMENTS // n)
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        idx = rng.integers(0, n, size=(size, n))
        for table, cells, out in zip(tables, row_cells, samples, strict=True):
            if table.included.sum() < 2:
                continue
            n_cells = len(table.rows) * 4
            flat = (cells[idx] + (np.arange(size) * n_cells)[:, None]).ravel()
            counts = np.bincount(flat, minlength=size * n_cells)
            counts = counts.reshape(size, len(table.rows), 2, 2)
            out[start : start + size] = _disparities(counts[:, table.included])
    return samples


def _percentile_ci(values: npt.NDArray[np.float64], confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < _MIN_FINITE_RESAMPLE_FRACTION * values.size:
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def _grouping_report(
    y_true: npt.NDArray[np.int8],
    y_pred: npt.NDArray[np.int8],
    sf: pd.DataFrame,
    table: _GroupTable,
    samples: npt.NDArray[np.float64],
    confidence: float,
) -> GroupingReport:
    included_rows = [r for r, keep in zip(table.rows, table.included, strict=True) if keep]
    ratio = dp = eo = math.nan
    if len(included_rows) >= 2:
        # Point estimates from fairlearn, on the rows of the groups that are large enough.
        mask = table.included[table.codes]
        truth, pred, groups, weights = _distinct_rows(
            y_true[mask], y_pred[mask], sf.loc[mask, list(table.features)]
        )
        approval = MetricFrame(
            metrics=_approval_rate,
            y_true=truth,
            y_pred=pred,
            sensitive_features=groups,
            sample_params={"sample_weight": weights},
        )
        ratio = float(approval.ratio())
        dp = float(
            demographic_parity_difference(
                truth, pred, sensitive_features=groups, sample_weight=weights
            )
        )
        rates_defined = all(
            r["label_1_count"] > 0 and r["label_0_count"] > 0 for r in included_rows
        )
        if rates_defined:
            eo = float(
                equalized_odds_difference(
                    truth, pred, sensitive_features=groups, sample_weight=weights
                )
            )
    cis = [_percentile_ci(samples[:, k], confidence) for k in range(3)]
    return GroupingReport(
        name=INTERSECTION_SEPARATOR.join(table.features),
        features=table.features,
        by_group=table.rows,
        approval_ratio=ratio,
        approval_ratio_ci=cis[0],
        demographic_parity_difference=dp,
        demographic_parity_difference_ci=cis[1],
        equalized_odds_difference=eo,
        equalized_odds_difference_ci=cis[2],
        excluded_groups=[r["group"] for r in table.rows if r["excluded"]],
    )


def _grouping_dict(g: GroupingReport) -> dict[str, Any]:
    return {
        "name": g.name,
        "features": list(g.features),
        "by_group": g.by_group,
        "approval_ratio": g.approval_ratio,
        "approval_ratio_ci": list(g.approval_ratio_ci),
        "demographic_parity_difference": g.demographic_parity_difference,
        "demographic_parity_difference_ci": list(g.demographic_parity_difference_ci),
        "equalized_odds_difference": g.equalized_odds_difference,
        "equalized_odds_difference_ci": list(g.equalized_odds_difference_ci),
        "excluded_groups": list(g.excluded_groups),
    }


def _jsonable(value: Any) -> Any:
    """Plain Python containers and scalars, NaN as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


_SLUG_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]+")


def _slug(text: str) -> str:
    """A metric-name-safe form of a feature name or value (``62 and over`` -> ``62_and_over``)."""
    return _SLUG_UNSAFE.sub("_", str(text)).strip("_") or "_"


__all__ = [
    "INTERSECTION_SEPARATOR",
    "METRIC_KEY_SEPARATOR",
    "FairnessReport",
    "GroupingReport",
    "fairness_report",
]
