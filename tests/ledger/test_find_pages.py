"""Paging through ``Ledger.find`` by offset and by keyset (``after``) on both stores.

One ledger of mixed records per store; any combination of filters, offset, ``after`` and limit
must give exactly the records a plain filter over every record gives.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Entry, Ledger, LedgerError

Backend = Any  # tests/ledger/conftest.py:Backend
MODELS = [("m", "1"), ("m", "2"), ("other", "1"), None]
SUBJECTS = ["alice", "bob", None]
N = 120


def _population(ledger: Ledger) -> list[dict[str, Any]]:
    rng = random.Random(20)
    rows, entries = [], []
    for i in range(N):
        model, subject = rng.choice(MODELS), rng.choice(SUBJECTS)
        body: dict[str, Any] = {"n": i}
        if model is not None:
            body["model"] = {"name": model[0], "version": model[1]}
        entries.append(Entry("decision" if i % 7 else "training", body, subject_id=subject))
        rows.append({"seq": i, "model": model, "subject": subject, "type": entries[-1].type})
    for start in range(0, N, 25):
        ledger.append_many(entries[start : start + 25])
    return rows


@pytest.fixture
def paged(backend: Backend) -> tuple[Ledger, list[dict[str, Any]]]:
    ledger = backend.open()
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
