"""The ledger facade on both stores: append, query, checkpoints, proofs, append-only storage."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import (
    EncodedBody,
    Entry,
    Fence,
    FenceError,
    Ledger,
    LedgerError,
    Receipt,
    _commit,
    leaf_hash,
    sqlite_store,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from governance.ledger.canonical import canonical_json, is_canonical
from governance.ledger.records import GENESIS_HEX, index_columns, record_hash

Backend = Any  # tests/ledger/conftest.py:Backend (conftest modules are not importable)
Body = Callable[..., dict[str, Any]]


def _contiguous(receipts: list[Receipt], start: int = 0) -> bool:
    return [r.seq for r in receipts] == list(range(start, start + len(receipts)))


def test_append_get_and_receipts(ledger: Ledger, decision_body: Body) -> None:
    assert ledger.size() == 0
    assert ledger.head().hash == GENESIS_HEX and ledger.head().ts is None
    first = ledger.append("decision", decision_body(0), subject_id="applicant-1")
    assert first.seq == 0 and uuid.UUID(first.id).version == 7
    batch = ledger.append_many([Entry("decision", decision_body(i)) for i in range(1, 6)])
    assert _contiguous([first, *batch])
    assert len({r.id for r in [first, *batch]}) == 6
    head = ledger.head()
    assert head.size == ledger.size() == 6
    assert head.hash == batch[-1].hash and head.ts == batch[-1].ts

    record = ledger.get(first.id)
    assert record is not None
    assert (record.seq, record.id, record.type, record.hash) == (
        0,
        first.id,
        "decision",
        first.hash,
    )
    assert record.prev == GENESIS_HEX
    assert record.body["model"] == {
        "name": "hmda-logistic",
        "version": "3",
        "alias": "champion",
        "lineage_id": "ab12",
    }
    assert record.body["subject_key"] == ledger.subject_key("applicant-1")
    assert "applicant-1" not in record.data.decode()
    assert is_canonical(record.data) and record_hash(record.data).hex() == record.hash
    assert record.hash == leaf_hash(record.data).hex()
    second = ledger.get_seq(1)
    assert second is not None and second.prev == first.hash
    assert ledger.get(str(uuid.uuid4())) is None and ledger.get_seq(99) is None
    decoded = ledger.decode(record)
    assert decoded["seq"] == 0 and decoded["body"] == record.body  # no PII: unchanged


def test_timestamps_never_decrease(ledger: Ledger) -> None:
    receipts = [ledger.append("decision", {"n": i}) for i in range(5)]
    receipts += ledger.append_many([Entry("decision", {"n": i}) for i in range(5)])
    stamps = [r.ts for r in receipts]
    assert stamps == sorted(stamps)
    assert len(set(stamps[5:])) == 1  # one batch, one commit time


def test_find_by_subject_model_type_and_ref(ledger: Ledger, decision_body: Body) -> None:
    a = [ledger.append("decision", decision_body(i), subject_id="alice") for i in range(3)]
    ledger.append("decision", decision_body(9, version="4"), subject_id="bob")
    ledger.append("decision", decision_body(8, model="other"), subject_id="bob")
    outcome = ledger.append("outcome", {"decision_id": a[1].id, "actual": "repaid"})
    review = ledger.append("review", {"decision_id": a[1].id, "reviewer": "r1", "action": "upheld"})
    ledger.append("promotion", {"model": {"name": "hmda-logistic", "version": "4"}})

    assert [r.id for r in ledger.find(subject_id="alice")] == [r.id for r in a]
    assert [r.seq for r in ledger.find(subject_id="bob")] == [3, 4]
    assert ledger.find(subject_id="nobody") == []
    assert [r.seq for r in ledger.find(subject_key=ledger.subject_key("bob"))] == [3, 4]
    assert [r.seq for r in ledger.find(model="hmda-logistic", version="3")] == [0, 1, 2]
    assert [r.seq for r in ledger.find(model="hmda-logistic", version=4)] == [3, 7]
    assert [r.seq for r in ledger.find(model="hmda-logistic")] == [0, 1, 2, 3, 7]
    assert [r.seq for r in ledger.find(model="other")] == [4]
    assert [r.seq for r in ledger.find(type="promotion")] == [7]
    assert [r.id for r in ledger.events_for(a[1].id)] == [outcome.id, review.id]
    assert [r.id for r in ledger.find(ref=a[1].id, type="review")] == [review.id]
    assert ledger.events_for(a[0].id) == []
    assert [r.seq for r in ledger.find(limit=3, offset=2)] == [2, 3, 4]
    assert [r.seq for r in ledger.find(subject_id="alice", limit=2, offset=1)] == [1, 2]
    with pytest.raises(LedgerError):
        ledger.find(version="3")
    with pytest.raises(LedgerError):
        ledger.find(limit=0)
    with pytest.raises(ValueError, match="unknown event type"):
        ledger.find(type="nope")


def test_find_by_time_range(ledger: Ledger) -> None:
    early = [ledger.append("decision", {"n": i}) for i in range(3)]
    time.sleep(0.01)
    middle = ledger.append_many([Entry("decision", {"n": i}) for i in range(3, 7)])
    time.sleep(0.01)
    late = [ledger.append("decision", {"n": i}) for i in range(7, 9)]
    start, end = middle[0].ts, late[0].ts
    assert [r.seq for r in ledger.find(since=start, until=end)] == [3, 4, 5, 6]
    assert [r.seq for r in ledger.find(since=start)] == list(range(3, 9))
    assert [r.seq for r in ledger.find(until=start)] == [0, 1, 2]
    as_datetime = datetime.fromisoformat(start)
    assert [r.seq for r in ledger.find(since=as_datetime, until=end)] == [3, 4, 5, 6]
    assert [r.seq for r in ledger.find(since=start, until=end, limit=2, offset=1)] == [4, 5]
    after = datetime.fromisoformat(late[-1].ts) + timedelta(seconds=1)
    assert ledger.find(since=after) == []
    assert ledger.find(since=end, until=start) == []
    before = datetime.fromisoformat(early[0].ts) - timedelta(days=1)
    assert len(ledger.find(since=before.astimezone(UTC).isoformat())) == 9
    with pytest.raises(LedgerError, match="time zone"):
        ledger.find(since="2020-01-01T00:00:00")
    with pytest.raises(LedgerError, match="ISO 8601"):
        ledger.find(since="yesterday")


@pytest.mark.parametrize("bound", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_bound_outside_the_years_utc_can_hold_is_refused(ledger: Ledger, bound: str) -> None:
    ledger.append("decision", {"n": 0})
    for name in ("since", "until"):
        with pytest.raises(LedgerError, match=f"{name}: .* outside the years 1 to 9999 in UTC"):
            ledger.find(**{name: bound})


def test_a_time_bound_before_the_year_1000_compares_as_a_time(ledger: Ledger) -> None:
    """The bound is written with a 4-digit year, as the records' times are: ``999-...``
    compared as text with ``2026-...`` would sort after it."""
    ledger.append_many([Entry("decision", {"n": i}) for i in range(3)])
    for early in ("0999-01-01T00:00:00Z", "0001-01-01T00:00:00Z"):
        assert [r.seq for r in ledger.find(since=early)] == [0, 1, 2]
        assert ledger.find(until=early) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"type": "nope", "body": {}}, "unknown event type"),
        ({"type": "decision", "body": {"score": float("nan")}}, "NaN"),
        ({"type": "decision", "body": {"x": (1, 2)}}, "tuple"),
        ({"type": "decision", "body": ["not", "an", "object"]}, "JSON object"),
        ({"type": "decision", "body": {}, "pii": {"name": "x"}}, "needs subject_id"),
        ({"type": "decision", "body": {"pii": "plain"}}, "reserved"),
        ({"type": "outcome", "body": {"actual": 1}}, "decision_id"),
        ({"type": "outcome", "body": {"decision_id": "x"}}, "record id"),
        ({"type": "decision", "body": {"model": "m"}}, "body.model"),
        ({"type": "decision", "body": {"model": {"name": "a\x00b"}}}, "NUL"),
        ({"type": "decision", "body": {"model": {"name": "m", "version": "\x00"}}}, "NUL"),
        ({"type": "decision", "body": {"subject_key": "ab"}}, "subject_key"),
        ({"type": "decision", "body": {}, "record_id": "not-a-uuid"}, "UUID"),
    ],
)
def test_bad_input_writes_nothing(ledger: Ledger, kwargs: dict[str, object], match: str) -> None:
    ledger.append("decision", {"ok": True})
    kwargs = dict(kwargs)
    type_, body = kwargs.pop("type"), kwargs.pop("body")
    with pytest.raises((ValueError, TypeError), match=match):
        ledger.append(type_, body, **kwargs)  # type: ignore[arg-type]
    assert ledger.size() == 1


def test_a_nul_in_the_model_is_refused_on_every_path(ledger: Ledger) -> None:
    """PostgreSQL's text cannot hold a NUL, so no store takes one: a batch's encoded bodies and
    a group with one bad entry are refused too, with nothing written."""
    body = {"model": {"name": "m\x00", "version": "1"}}
    encoded = EncodedBody(canonical_json(body), body)
    for entries in (
        [Entry("decision", encoded)],
        [Entry("decision", {"n": 1}), Entry("decision", body)],
    ):
        with pytest.raises(ValueError, match="NUL"):
            ledger.append_many(entries)
    assert ledger.size() == 0


def test_a_nul_written_before_the_check_still_verifies(
    make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal is the append's alone: verification re-derives the index columns without it,
    so a SQLite ledger that took such a name before still verifies, and its record is found."""
    with make_backend("sqlite").open() as ledger:
        monkeypatch.setattr(_commit, "_append_columns", index_columns)  # the code before
        ledger.append("decision", {"model": {"name": "m\x00", "version": "1"}})
        monkeypatch.undo()
        with pytest.raises(ValueError, match="NUL"):
            ledger.append("decision", {"model": {"name": "m\x00", "version": "1"}})
        assert ledger.verify().ok
        assert [r.seq for r in ledger.find(model="m\x00")] == [0]


