"""Retention periods: months, the legal floor, and calendar arithmetic."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.core.retention import (
    AI_ACT_MINIMUM_MONTHS,
    REG_B_MONTHS,
    RetentionPolicy,
    subtract_months,
)


def test_defaults_cite_the_law() -> None:
    policy = RetentionPolicy.from_params(None)
    assert REG_B_MONTHS == 25 and AI_ACT_MINIMUM_MONTHS == 6
    for kind in ("decision", "notice", "recourse", "review", "outcome"):
        assert policy.months_for(kind) == 25
    assert policy.months_for("training") == 6 and policy.minimum == 6


def test_configured_values_and_the_floor() -> None:
    policy = RetentionPolicy.from_params({"decision": 30, "default": 12})
    assert policy.months_for("decision") == 30 and policy.months_for("promotion") == 12
    with pytest.raises(ValueError, match=r"below retention.minimum \(6\)"):
        RetentionPolicy.from_params({"default": 2})
    with pytest.raises(ValueError, match=r"retention.training is 10 months, below .*minimum \(12"):
        RetentionPolicy.from_params({"minimum": 12, "training": 10})
    with pytest.raises(ValueError, match="whole number"):
        RetentionPolicy.from_params({"decision": 2.5})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # the law's floors were settings: minimum 0 made 595 decisions of today due for erasure
        ({"minimum": 0, "default": 0}, "retention.minimum is 0 months, below the 6 the EU AI"),
        ({"decision": 6}, "retention.decision is 6 months, below the 25 Regulation B"),
        ({"minimum": 3, "notice": 3}, "retention.notice is 3 months, below the 25 Regulation B"),
        # a typo was a new record type; decisions stayed at the default without a word
        ({"decison": 120}, "retention.decison: no ledger record has that type; known: decision"),
        ({"decision": 100_000}, "retention.decision must be a whole number of months up to 1200"),
        ({"decision": 10**12}, "whole number of months up to 1200, got 1000000000000"),
        ("25", "params.yaml retention must hold settings (decision: 25, ...), got str"),
        ([25], "params.yaml retention must hold settings (decision: 25, ...), got list"),
    ],
)
def test_the_law_floors_typos_and_the_calendar_are_enforced(params: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RetentionPolicy.from_params(params)  # type: ignore[arg-type]


def test_a_policy_may_keep_longer_than_the_law() -> None:
    policy = RetentionPolicy.from_params(
        {"minimum": 12, "default": 12, "decision": 1200, "promotion": 120}
    )
    assert policy.months_for("decision") == 1200 and policy.months_for("promotion") == 120
    assert policy.months_for("training") == 12 and policy.minimum == 12


def test_cutoff_is_calendar_months() -> None:
    now = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)
    assert subtract_months(now, 1) == dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    assert subtract_months(now, 25) == dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)
    assert RetentionPolicy.from_params(None).cutoff("decision", now).year == 2024


@given(
    when=st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    months=st.integers(0, 600),
)
def test_subtracting_months_moves_back_that_many_months(when: dt.datetime, months: int) -> None:
    back = subtract_months(when, months)
    assert (when.year * 12 + when.month) - (back.year * 12 + back.month) == months
    assert back.day <= when.day and back.time() == when.time()
    assert back <= when
