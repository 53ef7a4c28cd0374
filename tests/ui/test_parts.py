"""The explorer's parts on their own: search parameters and paging, charts, redirects, filters.

Search runs on a small in-memory ledger (:class:`FakeLedger`) that answers ``find`` the way
``Ledger.find`` does (seq order, ``offset``, keyset ``after``, a model filter), so paging can be
walked page by page and checked against the decisions it holds. The last test uses the session's
explorer app (on the registry fake): the explorer state is kept in ``app.state.explorer``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient

from governance.ledger import IntegrityError, LedgerError, Record
from governance.service.ui import (
    BadRequest,
    Explorer,
    SearchFilters,
    decision_search,
    score_gauge,
    search,
)
from governance.service.ui.charts import contribution_chart
from governance.service.ui.decision_search import DEFAULT_LIMIT, MAX_LIMIT, MAX_TRAIL, parse_time
from governance.service.ui.render import ago_text, num_text, short_text, value_text
from governance.service.ui.sessions import safe_next

if TYPE_CHECKING:  # the fixture's type, from tests/ui/conftest.py (annotations only)
    from conftest import Explorer as Fixture


def _decision(seq: int, model: str = "m", outcome: str = "approve") -> Record:
    body = {"model": {"name": model, "version": "1"}, "outcome": outcome, "score": 0.5}
    return Record(seq, f"d{seq}", "decision", f"2026-01-01T00:00:{seq:02d}", "", "", body, b"")


class FakeLedger:
    """Decisions in seq order, with reviews (``events``) by decision id."""

    def __init__(self, records: list[Record], events: dict[str, list[Record]] | None = None):
        self.records = records
        self.events = events or {}
        self.calls: list[dict[str, Any]] = []
        self.fail: LedgerError | None = None

    def find(self, **query: Any) -> list[Record]:
        self.calls.append(query)
        if self.fail is not None:
            raise self.fail
        found = [
            r
            for r in self.records
            if (query.get("model") in (None, r.body["model"]["name"]))
            and (query.get("after") is None or r.seq > query["after"])
        ]
        start = query.get("offset", 0)
        return found[start : start + query["limit"]]

    def get(self, record_id: str) -> Record | None:
        return next((r for r in self.records if r.id == record_id), None)

    def events_for(self, record_id: str) -> list[Record]:
        return self.events.get(record_id, [])


def _override(seq: int, decision: str, outcome: str) -> Record:
    body = {"decision_id": decision, "kind": "override", "outcome": outcome}
    return Record(seq, f"r{seq}", "review", "2026-01-02T00:00:00", "", "", body, b"")


def _params(query: str | None) -> dict[str, str]:
    assert query is not None
    return dict(parse_qsl(query))


# -- search parameters -----------------------------------------------------------------------


def test_empty_parameters_give_the_defaults() -> None:
    f = SearchFilters.parse({})
    assert f == SearchFilters() and f.empty and not f.scans
    assert f.limit == DEFAULT_LIMIT and f.offset == 0 and f.after is None
    assert f.query() == ""


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"limit": "0"}, "limit must be between 1 and 200"),
        ({"limit": str(MAX_LIMIT + 1)}, "limit must be between"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"offset": "-1"}, "offset must be between"),
        ({"version": "2"}, "a model version needs the model name"),
        ({"status": "lost"}, "status must be one of decided, contested"),
        ({"after": "5", "offset": "10"}, "after pages by key"),
        ({"after": "5", "outcome": "deny"}, "after pages by key"),
        ({"trail": "0,x"}, "trail must be a whole number"),
    ],
)
def test_unusable_parameters_say_which_and_why(params: dict[str, str], words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        SearchFilters.parse(params)


def test_parameters_round_trip_through_the_query_string() -> None:
    params = {
        "subject_id": " s-1 ",
        "model": "m",
        "version": "2",
        "outcome": "deny",
        "status": "contested",
        "since": "2026-01-01T00:00",
        "limit": "20",
        "offset": "40",
        "trail": "0,20",
    }
    f = SearchFilters.parse(params)
    assert f.subject_id == "s-1" and f.trail == (0, 20) and f.scans and not f.empty
    assert SearchFilters.parse(_params(f.query())) == f
    assert "offset" not in _params(f.query(offset=0))


def test_a_long_trail_keeps_its_last_offsets() -> None:
    trail = ",".join(str(i) for i in range(MAX_TRAIL + 10))
    f = SearchFilters.parse({"trail": trail})
    assert f.trail == tuple(range(10, MAX_TRAIL + 10))


def test_times_without_a_zone_are_utc() -> None:
    assert parse_time("2026-03-04 05:06", "from") == "2026-03-04T05:06:00.000000Z"
    assert parse_time("2026-03-04T05:06:00+02:00", "from") == "2026-03-04T03:06:00.000000Z"
    assert parse_time("0999-01-01", "from") == "0999-01-01T00:00:00.000000Z"
    assert parse_time("  ", "from") is None
    with pytest.raises(BadRequest, match="from: 'yesterday' is not a date"):
        parse_time("yesterday", "from")


# -- paging ----------------------------------------------------------------------------------


def test_keyset_paging_walks_every_decision_once() -> None:
    ledger = FakeLedger([_decision(s) for s in range(1, 8)])
    f = SearchFilters.parse({"limit": "3", "after": "0"})
    seen: list[int] = []
    pages = 0
    while True:
        result = search(ledger, f)
        pages += 1
        seen += [row.seq for row in result.rows]
        assert result.first_query is not None and "after" not in _params(result.first_query)
        if result.next_query is None:
            break
        f = SearchFilters.parse(_params(result.next_query))
        assert f.after == seen[-1] and f.offset == 0
    assert seen == list(range(1, 8)) and pages == 3
    assert all(call["after"] is not None for call in ledger.calls)


def test_offset_paging_links_to_the_neighbouring_pages() -> None:
    ledger = FakeLedger([_decision(s) for s in range(1, 11)])
    result = search(ledger, SearchFilters.parse({"limit": "4", "offset": "4"}))
    assert [r.seq for r in result.rows] == [5, 6, 7, 8]
    assert _params(result.next_query)["offset"] == "8"
    assert "offset" not in _params(result.prev_query)  # offset 0 is left out
    assert "offset" not in _params(result.first_query)
    last = search(ledger, SearchFilters.parse({"limit": "4", "offset": "8"}))
    assert [r.seq for r in last.rows] == [9, 10] and last.next_query is None


def test_an_outcome_filter_uses_the_effective_outcome_and_carries_the_trail() -> None:
    records = [_decision(s, outcome="deny" if s % 2 else "approve") for s in range(1, 11)]
    # decision 2 (approved) was overridden to deny; decision 3 (denied) to approve
    events = {"d2": [_override(20, "d2", "deny")], "d3": [_override(21, "d3", "approve")]}
    ledger = FakeLedger(records, events)
    result = search(ledger, SearchFilters.parse({"outcome": "deny", "limit": "2"}))
    assert [(r.seq, r.outcome, r.effective_outcome) for r in result.rows] == [
        (1, "deny", "deny"),
        (2, "approve", "deny"),
    ]
    assert result.rows[1].status == "overridden" and result.prev_query is None
    following = SearchFilters.parse(_params(result.next_query))
    assert following.offset == 2 and following.trail == (0,)
    second = search(ledger, following)
    assert [r.seq for r in second.rows] == [5, 7]
    assert _params(second.prev_query).get("offset", "0") == "0"
    assert "trail" not in _params(second.prev_query)


def test_a_scan_stops_at_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision_search, "SCAN_BUDGET", 5)
    ledger = FakeLedger([_decision(s) for s in range(1, 21)])
    result = search(ledger, SearchFilters.parse({"outcome": "deny"}))
    assert result.rows == [] and result.scanned == 5 and result.budget_hit
    assert _params(result.next_query)["offset"] == "5"


def test_a_scan_to_the_end_has_no_next_page() -> None:
    ledger = FakeLedger([_decision(s) for s in range(1, 4)])
    result = search(ledger, SearchFilters.parse({"outcome": "deny"}))
    assert result.rows == [] and result.scanned == 3
    assert not result.budget_hit and result.next_query is None


def test_a_decision_id_finds_that_decision_only() -> None:
    ledger = FakeLedger([_decision(s) for s in range(1, 4)])
    assert [r.id for r in search(ledger, SearchFilters(decision_id="d2")).rows] == ["d2"]
    missing = search(ledger, SearchFilters(decision_id="nope"))
    assert missing.rows == [] and missing.note == "no decision with id nope"
    assert ledger.calls == []


def test_ledger_refusals_become_bad_requests_but_integrity_errors_do_not() -> None:
    ledger = FakeLedger([_decision(1)])
    ledger.fail = LedgerError("limit must be in 1..10000")
    with pytest.raises(BadRequest, match="limit must be in"):
        search(ledger, SearchFilters())
    ledger.fail = IntegrityError("record 1 does not match its hash")
    with pytest.raises(IntegrityError):
        search(ledger, SearchFilters())


def test_filters_reach_the_ledger_query() -> None:
    ledger = FakeLedger([_decision(1, model="a"), _decision(2, model="b")])
    f = replace(SearchFilters(), model="b", since="2026-01-01 00:00")
    assert [r.seq for r in search(ledger, f).rows] == [2]
    call = ledger.calls[-1]
    assert call["model"] == "b" and call["type"] == "decision"
    assert call["since"] == "2026-01-01T00:00:00.000000Z" and call["subject_id"] is None


# -- charts ----------------------------------------------------------------------------------


def test_the_gauge_clamps_to_its_track() -> None:
    g = score_gauge(1.7, 0.5, width=220)
    assert (g.left, g.right) == (20.0, 200.0)
    assert g.score_x == g.right and g.threshold_x == pytest.approx(110.0) and g.above
    low = score_gauge(-0.2, 0.5, width=220)
    assert low.score_x == low.left and not low.above


def test_a_chart_of_zero_contributions_draws_hairlines() -> None:
    chart = contribution_chart({"a": 0.0, "b": 0.0}, {}, 0.0, 0.0)
    assert [b.feature for b in chart.bars] == ["a", "b"]
    assert all(b.width == 0.5 and b.positive for b in chart.bars)
    assert chart.height == int(chart.top + 2 * chart.row + 8)
    assert [b.y for b in chart.bars] == [chart.top, chart.top + chart.row]


# -- sign-in redirects and formatting --------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/decisions/abc", "/ui/decisions/abc"),
        ("/ui?x=1", "/ui?x=1"),
        ("/ui", "/ui"),
        ("", "/ui/decisions"),
        ("//evil.example/ui", "/ui/decisions"),
        ("https://evil.example/ui", "/ui/decisions"),
        ("/uix/decisions", "/ui/decisions"),
        ("/ui\\..\\x", "/ui/decisions"),
        ("/ui/\nSet-Cookie: x", "/ui/decisions"),
    ],
)
def test_sign_in_only_returns_inside_the_explorer(target: str, expected: str) -> None:
    assert safe_next(target, "/ui") == expected


def test_formatting_filters() -> None:
    assert num_text(1234567) == "1,234,567" and num_text(math.nan) == "n/a"
    assert num_text(0.12345) == "0.123" and num_text(None) == "—" and num_text(True) == "true"
    assert (
        ago_text(59) == "59 s" and ago_text(600) == "10 min" and ago_text(3 * 86400) == ("3.0 days")
    )
    assert short_text("abcdefghijklmnop", 4) == "abcd…" and short_text(None) == ""
    assert value_text(None) == "null (missing)" and value_text(0.1 + 0.2) == "0.3"


# -- the explorer's state --------------------------------------------------------------------


def test_the_explorer_state_lives_on_the_app(client: TestClient, explorer: Fixture) -> None:
    assert client.get("/ui/login").status_code == 200
    state = explorer.app.state.explorer
    assert isinstance(state, Explorer)
    assert state.ledger is explorer.ledger and state.keys is explorer.keys