def test_append_many_is_all_or_nothing(ledger: Ledger) -> None:
    items = [Entry("decision", {"n": i}) for i in range(5)] + [Entry("decision", {"bad": {1, 2}})]
    with pytest.raises(TypeError) as info:
        ledger.append_many(items)
    assert any("item 5" in note for note in getattr(info.value, "__notes__", []))
    assert ledger.size() == 0
    taken = ledger.append("decision", {"n": 0}).id
    with pytest.raises(Exception):  # noqa: B017 - the driver's unique violation
        ledger.append_many([Entry("decision", {"n": 1}), Entry("decision", {"n": 2}, id=taken)])
    assert ledger.size() == 1
    with pytest.raises(ValueError, match="twice"):
        same = str(uuid.uuid4())
        ledger.append_many([Entry("decision", {}, id=same), Entry("decision", {}, id=same)])
    assert ledger.append_many([]) == []
    mapped = ledger.append_many([{"type": "decision", "body": {"n": 3}, "subject_id": "s"}])
    assert mapped[0].seq == 1


def test_caller_supplied_record_id(ledger: Ledger) -> None:
    chosen = str(uuid.uuid4())
    receipt = ledger.append("decision", {"n": 1}, record_id=chosen)
    assert receipt.id == chosen
    record = ledger.get(chosen)
    assert record is not None and record.id == chosen


