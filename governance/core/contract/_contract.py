"""A model version's input contract: judging one application or a frame row by row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from governance.core.contract._feature import FeatureContract
from governance.core.contract._types import (
    ERR_FORMAT,
    ERR_MISSING_COLUMN,
    ERR_MISSING_FEATURE,
    ERR_RELATION,
    ERR_UNKNOWN_FEATURE,
    FORMAT,
    ContractPolicy,
    Flag,
    FrameVerdict,
    Interval,
    Relation,
    Verdict,
    Violation,
    _display,
    _plain,
    _refused,
)
from governance.core.dataset import as_text

# -- the contract -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """A model version's input contract. Build with :func:`derive_contract`.

    Attributes
    ----------
    dataset : str
        The dataset spec's name.
    features : dict of str to FeatureContract
        One entry per model input, in the model's input order.
    relations : tuple of Relation
        Rules between two inputs.
    policy : ContractPolicy
        What to do out of distribution.
    provenance : dict of str to str
        Where the rules came from (suite name, path and sha256, training data md5, ...).
    unenforced : tuple of str
        Expectations on model inputs that are not hard rules here, each with why.
    """

    dataset: str
    features: dict[str, FeatureContract]
    relations: tuple[Relation, ...] = ()
    policy: ContractPolicy = field(default_factory=ContractPolicy)
    provenance: dict[str, str] = field(default_factory=dict)
    unenforced: tuple[str, ...] = ()

    @property
    def order(self) -> list[str]:
        """The model inputs, in order."""
        return list(self.features)

    def feature(self, name: str) -> FeatureContract:
        """Return one input's contract (``KeyError`` if it is not an input)."""
        return self.features[name]

    # -- one application ---------------------------------------------------------------------
    def check(self, features: Mapping[str, Any], *, row: int | None = None) -> Verdict:
        """Judge one application.

        Parameters
        ----------
        features : mapping
            Input name to JSON value (None = missing). Numbers must be ``int`` or ``float``
            (numpy scalars are accepted), categories ``str``. A float NaN is not "missing"
            here: it is a non-finite number.
        row : int, optional
            Its position in a batch, named in messages as ``"row N: "``.

        Returns
        -------
        Verdict
            Every violation and every out-of-distribution flag.
        """
        where = "" if row is None else f"row {row}: "
        violations: list[Violation] = []
        for name in features:
            if name not in self.features:
                message = ERR_UNKNOWN_FEATURE.format(where=where, feature=name, expected=self.order)
                value = features[name]
                violations.append(
                    Violation("unknown_feature", str(name), value, self.order, message, row)
                )
        values: dict[str, Any] = {}
        flags: list[Flag] = []
        for name, fc in self.features.items():
            if name not in features:
                message = ERR_MISSING_FEATURE.format(where=where, feature=name)
                violations.append(Violation("missing_feature", name, None, None, message, row))
                continue
            value = _plain(features[name])
            broken = fc._violations(value, where=where, row=row)
            if broken:
                violations.extend(broken)
                continue
            values[name] = value
            flag = fc._flag(value, self.policy.range_margin)
            if flag is not None:
                flags.append(flag)
        violations.extend(self._relation_violations(values, where=where, row=row))
        if self.policy.out_of_distribution == "refuse":
            violations.extend(_refused(flags, where=where, row=row))
        return Verdict(tuple(violations), tuple(flags))

    def _relation_violations(
        self, values: Mapping[str, Any], *, where: str, row: int | None
    ) -> list[Violation]:
        out = []
        for r in self.relations:
            a, b = values.get(r.left), values.get(r.right)
            if a is None or b is None or r.holds(a, b):
                continue
            message = ERR_RELATION.format(
                where=where, left=r.left, op=r.op, right=r.right, a=_display(a), b=_display(b)
            )
            out.append(Violation("relation", r.left, a, r.to_dict(), message, row))
        return out

    # -- many applications -------------------------------------------------------------------
    def check_frame(
        self, frame: pd.DataFrame, *, first_row: int = 0, flags: bool = True
    ) -> FrameVerdict:
        """Judge every row of a frame, vectorised; rows are numbered from ``first_row``.

        A frame may carry other columns (ids, sensitive attributes): only the model's inputs
        are judged. In a frame, a missing value is None or NaN; numeric columns must hold
        numbers; categorical values are read as text (``str(value)``), as the model reads them.
        Each row gets exactly the violations and flags :meth:`check` gives its mapping.

        Parameters
        ----------
        frame : pandas.DataFrame
        first_row : int
            The position of the frame's first row in the whole batch (for messages).
        flags : bool
            Whether to write the flags of the rows that break no rule (their one-line messages
            cost a batch of 1,000,000 rows half of its check): with ``False``, ``flags`` holds
            only the rows judged whole (those that may break a rule); the violations and
            ``out_of_distribution`` are the same.

        Returns
        -------
        FrameVerdict
        """
        n = len(frame)
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            absent = tuple(
                Violation(
                    "missing_feature", name, None, None, ERR_MISSING_COLUMN.format(feature=name)
                )
                for name in missing
            )
            return FrameVerdict(absent, [[] for _ in range(n)], {})
        margin = self.policy.range_margin
        columns = {name: _column_values(frame[name], fc) for name, fc in self.features.items()}
        suspects = np.zeros(n, dtype=bool)  # may break a rule
        may_flag: dict[str, np.ndarray] = {}  # may only be out of distribution
        for name, fc in self.features.items():
            breaks, may_flag[name] = _screen(columns[name], fc, margin)
            suspects |= breaks
        for r in self.relations:
            suspects |= _screen_relation(columns[r.left], columns[r.right], r)
        if self.policy.out_of_distribution == "refuse":  # a flag is a violation too
            for flags_here in may_flag.values():
                suspects |= flags_here
        violations: list[Violation] = []
        found: dict[int, list[Flag]] = {}
        ood: list[list[str]] = [[] for _ in range(n)]
        rows = np.flatnonzero(suspects)
        cells = {name: columns[name].values(rows) for name in self.features}
        for k, i in enumerate(rows.tolist()):  # judged whole, as check() judges a mapping
            row = {name: cells[name][k] for name in self.features}
            verdict = self.check(row, row=first_row + i)
            violations.extend(verdict.violations)
            if verdict.flags:
                found[i] = list(verdict.flags)
        # The other rows break no rule, so only the cells that may be flagged are judged (the
        # same _flag check() runs), in feature order: a row's flags come out as check() lists them.
        for name, fc in self.features.items():
            only = np.flatnonzero(may_flag[name] & ~suspects)
            for i, value in zip(only.tolist(), columns[name].values(only), strict=True):
                if not flags:
                    if fc._flag_kind(value, margin) is not None:
                        ood[i].append(name)
                    continue
                flag = fc._flag(value, margin)
                if flag is not None:
                    found.setdefault(i, []).append(flag)
        flagged: dict[int, tuple[Flag, ...]] = {}
        for i in sorted(found):
            flagged[first_row + i] = tuple(found[i])
            ood[i] = [f.feature for f in found[i]]
        return FrameVerdict(tuple(violations), ood, flagged)

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the contract as JSON (features as a list, in input order)."""
        return {
            "format": FORMAT,
            "dataset": self.dataset,
            "features": [fc.to_dict() for fc in self.features.values()],
            "relations": [r.to_dict() for r in self.relations],
            "policy": self.policy.to_dict(),
            "provenance": dict(self.provenance),
            "unenforced": list(self.unenforced),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Contract:
        """Read :meth:`to_dict`'s output (or its JSON, parsed).

        Raises
        ------
        ValueError
            If ``d`` is not a ``governance.contract/1`` document.
        """
        if d.get("format") != FORMAT:
            raise ValueError(ERR_FORMAT.format(format=FORMAT, found=d.get("format")))
        features = [FeatureContract.from_dict(f) for f in d["features"]]
        return cls(
            dataset=str(d["dataset"]),
            features={f.name: f for f in features},
            relations=tuple(Relation.from_dict(r) for r in d.get("relations") or ()),
            policy=ContractPolicy.from_params(d.get("policy") or {}),
            provenance={str(k): str(v) for k, v in (d.get("provenance") or {}).items()},
            unenforced=tuple(str(u) for u in d.get("unenforced") or ()),
        )

    def canonical_json(self) -> bytes:
        """The contract's canonical bytes: sorted keys, no whitespace, UTF-8, no NaN."""
        return json.dumps(
            self.to_dict(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8")

    @property
    def contract_id(self) -> str:
        """Content address: ``"sha256:"`` + the sha256 of :meth:`canonical_json`."""
        return "sha256:" + hashlib.sha256(self.canonical_json()).hexdigest()

    def with_policy(self, policy: ContractPolicy) -> Contract:
        """Return the same contract under another policy."""
        return replace(self, policy=policy)


# -- vectorised screening -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """One input column of a frame, prepared for screening.

    ``text`` holds a categorical column's values as text (NaN for missing); ``numbers`` is a
    float view for numeric columns whose cells are all numbers or missing (None when some cell
    is not, and then every non-missing cell is a suspect). :meth:`values` gives chosen rows'
    values as :meth:`Contract.check` takes them (None for missing): only suspects need them.
    """

    series: pd.Series
    missing: np.ndarray
    numbers: np.ndarray | None
    text: np.ndarray | None

    def values(self, rows: np.ndarray) -> list[Any]:
        """The Python values of the rows at positions ``rows``."""
        cells = self.series.iloc[rows].tolist()
        missing = self.missing[rows].tolist()
        if self.text is not None:
            return [None if m else str(v) for v, m in zip(cells, missing, strict=True)]
        return [None if m else _plain(v) for v, m in zip(cells, missing, strict=True)]


def _column_values(series: pd.Series, fc: FeatureContract) -> _Column:
    missing = series.isna().to_numpy(dtype=bool)
    if fc.kind == "categorical":
        return _Column(series, missing, None, as_text(series))
    numbers = None
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        if pd.api.types.is_integer_dtype(dtype) and np.nanmax(np.abs(numbers), initial=0) > 2**53:
            numbers = None  # a float cannot hold these exactly: judge each cell as given
    return _Column(series, missing, numbers, None)


def _screen(column: _Column, fc: FeatureContract, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose value may break a rule, and rows whose value may be flagged out of
    distribution (each a superset: it never misses one)."""
    missing = column.missing
    present = ~missing
    breaks = missing & (not fc.nullable)
    flags = missing & (fc.nullable and not fc.training_missing)
    if fc.kind == "categorical":
        values = pd.Series(column.text, dtype=object)  # missing rows are judged above
        ok = values.isin(list(fc.allowed or ())) & ~values.isin(list(fc.forbidden))
        breaks |= present & ~ok.to_numpy(dtype=bool)
        if fc.training_values is not None:
            seen = values.isin(list(fc.training_values)).to_numpy(dtype=bool)
            flags |= present & ~seen
        return breaks, flags
    x = column.numbers
    if x is None:
        return breaks | present, flags
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(x)
        if fc.type == "integer":
            bad |= np.floor(x) != x
        if fc.allowed is not None:
            bad |= ~np.isin(x, _floats(fc.allowed))
        if fc.forbidden:
            bad |= np.isin(x, _floats(fc.forbidden))
        bad |= _outside(x, fc.bounds)
        unseen = np.zeros(len(x), dtype=bool)
        if fc.training_values is not None:
            unseen |= ~np.isin(x, _floats(fc.training_values))
        if fc.training_range is not None:
            unseen |= _outside(x, fc.training_range.widened(margin))
    return breaks | (present & bad), flags | (present & unseen)


def _outside(x: np.ndarray, interval: Interval) -> np.ndarray:
    """Cells outside ``interval``; an end a float cannot hold exactly also flags its equals."""
    out = np.zeros(len(x), dtype=bool)
    if interval.low is not None:
        low = float(interval.low)
        out |= x <= low if interval.low_strict or low != interval.low else x < low
    if interval.high is not None:
        high = float(interval.high)
        out |= x >= high if interval.high_strict or high != interval.high else x > high
    return out


def _floats(values: Iterable[Any]) -> np.ndarray:
    """The numbers among ``values`` as float64 (other values can never match a number)."""
    return np.asarray(
        [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)],
        dtype="float64",
    )


def _screen_relation(left: _Column, right: _Column, r: Relation) -> np.ndarray:
    if left.numbers is None or right.numbers is None:
        return ~left.missing & ~right.missing
    with np.errstate(invalid="ignore"):
        return ~left.missing & ~right.missing & (left.numbers <= right.numbers)
