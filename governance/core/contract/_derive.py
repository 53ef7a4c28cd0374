"""Deriving a contract from the dataset spec, its GX suite and the validated training data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from governance.core.contract._contract import Contract
from governance.core.contract._feature import FeatureContract
from governance.core.contract._types import (
    _COLUMN_RULES,
    _PAIR_RULE,
    ERR_EMPTY_ALLOWED,
    ERR_NO_COLUMN,
    ERR_TRAINING_BREAKS,
    INTEGER_DTYPES,
    ContractPolicy,
    ContractViolation,
    Interval,
    Relation,
    _plain,
)
from governance.core.dataset import DatasetSpec

# -- derivation -----------------------------------------------------------------------------


def derive_contract(
    spec: DatasetSpec,
    suite: Mapping[str, Any],
    training: pd.DataFrame,
    *,
    policy: ContractPolicy | None = None,
    provenance: Mapping[str, str] | None = None,
) -> Contract:
    """Derive a model version's input contract.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset spec: inputs, kinds, categories, nullability.
    suite : mapping
        The dataset's GX suite as :func:`governance.core.validation.load_suite` returns it.
    training : pandas.DataFrame
        The validated training data (at least the model's input columns).
    policy : ContractPolicy, optional
        What to do out of distribution (default: flag, no margin).
    provenance : mapping, optional
        Recorded as is, e.g. ``{"suite_path": ..., "suite_sha256": ..., "training_md5": ...}``;
        the suite's name is added as ``suite``.

    Returns
    -------
    Contract

    Raises
    ------
    ValueError
        If the training data lacks an input column, the suite allows none of an input's
        categories, or a training row breaks the derived hard rules (the suite and the data
        disagree, so the contract would refuse the model's own training data).
    """
    rules = _suite_rules(suite, set(spec.feature_names))
    suite_name = str(suite.get("name", ""))
    features: dict[str, FeatureContract] = {}
    for f in spec.features:
        if f.name not in training.columns:
            raise ValueError(ERR_NO_COLUMN.format(feature=f.name))
        features[f.name] = _derive_feature(
            spec, f.name, rules.get(f.name, {}), training[f.name], suite_name
        )
    pairs = tuple(
        Relation(a, ">=" if or_equal else ">", b) for a, b, or_equal in rules.get(_PAIR_RULE, [])
    )
    contract = Contract(
        dataset=spec.name,
        features=features,
        relations=pairs,
        policy=policy or ContractPolicy(),
        provenance={"suite": suite_name, **{str(k): str(v) for k, v in (provenance or {}).items()}},
        unenforced=tuple(rules.get("unenforced", [])),
    )
    own = contract.with_policy(ContractPolicy()).check_frame(training)
    if not own.ok:
        raise ValueError(ERR_TRAINING_BREAKS.format(message=ContractViolation(own.violations)))
    return contract


def _suite_rules(suite: Mapping[str, Any], inputs: set[str]) -> dict[str, Any]:
    """Collect the suite's row-level rules on model inputs.

    Returns
    -------
    dict
        Per input name a dict with ``between`` (list of kwargs), ``in_set``, ``not_in_set``,
        ``not_null`` and ``types``; under ``_PAIR_RULE`` a list of ``(a, b, or_equal)``; under
        ``"unenforced"`` a list of descriptions.
    """
    out: dict[str, Any] = {"unenforced": [], _PAIR_RULE: []}
    for item in suite.get("expectations") or []:
        kind, kw = str(item.get("type")), dict(item.get("kwargs") or {})
        mostly = kw.get("mostly", 1.0)
        condition = kw.get("row_condition")
        if condition:  # GX checks it only on the rows that meet the condition
            names = kw.get("column") or f"{kw.get('column_A')}, {kw.get('column_B')}"
            out["unenforced"].append(f"{kind}({names}): only where {condition}, not a hard rule")
            continue
        if kind == _PAIR_RULE:
            a, b = kw.get("column_A"), kw.get("column_B")
            if a in inputs and b in inputs:
                if mostly < 1.0:
                    out["unenforced"].append(f"{kind}({a}, {b}): mostly={mostly}, not a hard rule")
                else:
                    out[_PAIR_RULE].append((a, b, bool(kw.get("or_equal", False))))
            continue
        column = kw.get("column")
        if column not in inputs:
            continue
        if kind not in _COLUMN_RULES:
            out["unenforced"].append(f"{kind}({column}): not checkable on one application")
            continue
        if mostly < 1.0:
            out["unenforced"].append(f"{kind}({column}): mostly={mostly}, not a hard rule")
            continue
        rules = out.setdefault(column, {})
        if kind == "expect_column_values_to_be_between":
            rules.setdefault("between", []).append(kw)
        elif kind == "expect_column_values_to_be_in_set":
            rules.setdefault("in_set", []).append(list(kw.get("value_set") or []))
        elif kind == "expect_column_values_to_not_be_in_set":
            rules.setdefault("not_in_set", []).extend(kw.get("value_set") or [])
        elif kind == "expect_column_values_to_not_be_null":
            rules["not_null"] = True
        elif kind == "expect_column_values_to_be_in_type_list":
            rules.setdefault("types", []).append([str(t) for t in kw.get("type_list") or []])
        else:  # expect_column_values_to_be_of_type
            rules.setdefault("types", []).append([str(kw.get("type_"))])
    return out


def _derive_feature(
    spec: DatasetSpec, name: str, rules: Mapping[str, Any], column: pd.Series, suite: str
) -> FeatureContract:
    f = spec.feature(name)
    nullable = f.nullable and not rules.get("not_null", False)
    allowed: tuple[Any, ...] | None = None
    for value_set in rules.get("in_set", []):
        if allowed is None:
            allowed = tuple(value_set)
        else:
            allowed = tuple(v for v in allowed if v in value_set)
    forbidden = tuple(rules.get("not_in_set", []))
    present = column.dropna()
    training_missing = bool(column.isna().any())
    if f.kind == "categorical":
        categories = f.categories
        if allowed is not None:
            kept = tuple(c for c in categories if c in {str(v) for v in allowed})
            if not kept:
                raise ValueError(
                    ERR_EMPTY_ALLOWED.format(suite=suite, feature=name, categories=list(categories))
                )
            categories = kept
        seen = sorted({str(v) for v in present.tolist()})
        return FeatureContract(
            name=name,
            kind="categorical",
            type="string",
            nullable=nullable,
            allowed=tuple(categories),
            forbidden=tuple(str(v) for v in forbidden),
            training_values=tuple(seen),
            training_missing=training_missing,
        )
    types = rules.get("types", [])
    integer = bool(types) and any(set(t) <= INTEGER_DTYPES and t for t in types)
    bounds = _bounds(rules.get("between", []))
    numbers = pd.to_numeric(present, errors="coerce").dropna()
    training_range = (
        Interval(_plain(numbers.min()), _plain(numbers.max())) if len(numbers) else None
    )
    training_values = None
    if allowed is not None:
        training_values = tuple(sorted({_plain(v) for v in numbers.tolist()}))
    return FeatureContract(
        name=name,
        kind="numeric",
        type="integer" if integer else "number",
        nullable=nullable,
        bounds=bounds,
        allowed=allowed,
        forbidden=forbidden,
        training_range=training_range,
        training_values=training_values,
        training_missing=training_missing,
    )


def _bounds(betweens: Iterable[Mapping[str, Any]]) -> Interval:
    """The intersection of every ``expect_column_values_to_be_between`` on one column."""
    result = Interval()
    for kw in betweens:
        low, high = kw.get("min_value"), kw.get("max_value")
        low_strict = low is not None and bool(kw.get("strict_min"))
        high_strict = high is not None and bool(kw.get("strict_max"))
        if low is not None and (
            result.low is None
            or low > result.low
            or (low == result.low and low_strict and not result.low_strict)
        ):
            result = replace(result, low=low, low_strict=low_strict)
        if high is not None and (
            result.high is None
            or high < result.high
            or (high == result.high and high_strict and not result.high_strict)
        ):
            result = replace(result, high=high, high_strict=high_strict)
    return result