def test_body_subject_key_must_match_subject_id(ledger: Ledger) -> None:
    other = ledger.subject_key("someone-else")
    with pytest.raises(ValueError, match="contradicts"):
        ledger.append("decision", {"subject_key": other}, subject_id="me")
    receipt = ledger.append("decision", {"subject_key": ledger.subject_key("me")}, subject_id="me")
    assert receipt.seq == 0


def test_concurrent_threads_share_commits(ledger: Ledger) -> None:
    receipts: list[Receipt] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(25):
            got = ledger.append("decision", {"thread": n, "i": i}) if i % 5 else None
            got_many = ledger.append_many(
                [Entry("decision", {"t": n, "i": i, "k": k}) for k in range(3)]
            )
            with lock:
                receipts.extend(([got] if got else []) + got_many)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.seq for r in receipts) == list(range(ledger.size()))
    assert len({r.id for r in receipts}) == len(receipts) == ledger.size()
    assert ledger.verify().ok


@pytest.mark.parametrize("table", ["records", "checkpoints", "meta"])
def test_update_and_delete_are_refused(ledger: Ledger, backend: Backend, table: str) -> None:
    ledger.append("decision", {"n": 1})
    ledger.checkpoint()
    column = {"records": "type", "checkpoints": "key_id", "meta": "value"}[table]
    with pytest.raises(Exception, match="append-only"):
        backend.sql(f"UPDATE {backend.table(table)} SET {column} = 'x'")
    with pytest.raises(Exception, match="append-only"):
        backend.sql(f"DELETE FROM {backend.table(table)}")
    if backend.kind == "postgres":
        with pytest.raises(Exception, match="append-only"):
            backend.sql(f"TRUNCATE {backend.table(table)}")
    assert ledger.verify().ok and ledger.size() == 1


