"""Input and score drift: bins fitted on the training split, the population stability index,
the reference profile stored with a version."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from governance.core.monitoring.params import (
    ERR_COUNTS_EMPTY,
    ERR_COUNTS_NEGATIVE,
    ERR_COUNTS_SHAPE,
    ERR_EPSILON,
    ERR_N_BINS,
    ERR_PROFILE,
    MISSING_BIN,
    OTHER_BIN,
    PROFILE_SCHEMA,
    Kind,
)

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
        """The profile as a JSON-ready document."""
        return {"name": self.name, **self.bins.to_dict(), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureProfile:
        """A profile from :meth:`to_dict`'s document."""
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
        """The profile of one feature (KeyError if it was not profiled)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The reference profile as a JSON-ready document (its schema included)."""
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
        """A reference profile from :meth:`to_dict`'s document (checks the schema)."""
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
