"""Retention periods: months, the legal floor, and calendar arithmetic."""

from __future__ import annotations

import datetime as dt

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
    with pytest.raises(ValueError, match="below the minimum of 6"):
        RetentionPolicy.from_params({"default": 2})
    with pytest.raises(ValueError, match="below the minimum of 12"):
        RetentionPolicy.from_params({"minimum": 12, "review": 10})
    with pytest.raises(ValueError, match="whole number"):
        RetentionPolicy.from_params({"decision": 2.5})


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