def test_checkpoint_and_proofs(ledger: Ledger) -> None:
    receipts = ledger.append_many([Entry("decision", {"n": i}) for i in range(7)])
    cp7 = ledger.checkpoint()
    assert cp7.size == 7 and verify_checkpoint(cp7, ledger.public_key)
    assert ledger.checkpoint_dir.latest() == cp7
    assert ledger.checkpoints() == [cp7]
    receipts += ledger.append_many([Entry("decision", {"n": i}) for i in range(7, 12)])

    proof = ledger.inclusion_proof(receipts[3].id)
    assert proof["verified"] and proof["tree_size"] == 7 and proof["leaf_index"] == 3
    assert proof["leaf_hash"] == receipts[3].hash
    assert leaf_hash(proof["record"].encode()).hex() == proof["leaf_hash"]
    assert verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        3,
        7,
        [bytes.fromhex(p) for p in proof["proof"]],
        bytes.fromhex(proof["checkpoint"]["root"]),
    )
    late = ledger.inclusion_proof(receipts[10].id)  # not covered yet: a new checkpoint is made
    assert late["verified"] and late["tree_size"] == 12
    assert len(ledger.checkpoints()) == 2

    consistency = ledger.consistency_proof(7, 12)
    assert consistency["verified"]
    assert consistency["old_checkpoint"]["root"] == cp7.root.hex()
    assert verify_consistency(
        7,
        12,
        bytes.fromhex(consistency["old_root"]),
        bytes.fromhex(consistency["new_root"]),
        [bytes.fromhex(p) for p in consistency["proof"]],
    )
    assert ledger.consistency_proof(3)["new_size"] == 12
    with pytest.raises(LedgerError):
        ledger.consistency_proof(0, 5)
    with pytest.raises(LedgerError):
        ledger.consistency_proof(5, 99)
    with pytest.raises(LedgerError):
        ledger.inclusion_proof(str(uuid.uuid4()))
    result = ledger.verify()
    assert result.ok and result.records == 12 and result.checkpoints == 2


def test_empty_ledger_verifies_and_checkpoints(ledger: Ledger) -> None:
    assert ledger.verify().ok
    cp = ledger.checkpoint()
    assert cp.size == 0
    assert ledger.verify().ok


def test_reopen_keeps_keys_and_refuses_other_keys(backend: Backend, tmp_path: Path) -> None:
    first = backend.open()
    receipt = first.append("decision", {"n": 1}, subject_id="carol", pii={"name": "Carol"})
    first.checkpoint()
    first.close()
    again = backend.open()
    record = again.get(receipt.id)
    assert record is not None and again.decode(record)["body"]["pii"] == {"name": "Carol"}
    assert [r.id for r in again.find(subject_id="carol")] == [receipt.id]
    assert again.verify().ok
    with pytest.raises(LedgerError, match="keys"):
        backend.open(home=tmp_path / "another-home")


def test_a_batch_reuses_each_known_subjects_data_key_and_makes_one_for_each_new(
    ledger: Ledger,
) -> None:
    def batch(subjects: range) -> list[str]:
        receipts = ledger.append_many(
            {"type": "decision", "body": {"n": i}, "subject_id": f"s{i}", "pii": {"name": f"S{i}"}}
            for i in subjects
        )
        return [r.id for r in receipts]

    def kid(record_id: str) -> str:
        record = ledger.get(record_id)
        assert record is not None
        return str(json.loads(record.data)["body"]["pii"]["kid"])

    first = dict(zip(range(40), batch(range(40)), strict=True))
    second = dict(zip(range(20, 60), batch(range(20, 60)), strict=True))
    assert all(kid(second[i]) == kid(first[i]) for i in range(20, 40))
    kids = {kid(second[i]) for i in range(40, 60)}
    assert len(kids) == 20 and not kids & {kid(r) for r in first.values()}
    ledger.forget("s30")
    assert [ledger.decode(ledger.get(r))["body"]["pii"] for r in (first[30], second[30])] == [
        "[erased]",
        "[erased]",
    ]
    assert ledger.decode(ledger.get(second[31]))["body"]["pii"] == {"name": "S31"}
    assert ledger.decode(ledger.get(second[59]))["body"]["pii"] == {"name": "S59"}
    assert ledger.verify().ok


