"""Paging through ``Ledger.find`` by offset and by keyset (``after``) on both stores.

One ledger of mixed records per store; any combination of filters, offset, ``after`` and limit
must give exactly the records a plain filter over every record gives. The store keeps a mark at
every third match here (4,096 by default), so deep offsets start from marks, found by earlier
examples or by this one.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Entry, Ledger, LedgerError
from governance.ledger.offset_marks import OffsetMarks

Backend = Any  # tests/ledger/conftest.py:Backend
MODELS = [("m", "1"), ("m", "2"), ("other", "1"), None]
SUBJECTS = ["alice", "bob", None]
N = 120


def _population(ledger: Ledger, n: int = N, seed: int = 20) -> list[dict[str, Any]]:
    """Append ``n`` mixed records; return what each is, in seq order."""
    rng = random.Random(seed)
    rows, entries = [], []
    start = ledger.head().size
    for i in range(start, start + n):
        model, subject = rng.choice(MODELS), rng.choice(SUBJECTS)
        body: dict[str, Any] = {"n": i}
        if model is not None:
            body["model"] = {"name": model[0], "version": model[1]}
        entries.append(Entry("decision" if i % 7 else "training", body, subject_id=subject))
        rows.append({"seq": i, "model": model, "subject": subject, "type": entries[-1].type})
    for first in range(0, n, 25):
        ledger.append_many(entries[first : first + 25])
    return rows


def _matching(rows: list[dict[str, Any]], model: tuple[str, str]) -> list[int]:
    return [r["seq"] for r in rows if r["model"] == model and r["type"] == "decision"]


@pytest.fixture
def paged(backend: Backend) -> tuple[Ledger, list[dict[str, Any]]]:
    ledger = backend.open()
    ledger.store._marks = OffsetMarks(every=3)
    return ledger, _population(ledger)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from(MODELS),
    by_name_only=st.booleans(),
    subject=st.sampled_from(SUBJECTS),
    type_=st.sampled_from([None, "decision", "training"]),
    offset=st.one_of(st.just(0), st.integers(0, N + 5)),
    after=st.one_of(st.none(), st.integers(-1, N + 5)),
    limit=st.integers(1, 40),
)
def test_pages_are_the_filtered_records(
    paged: tuple[Ledger, list[dict[str, Any]]],
    model: tuple[str, str] | None,
    by_name_only: bool,
    subject: str | None,
    type_: str | None,
    offset: int,
    after: int | None,
    limit: int,
) -> None:
    ledger, rows = paged
    kwargs: dict[str, Any] = {"subject_id": subject, "type": type_}
    if model is not None:
        kwargs["model"] = model[0]
        if not by_name_only:
            kwargs["version"] = model[1]

    def matches(row: dict[str, Any]) -> bool:
        if model is not None and (row["model"] is None or row["model"][0] != model[0]):
            return False
        if model is not None and not by_name_only and row["model"] != model:
            return False
        if subject is not None and row["subject"] != subject:
            return False
        if type_ is not None and row["type"] != type_:
            return False
        return after is None or row["seq"] > after

    expected = [r["seq"] for r in rows if matches(r)][offset : offset + limit]
    found = ledger.find(**kwargs, limit=limit, offset=offset, after=after)
    assert [r.seq for r in found] == expected


def test_keyset_pages_walk_every_record_once(
    paged: tuple[Ledger, list[dict[str, Any]]],
) -> None:
    ledger, rows = paged
    want = [r["seq"] for r in rows if r["model"] == ("m", "1")]
    seen: list[int] = []
    after = None
    while page := ledger.find(model="m", version="1", limit=7, after=after):
        seen += [r.seq for r in page]
        after = page[-1].seq
    assert seen == want
    with pytest.raises(LedgerError, match="after must be a seq"):
        ledger.find(after="3")  # type: ignore[arg-type]


def test_marks_hold_as_the_ledger_grows(backend: Backend) -> None:
    """Marks found on a shorter ledger (some past its end) still place every page exactly."""
    ledger = backend.open()
    ledger.store._marks = OffsetMarks(every=4)
    rows = _population(ledger, 60, seed=1)
    for _ in range(3):
        for model in MODELS[:3]:
            want = _matching(rows, model)  # type: ignore[arg-type]
            for offset in range(0, len(want) + 10, 3):
                found = ledger.find(
                    model=model[0], version=model[1], type="decision", limit=5, offset=offset
                )
                assert [r.seq for r in found] == want[offset : offset + 5], (model, offset)
        rows += _population(ledger, 45, seed=len(rows))


def test_a_deep_page_walks_no_further_than_a_mark(tmp_path: Any) -> None:
    """Counted in SQLite VM steps, not time: a page 2,900 matches deep costs what one 60 deep does,
    once the marks are found; without them it walks every match before it."""
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", home=tmp_path / "home")
    body = {"model": {"name": "m", "version": "1"}}
    for _ in range(3):
        ledger.append_many([Entry("decision", body)] * 1000)
    conn = ledger.store.conn  # type: ignore[attr-defined]
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def cost(offset: int) -> int:
        nonlocal steps
        steps = 0
        conn.set_progress_handler(count, 100)
        try:
            page = ledger.find(model="m", version="1", type="decision", limit=10, offset=offset)
        finally:
            conn.set_progress_handler(None, 0)
        assert [r.seq for r in page] == list(range(offset, offset + 10))
        return steps

    walked = cost(2900)  # the default marks, every 4,096: the walk of 2,900 entries
    ledger.store._marks = OffsetMarks(every=64)  # type: ignore[attr-defined]
    cost(2900)  # finds the marks
    near, deep = cost(60), cost(2900)
    assert deep <= 2 * near + 2, (near, deep)
    assert walked > 10 * deep, (walked, deep)
    ledger.close()


def test_offset_marks_seek_each_mark_once() -> None:
    matches = [3 * i + 1 for i in range(50)]  # the seqs of one filter's matches
    calls: list[tuple[int | None, int]] = []

    def seek(seq_from: int | None, skip: int) -> int | None:
        calls.append((seq_from, skip))
        first = 0 if seq_from is None else next(i for i, s in enumerate(matches) if s >= seq_from)
        return matches[first + skip] if first + skip < len(matches) else None

    def check(marks: OffsetMarks, key: str, offset: int) -> None:
        seq_from, skip = marks.start(key, offset, seek)
        first = 0 if seq_from is None else matches.index(seq_from)
        assert 0 <= skip < 4 or first + skip >= len(matches)
        found = matches[first + skip] if first + skip < len(matches) else None
        assert found == (matches[offset] if offset < len(matches) else None), offset

    marks = OffsetMarks(every=4, filters=2)
    for offset in [*range(50), *range(49, -1, -1)]:
        check(marks, "a", offset)
    assert len(calls) == len(set(calls)) == 12  # matches 4, 8, ..., 48, each found once
    check(marks, "a", 57)  # past the end: one seek from match 48 finds nothing
    assert calls[-1] == (matches[48], 4) and len(calls) == 13
    check(marks, "b", 8)
    check(marks, "c", 8)  # "a" is the least recently used of three: dropped
    check(marks, "a", 49)
    assert len(calls) == 13 + 2 + 2 + 12
    with pytest.raises(ValueError, match="at least 1"):
        OffsetMarks(every=0)
