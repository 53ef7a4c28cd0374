"""``iter_find``: every matching record exactly once, in seq order, whatever the page size.

Batches (``append_many``) share one timestamp, so a page boundary can fall inside a run of
equal timestamps: the case time-based paging must get right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Entry, Ledger
from governance.ledger.paging import iter_find


def _fill(ledger: Ledger, body: Callable[..., dict[str, Any]], batches: list[int]) -> None:
    n = 0
    for size in batches:
        entries = []
        for _ in range(size):
            model = "a" if n % 3 else "b"
            entries.append(Entry("decision", body(n, model=model, version=str(n % 2 + 1))))
            n += 1
        ledger.append_many(entries)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
    page=st.integers(min_value=1, max_value=6),
)
def test_iter_find_equals_one_big_find(
    make_backend: Callable[[str], Any],
    decision_body: Callable[..., dict[str, Any]],
    batches: list[int],
    page: int,
) -> None:
    ledger = make_backend("sqlite").open()
    _fill(ledger, decision_body, batches)
    for query in ({}, {"model": "a"}, {"model": "b", "version": "2"}, {"type": "decision"}):
        every = ledger.find(limit=10_000, **query)
        paged = list(iter_find(ledger, page_size=page, **query))
        assert [r.seq for r in paged] == [r.seq for r in every], query


@pytest.mark.parametrize("page", [1, 4])
def test_iter_find_keeps_a_time_window(
    ledger: Ledger, decision_body: Callable[..., dict[str, Any]], page: int
) -> None:
    _fill(ledger, decision_body, [3, 1, 5, 2])
    every = ledger.find(limit=10_000)
    since, until = every[2].ts, every[-1].ts
    expected = ledger.find(since=since, until=until, limit=10_000)
    assert expected and len(expected) < len(every)
    got = list(iter_find(ledger, page_size=page, since=since, until=until))
    assert [r.seq for r in got] == [r.seq for r in expected]