def test_a_nul_in_what_is_looked_up_finds_nothing_on_both_stores(
    ledger: Ledger, decision_body: Body
) -> None:
    """PostgreSQL's text cannot hold a NUL, and its driver raised DataError on one: a hostile
    id or filter got a server error there, and nothing on SQLite."""
    body = decision_body(1, model="m", version="3")
    ids = [ledger.append("decision", body, subject_id=f"s{i}").id for i in range(3)]
    assert ledger.get(ids[0] + "\x00") is None
    for offset in (0, 1):  # 1: the store seeks the offset's position first
        assert ledger.find(model="m\x00", offset=offset) == []
        assert ledger.find(model="m", version="3\x00", offset=offset) == []
        assert ledger.find(ref="\x00", offset=offset) == []
    assert [r.id for r in ledger.find(model="m", version="3", offset=1)] == ids[1:]
    assert ledger.store.data_keys(["\x00"]) == {}


def test_open_urls(tmp_path: Path) -> None:
    plain = Ledger.open(tmp_path / "plain.db", home=tmp_path / "h1")
    plain.append("decision", {})
    plain.close()
    normal = Ledger.open(f"sqlite:///{tmp_path}/n.db?synchronous=normal", home=tmp_path / "h2")
    assert normal.store.synchronous == "NORMAL"
    normal.close()
    with pytest.raises(LedgerError, match="unknown sqlite URL option"):
        Ledger.open(f"sqlite:///{tmp_path}/x.db?bogus=1", home=tmp_path / "h3")
    with pytest.raises(LedgerError, match="unsupported"):
        Ledger.open("mysql://x/y", home=tmp_path / "h4")
    with Ledger.open(f"sqlite:///{tmp_path}/plain.db", home=tmp_path / "h1") as again:
        assert again.size() == 1


def test_iter_records(ledger: Ledger) -> None:
    ledger.append_many([Entry("decision", {"n": i}) for i in range(10)])
    assert [r.seq for r in ledger.iter_records(3, 6)] == [3, 4, 5]
    assert [r.body["n"] for r in ledger.iter_records()] == list(range(10))


def test_register_event_type(ledger: Ledger) -> None:
    from governance.ledger import register_event_type

    register_event_type("monitoring.drift", "drift report", required=("feature",))
    with pytest.raises(ValueError, match="feature"):
        ledger.append("monitoring.drift", {})
    assert ledger.append("monitoring.drift", {"feature": "income"}).seq == 0
    with pytest.raises(ValueError):
        register_event_type("Bad Name")


def test_canonical_bodies_round_trip(ledger: Ledger) -> None:
    body = {"unicode": "Zoë 日本 \u2028", "nested": {"b": [1, 2.5, None], "a": True}, "big": 2**63}
    receipt = ledger.append("decision", body)
    record = ledger.get(receipt.id)
    assert record is not None and record.body == body
    assert canonical_json(record.body) in record.data


@pytest.mark.postgres
def test_postgres_least_privilege_role(make_backend: Callable[[str], Backend], pg_url: str) -> None:
    import psycopg

    from governance.ledger.postgres_store import least_privilege_sql

    backend = make_backend("postgres")
    owner = backend.open()
    first = owner.append("decision", {"n": 1}, subject_id="dave", pii={"name": "Dave"})
    role = f"gl_writer_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(least_privilege_sql(role, backend.schema, login=True).encode())
    try:
        # Even with every trigger disabled, the role cannot change or remove ledger rows.
        with psycopg.connect(pg_url, autocommit=True) as admin:
            for table in ("records", "checkpoints", "meta"):
                admin.execute(f"ALTER TABLE {backend.table(table)} DISABLE TRIGGER USER")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"SET ROLE {role}")
            for statement in (
                f"UPDATE {backend.table('records')} SET type = 'x'",
                f"DELETE FROM {backend.table('records')}",
                f"TRUNCATE {backend.table('records')}",
                f"DELETE FROM {backend.table('checkpoints')}",
                f"UPDATE {backend.table('meta')} SET value = 'x'",
                f"DROP TRIGGER records_append_only ON {backend.table('records')}",
                f"ALTER TABLE {backend.table('records')} DISABLE TRIGGER USER",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement.encode())
        with psycopg.connect(pg_url, autocommit=True) as admin:
            for table in ("records", "checkpoints", "meta"):
                admin.execute(f"ALTER TABLE {backend.table(table)} ENABLE TRIGGER USER")
        # The role can do everything the ledger needs: append, read, checkpoint, forget.
        host_url = pg_url.replace("postgresql://", f"postgresql://{role}@", 1)
        if "@" in pg_url.split("//", 1)[1]:
            pytest.skip("GOVERNANCE_TEST_PG_URL names a user; cannot log in as the test role")
        writer = Ledger.open(f"{host_url}?schema={backend.schema}", home=backend.home)
        try:
            receipt = writer.append("decision", {"n": 2}, subject_id="erin", pii={"name": "Erin"})
            assert receipt.seq == 1
            writer.checkpoint()
            writer.forget("dave")
            record = writer.get(first.id)
            assert record is not None and writer.decode(record)["body"]["pii"] == "[erased]"
            assert writer.verify().ok
        finally:
            writer.close()
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}".encode())
            admin.execute(f"DROP ROLE {role}".encode())


