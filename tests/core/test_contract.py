"""The input data contract: derived from the spec, the GX suite and the training data."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.core.contract import (
    Contract,
    ContractPolicy,
    ContractViolation,
    FeatureContract,
    Interval,
    derive_contract,
)
from governance.core.dataset import DatasetSpec, load_spec, read_source
from governance.core.training import split
from governance.core.validation import load_suite

SEED = 20240611


def _data(name: str) -> tuple[DatasetSpec, dict[str, Any], pd.DataFrame, pd.DataFrame]:
    spec = load_spec(name)
    frame = read_source(spec.source).rename(columns=spec.rename)
    train, test = split(frame, spec, test_size=0.25, seed=SEED)
    return spec, load_suite(spec.suite), train, test


HMDA = _data("hmda")
CREDIT = _data("credit")


def contract_of(
    data: tuple[DatasetSpec, dict[str, Any], pd.DataFrame, pd.DataFrame],
    policy: ContractPolicy | None = None,
) -> Contract:
    spec, suite, train, _ = data
    return derive_contract(spec, suite, train, policy=policy)


def application(data: tuple[Any, ...], i: int = 0) -> dict[str, Any]:
    """Row ``i`` of the test split as a JSON-like mapping (NaN -> None)."""
    spec, _, _, test = data
    row = test.iloc[i]
    out: dict[str, Any] = {}
    for name in spec.feature_names:
        value = row[name]
        value = value.item() if hasattr(value, "item") else value
        out[name] = None if isinstance(value, float) and math.isnan(value) else value
    return out


# -- derivation from the real suites ----------------------------------------------------------


def test_hmda_contract_reads_the_suite_and_the_training_data() -> None:
    spec, suite, train, _ = HMDA
    c = contract_of(HMDA)
    assert c.order == spec.feature_names
    pirat = c.feature("pirat")
    assert (pirat.type, pirat.nullable, pirat.bounds) == ("number", False, Interval(0, 5))
    assert pirat.training_range == Interval(train["pirat"].min(), train["pirat"].max())
    chist = c.feature("chist")
    assert chist.type == "integer" and chist.allowed == (1, 2, 3, 4, 5, 6)
    assert chist.feasible_values() == (1, 2, 3, 4, 5, 6)
    assert chist.training_values == tuple(sorted(train["chist"].unique().tolist()))
    phist = c.feature("phist")
    assert (phist.kind, phist.type, phist.allowed) == ("categorical", "string", ("no", "yes"))
    assert c.feature("lvrat").bounds == Interval(0, 3)
    assert c.relations == () and c.unenforced == ()
    assert c.provenance["suite"] == suite["name"] == "hmda"


def test_credit_contract_has_nullable_inputs_integer_types_and_a_relation() -> None:
    c = contract_of(CREDIT)
    income = c.feature("Income")
    assert income.nullable and income.training_missing and income.type == "number"
    assert c.feature("Seniority").type == "integer"
    assert c.feature("Records").nullable is False  # the suite forbids nulls
    assert [r.to_dict() for r in c.relations] == [{"left": "Price", "op": ">=", "right": "Amount"}]


@pytest.mark.parametrize("data", [HMDA, CREDIT], ids=["hmda", "credit"])
def test_every_validated_row_satisfies_its_contract(data: tuple[Any, ...]) -> None:
    _, _, train, test = data
    c = contract_of(data)
    everything = pd.concat([train, test])
    assert c.check_frame(everything).ok
    assert not any(c.check_frame(train).out_of_distribution)


# -- what the issue showed: impossible inputs -------------------------------------------------


@pytest.mark.parametrize(
    ("change", "rule", "message"),
    [
        ({"pirat": -5}, "minimum", "feature 'pirat' = -5 is below the hard minimum 0"),
        ({"chist": 99}, "allowed", "feature 'chist' = 99 is not one of [1, 2, 3, 4, 5, 6]"),
        ({"lvrat": 1e300}, "maximum", "feature 'lvrat' = 1e+300 is above the hard maximum 3"),
        (
            {"phist": "missing"},
            "allowed",
            "feature 'phist' = 'missing' is not one of ['no', 'yes']",
        ),
        ({"phist": None}, "null", "feature 'phist' must not be missing (null)"),
        ({"chist": 2.5}, "type", "feature 'chist' = 2.5: expected a whole number"),
        ({"pirat": True}, "type", "feature 'pirat' = True: expected a number"),
        ({"pirat": "0.3"}, "type", "feature 'pirat' = '0.3': expected a number"),
        ({"pirat": float("nan")}, "finite", "feature 'pirat' = nan: expected a finite number"),
        ({"hirat": float("-inf")}, "finite", "feature 'hirat' = -inf: expected a finite number"),
        ({"phist": 1}, "type", "feature 'phist' = 1: expected text (one of ['no', 'yes'])"),
        ({"colour": "red"}, "unknown_feature", "unknown feature 'colour'"),
    ],
)
def test_impossible_inputs_are_violations_naming_feature_value_and_bound(
    change: dict[str, Any], rule: str, message: str
) -> None:
    c = contract_of(HMDA)
    verdict = c.check({**application(HMDA), **change})
    assert not verdict.ok
    [violation] = verdict.violations
    assert (violation.rule, violation.hard) == (rule, True)
    assert violation.message.startswith(message)
    with pytest.raises(ContractViolation) as err:
        verdict.raise_for_violations()
    assert str(err.value).startswith(message)


def test_a_missing_feature_and_huge_integers_are_named_without_crashing() -> None:
    c = contract_of(HMDA)
    features = application(HMDA)
    del features["lvrat"]
    [v] = c.check(features).violations
    assert (v.rule, v.message) == ("missing_feature", "missing feature 'lvrat'")
    huge = 10**5000  # its decimal repr alone would raise in Python 3.11
    [v] = c.check({**application(HMDA), "pirat": huge}).violations
    assert v.rule == "maximum" and "an integer of about 5001 digits" in v.message
    [v] = contract_of(CREDIT).check({**application(CREDIT), "Amount": -(10**400)}).violations
    assert (
        v.message
        == "feature 'Amount' = -an integer of about 401 digits is below the hard minimum 1"
    )
    unbounded = FeatureContract("x", "numeric", "number", False)
    assert unbounded.feasible(10**300) and not unbounded.feasible(10**400)


def test_messages_stay_on_one_line_whatever_the_value() -> None:
    c = contract_of(HMDA)
    [v] = c.check({**application(HMDA), "phist": "no\nrow 9: all clear\x1b[2J"}).violations
    assert "\n" not in v.message and "\x1b" not in v.message and "\\n" in v.message
    [v] = c.check({**application(HMDA), "phist": "x" * 10_000}).violations
    assert len(v.message) < 200


def test_a_broken_relation_is_a_violation() -> None:
    c = contract_of(CREDIT)
    features = {**application(CREDIT), "Amount": 900, "Price": 800}
    [v] = c.check(features).violations
    assert v.rule == "relation"
    assert v.message == "feature 'Price' = 800 must be >= feature 'Amount' = 900"
    assert c.check({**features, "Price": 900}).ok


def test_frame_violations_name_their_rows() -> None:
    _, _, _, test = HMDA
    frame = test.head(5).copy()
    frame["pirat"] = frame["pirat"].astype(object)
    frame.iloc[3, frame.columns.get_loc("pirat")] = -5
    frame.iloc[1, frame.columns.get_loc("phist")] = "maybe"
    verdict = contract_of(HMDA).check_frame(frame, first_row=100)
    assert [v.message for v in verdict.violations] == [
        "row 101: feature 'phist' = 'maybe' is not one of ['no', 'yes']",
        "row 103: feature 'pirat' = -5 is below the hard minimum 0",
    ]
    assert [v.row for v in verdict.violations] == [101, 103]
    with pytest.raises(ContractViolation, match=r"row 101: .*; row 103: "):
        verdict.raise_for_violations()
    missing = contract_of(HMDA).check_frame(frame.drop(columns=["lvrat"]))
    assert [v.message for v in missing.violations] == ["missing feature column 'lvrat'"]


def test_many_violations_are_summarised_in_one_message() -> None:
    features = dict.fromkeys(contract_of(HMDA).order, -1)
    err = ContractViolation(contract_of(HMDA).check(features).violations)
    assert str(err).endswith("; and 6 more") and len(err.violations) == 11


# -- out of distribution ------------------------------------------------------------------------


def test_values_inside_the_bounds_but_outside_training_are_flagged_not_refused() -> None:
    c = contract_of(HMDA)
    high = c.feature("lvrat").training_range.high  # type: ignore[union-attr]
    verdict = c.check({**application(HMDA), "lvrat": 2.5})
    assert verdict.ok and verdict.out_of_distribution == ["lvrat"]
    assert verdict.flags[0].message.startswith(
        "feature 'lvrat' = 2.5 is outside the training range"
    )
    assert c.check({**application(HMDA), "lvrat": high}).out_of_distribution == []


def test_an_unseen_category_and_an_unseen_missing_value_are_flagged() -> None:
    spec, suite, train, _ = CREDIT
    train = train[train["Job"] != "others"]
    train = train[train["Home"].notna()]
    c = derive_contract(spec, suite, train)
    verdict = c.check({**application(CREDIT), "Job": "others", "Home": None})
    assert verdict.ok and verdict.out_of_distribution == ["Home", "Job"]
    assert "never seen in training" in verdict.flags[1].message


def test_the_refuse_policy_refuses_out_of_distribution_values() -> None:
    c = contract_of(HMDA, ContractPolicy(out_of_distribution="refuse"))
    verdict = c.check({**application(HMDA), "lvrat": 2.5})
    [v] = verdict.violations
    assert (v.rule, v.hard, v.feature) == ("out_of_distribution", False, "lvrat")
    assert v.message.endswith("(policy: out_of_distribution: refuse)")
    assert verdict.out_of_distribution == ["lvrat"]


def test_the_margin_widens_the_training_range() -> None:
    c = contract_of(HMDA, ContractPolicy(range_margin=0.5))
    assert c.check({**application(HMDA), "lvrat": 2.5}).out_of_distribution == []
    assert c.check({**application(HMDA), "lvrat": 2.95}).out_of_distribution == ["lvrat"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"out_of_distribution": "ignore"}, "expected flag or refuse, got 'ignore'"),
        ({"range_margin": -0.1}, "range_margin: expected a number >= 0, got -0.1"),
        ({"range_margin": "wide"}, "range_margin: expected a number >= 0, got 'wide'"),
        ({"range_margin": True}, "range_margin: expected a number >= 0, got True"),
        ({"margin": 0.1}, "unknown key 'margin'; known keys: out_of_distribution, range_margin"),
        (["flag"], "expected a mapping"),
    ],
)
def test_bad_policies_are_named(block: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ContractPolicy.from_params(block)


def test_policy_defaults() -> None:
    assert ContractPolicy.from_params(None) == ContractPolicy.from_params({}) == ContractPolicy()
    assert ContractPolicy.from_params({"out_of_distribution": "refuse", "range_margin": 1}) == (
        ContractPolicy("refuse", 1.0)
    )


# -- derivation edge cases --------------------------------------------------------------------


def _suite_with(suite: dict[str, Any], column: str, kind: str, **kwargs: Any) -> dict[str, Any]:
    changed = copy.deepcopy(suite)
    changed["expectations"] = [
        e
        for e in changed["expectations"]
        if not (e["type"] == kind and e["kwargs"].get("column") == column)
    ]
    changed["expectations"].append({"type": kind, "kwargs": {"column": column, **kwargs}})
    return changed


def test_expectations_that_tolerate_exceptions_are_not_hard_rules() -> None:
    spec, suite, train, _ = HMDA
    loose = _suite_with(
        suite, "pirat", "expect_column_values_to_be_between", min_value=0, max_value=5, mostly=0.9
    )
    c = derive_contract(spec, loose, train)
    assert c.feature("pirat").bounds == Interval()
    assert c.unenforced == (
        "expect_column_values_to_be_between(pirat): mostly=0.9, not a hard rule",
    )
    assert c.check({**application(HMDA), "pirat": -5}).violations == ()


def test_an_expectation_on_some_rows_only_is_not_a_hard_rule() -> None:
    """GX checks a ``row_condition`` expectation only where the condition holds: taken as a
    rule for every row, the training data broke it and train refused, blaming the data."""
    spec, suite, train, _ = HMDA
    conditional = copy.deepcopy(suite)
    conditional["expectations"].append(
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {
                "column": "pirat",
                "min_value": 0,
                "max_value": 1,
                "row_condition": "pirat<=1",
                "condition_parser": "pandas",
            },
        }
    )
    assert train["pirat"].max() > 1  # rows the condition leaves out
    c = derive_contract(spec, conditional, train)
    assert c.feature("pirat").bounds == derive_contract(spec, suite, train).feature("pirat").bounds
    assert c.unenforced == (
        "expect_column_values_to_be_between(pirat): only where pirat<=1, not a hard rule",
    )


def test_strict_bounds_forbidden_values_and_unenforceable_expectations() -> None:
    spec, suite, train, _ = HMDA
    strict = _suite_with(
        suite, "lvrat", "expect_column_values_to_be_between", min_value=0, strict_min=True
    )
    strict["expectations"].append(
        {
            "type": "expect_column_values_to_not_be_in_set",
            "kwargs": {"column": "mhist", "value_set": [4]},
        }
    )
    strict["expectations"].append(
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "unemp"}}
    )
    train = train[train["mhist"] != 4]
    c = derive_contract(spec, strict, train)
    assert c.feature("lvrat").bounds == Interval(0, None, low_strict=True)
    [v] = c.check({**application(HMDA), "lvrat": 0}).violations
    assert v.message == "feature 'lvrat' = 0 must be greater than 0"
    [v] = c.check({**application(HMDA), "mhist": 4}).violations
    assert v.message == "feature 'mhist' = 4 is one of the forbidden values [4]"
    assert c.feature("mhist").feasible_values() == (1, 2, 3)
    assert c.unenforced == (
        "expect_column_values_to_be_unique(unemp): not checkable on one application",
    )


def test_a_suite_the_training_data_breaks_cannot_give_a_contract() -> None:
    spec, suite, train, _ = HMDA
    tight = _suite_with(
        suite, "pirat", "expect_column_values_to_be_between", min_value=0, max_value=0.5
    )
    with pytest.raises(ValueError, match=r"training data breaks its own suite's rules \(row \d+: "):
        derive_contract(spec, tight, train)
    with pytest.raises(ValueError, match="lacks feature column 'pirat'"):
        derive_contract(spec, suite, train.drop(columns=["pirat"]))
    empty = _suite_with(suite, "phist", "expect_column_values_to_be_in_set", value_set=["maybe"])
    with pytest.raises(ValueError, match="allows none of feature 'phist'"):
        derive_contract(spec, empty, train)


def test_feasibility_is_readable_per_feature() -> None:
    c = contract_of(HMDA)
    pirat = c.feature("pirat")
    assert pirat.feasible(0) and pirat.feasible(5) and not pirat.feasible(5.0001)
    assert not pirat.feasible(None) and pirat.feasible_values() is None
    assert c.feature("phist").feasible_values() == ("no", "yes")
    assert not c.feature("phist").feasible("missing")


# -- serialisation ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [HMDA, CREDIT], ids=["hmda", "credit"])
def test_the_contract_round_trips_through_its_canonical_json(data: tuple[Any, ...]) -> None:
    c = contract_of(data, ContractPolicy("refuse", 0.25))
    again = Contract.from_dict(json.loads(c.canonical_json()))
    assert again == c
    assert again.canonical_json() == c.canonical_json()
    assert again.contract_id == c.contract_id and c.contract_id.startswith("sha256:")
    assert c.with_policy(ContractPolicy()).contract_id != c.contract_id
    with pytest.raises(ValueError, match=r"not a governance\.contract/1 document"):
        Contract.from_dict({**c.to_dict(), "format": "other"})


def test_derivation_is_deterministic() -> None:
    spec, suite, train, _ = CREDIT
    shuffled = train.sample(frac=1.0, random_state=1)
    assert derive_contract(spec, suite, shuffled).canonical_json() == (
        contract_of(CREDIT).canonical_json()
    )


# -- properties -------------------------------------------------------------------------------

_NUMERIC_VALUES = st.one_of(
    st.floats(-10, 10),
    st.floats(allow_nan=False),
    st.integers(-10, 10),
    st.integers(-(10**30), 10**30),
    st.none(),
    st.booleans(),
    st.sampled_from(["0.5", "", "high"]),
)
_TEXT_VALUES = st.one_of(
    st.sampled_from(["no", "yes", "missing", "No", ""]), st.none(), st.text(max_size=3)
)


@st.composite
def _frames(draw: st.DrawFn, data: tuple[Any, ...]) -> pd.DataFrame:
    """Frames of 1-12 rows: real rows with some cells replaced (columns may go mixed-type)."""
    spec, _, _, test = data
    n = draw(st.integers(1, 12))
    start = draw(st.integers(0, len(test) - n))
    frame = test.iloc[start : start + n][spec.feature_names].reset_index(drop=True)
    frame = frame.astype(object).where(frame.notna(), None)
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(spec.feature_names))
        row = draw(st.integers(0, n - 1))
        numeric = spec.feature(name).kind == "numeric"
        frame.at[row, name] = draw(_NUMERIC_VALUES if numeric else _TEXT_VALUES)
    if draw(st.booleans()):  # let pandas infer numeric dtypes where it can (vectorised path)
        frame = frame.infer_objects()
    return frame


def _mapping(frame: pd.DataFrame, i: int, contract: Contract) -> dict[str, Any]:
    """Row ``i`` as :meth:`Contract.check_frame` documents it reads a row."""
    out: dict[str, Any] = {}
    for name, fc in contract.features.items():
        value = frame.at[i, name]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[name] = None
        elif fc.kind == "categorical":
            out[name] = str(value)
        else:
            out[name] = value.item() if hasattr(value, "item") else value
    return out


def _complete_training(data: tuple[Any, ...]) -> Contract:
    """The contract derived from the complete training rows only: its nullable inputs never
    saw a missing value, so a missing one is flagged."""
    spec, suite, train, _ = data
    return derive_contract(spec, suite, train.dropna())


def test_a_frame_flags_a_missing_value_where_training_saw_none() -> None:
    spec, _, _, test = CREDIT
    fc = CREDIT_COMPLETE_CONTRACT.feature("Income")
    assert fc.nullable and not fc.training_missing
    frame = test.iloc[:5][spec.feature_names].reset_index(drop=True)
    frame.loc[3, "Income"] = math.nan  # numeric columns: the vectorised screen judges the rows
    assert pd.api.types.is_float_dtype(frame["Income"])
    verdict = CREDIT_COMPLETE_CONTRACT.check_frame(frame)
    assert verdict.ok
    assert "Income" in verdict.out_of_distribution[3]
    assert all("Income" not in verdict.out_of_distribution[i] for i in (0, 1, 2, 4))


@pytest.mark.parametrize(
    "case", ["hmda", "credit", "credit, complete training rows"], ids=lambda c: c
)
@pytest.mark.parametrize(
    "policy",
    [ContractPolicy(), ContractPolicy("flag", 0.1), ContractPolicy("refuse", 0.1)],
    ids=str,
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_frame_check_agrees_with_the_row_check(
    case: str, policy: ContractPolicy, draw: st.DataObject
) -> None:
    data, contract = {
        "hmda": (HMDA, HMDA_CONTRACT),
        "credit": (CREDIT, CREDIT_CONTRACT),
        "credit, complete training rows": (CREDIT, CREDIT_COMPLETE_CONTRACT),
    }[case]
    contract = contract.with_policy(policy)
    frame = draw.draw(_frames(data))
    verdict = contract.check_frame(frame, first_row=7)
    expected_violations = []
    for i in range(len(frame)):
        one = contract.check(_mapping(frame, i, contract), row=7 + i)
        expected_violations.extend(one.violations)
        assert verdict.out_of_distribution[i] == one.out_of_distribution
        assert verdict.flags.get(7 + i, ()) == one.flags
    assert verdict.violations == tuple(expected_violations)
    names_only = contract.check_frame(frame, first_row=7, flags=False)
    assert names_only.out_of_distribution == verdict.out_of_distribution
    assert names_only.violations == verdict.violations
    assert all(names_only.flags[row] == verdict.flags[row] for row in names_only.flags)


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_is_refused_exactly_when_it_leaves_the_hard_bounds(value: float) -> None:
    c = HMDA_CONTRACT
    verdict = c.check({**HMDA_ROW, "lvrat": value})
    outside = value < 0 or value > 3
    assert verdict.ok is not outside
    if outside:
        [v] = verdict.violations
        assert v.feature == "lvrat" and v.bound in (0, 3)
        assert repr(value) in v.message and f" {v.bound}" in v.message
    else:
        low, high = 0.02, 1.95
        assert (verdict.out_of_distribution == ["lvrat"]) is (value < low or value > high)


@settings(max_examples=200, deadline=None)
@given(
    small=st.floats(0, 2),
    extra=st.floats(0, 2),
    value=st.floats(-1, 5),
    name=st.sampled_from(["pirat", "hirat", "lvrat", "unemp"]),
)
def test_a_wider_margin_never_adds_flags(
    small: float, extra: float, value: float, name: str
) -> None:
    features = {**HMDA_ROW, name: value}
    narrow = HMDA_CONTRACT.with_policy(ContractPolicy(range_margin=small)).check(features)
    wide = HMDA_CONTRACT.with_policy(ContractPolicy(range_margin=small + extra)).check(features)
    assert set(wide.out_of_distribution) <= set(narrow.out_of_distribution)
    assert narrow.violations == wide.violations


@settings(max_examples=200, deadline=None)
@given(
    low=st.one_of(st.none(), st.integers(-100, 0), st.floats(-100, 0)),
    high=st.one_of(st.none(), st.integers(11, 100), st.floats(11, 100)),
    strict=st.tuples(st.booleans(), st.booleans()),
    policy=st.tuples(st.sampled_from(["flag", "refuse"]), st.floats(0, 10)),
)
def test_any_contract_round_trips_exactly(
    low: float | None, high: float | None, strict: tuple[bool, bool], policy: tuple[str, float]
) -> None:
    spec, suite, train, _ = HMDA
    changed = _suite_with(
        suite,
        "unemp",
        "expect_column_values_to_be_between",
        min_value=low,
        max_value=high,
        strict_min=strict[0],
        strict_max=strict[1],
    )
    c = derive_contract(spec, changed, train, policy=ContractPolicy(*policy))  # type: ignore[arg-type]
    again = Contract.from_dict(json.loads(c.canonical_json()))
    assert again == c and again.contract_id == c.contract_id
    strict_low, strict_high = strict[0] and low is not None, strict[1] and high is not None
    assert again.feature("unemp").bounds == Interval(low, high, strict_low, strict_high)


def test_feature_contracts_read_back_from_plain_json() -> None:
    fc = FeatureContract("x", "numeric", "integer", True, Interval(1, None), allowed=None)
    assert FeatureContract.from_dict(json.loads(json.dumps(fc.to_dict()))) == fc
    with pytest.raises(ValueError, match="kind must be numeric or categorical"):
        FeatureContract.from_dict({**fc.to_dict(), "kind": "text"})


HMDA_CONTRACT = contract_of(HMDA)
CREDIT_CONTRACT = contract_of(CREDIT)
CREDIT_COMPLETE_CONTRACT = _complete_training(CREDIT)
HMDA_ROW = application(HMDA)