def _promotion(model: str, version: str) -> dict[str, Any]:
    return {"action": "promote", "model": {"name": model, "version": version}, "alias": "champion"}


def test_a_fence_refuses_an_append_after_a_move_of_its_model(ledger: Ledger) -> None:
    ledger.append("promotion", _promotion("m", "1"))
    since = ledger.size()
    decision = {"model": {"name": "m", "version": "1"}, "outcome": "approve"}
    first = ledger.append_many([Entry("decision", decision)], fence=Fence("m", since))
    assert first[0].seq == since  # nothing moved since: written
    ledger.append("promotion", _promotion("other", "7"))  # another model's move: no matter
    ledger.append_many([Entry("decision", decision)], fence=Fence("m", since))
    moved = ledger.append("registration", _promotion("m", "2"))
    size = ledger.size()
    with pytest.raises(FenceError, match=f"record {moved.seq}"):
        ledger.append_many([Entry("decision", decision)] * 3, fence=Fence("m", since))
    assert ledger.size() == size  # nothing written
    ledger.append_many([Entry("decision", decision)], fence=Fence("m", moved.seq + 1))
    assert ledger.verify().ok


def test_a_failed_fence_fails_only_its_own_request_in_a_group_commit(ledger: Ledger) -> None:
    """Threads share commits; a stale fence must not fail the others' records."""
    ledger.append("promotion", _promotion("m", "1"))
    stale = Fence("m", 0)  # resolved before the promotion above
    results: dict[int, str] = {}
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        try:
            ledger.append_many(
                [Entry("decision", {"n": n})], fence=stale if n == 3 else Fence("m", 1)
            )
            results[n] = "written"
        except FenceError:
            results[n] = "fenced"

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: "fenced" if n == 3 else "written" for n in range(8)}
    assert ledger.size() == 1 + 7


def test_the_sqlite_fence_seeks_the_alias_moves_not_the_models_decisions(tmp_path: Path) -> None:
    """The fence runs on every decision: it must not walk the model's history.

    Without statistics SQLite's planner prefers the (model_name, model_version, type) index
    for ``model_name = ?``, which reads every decision the model ever made (O(ledger) per
    decision); the fence names the (type, seq) index instead.
    """
    conn = sqlite3.connect(tmp_path / "plan.db")
    conn.executescript(sqlite_store.SCHEMA_SQL)
    plan = " ".join(
        str(row[-1])
        for row in conn.execute(f"EXPLAIN QUERY PLAN {sqlite_store._FENCE_SQL}", (0, "m"))
    )
    conn.close()
    assert "records_type (type=? AND rowid>?)" in plan, plan
    assert "records_model_type" not in plan, plan


@pytest.mark.postgres
def test_the_postgres_fence_seeks_the_alias_moves_not_the_models_decisions(
    make_backend: Callable[[str], Backend],
) -> None:
    """The same on PostgreSQL, which takes no index hint, before its first ``ANALYZE``.

    A sharded ledger's fences reach back to when the alias was resolved, so a fence that
    walks the model's decisions costs more with every decision made since.
    """
    backend = make_backend("postgres")
    ledger = backend.open()
    ledger.append("promotion", {"model": {"name": "m", "version": "1"}, "alias": "champion"})
    for _ in range(4):
        ledger.append_many(
            [
                Entry("decision", {"model": {"name": "m", "version": "1"}, "n": i})
                for i in range(500)
            ]
        )
    store = ledger.store
    plan = " ".join(
        str(row[0])
        for row in backend.sql(f"EXPLAIN {store._fence_sql.replace('%s', '?')}", (1, "m"))
    )
    assert "records_type" in plan, plan
    assert "records_model" not in plan, plan
