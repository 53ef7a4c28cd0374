"""Tamper evidence: any change to stored records is found, and the first bad seq is named.

The attacker here has full database access: the append-only triggers are dropped (SQLite) or
disabled (PostgreSQL) on a privileged connection before each edit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Checkpoint, CheckpointDirectory, Entry, IntegrityError, Ledger
from governance.ledger.canonical import canonical_json
from governance.ledger.records import encode_record, new_record_ids, record_hash

Backend = Any  # tests/ledger/conftest.py:Backend (conftest modules are not importable)
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
COLUMNS = "id, type, ts, subject_key, subject_tag, model_name, model_version, ref, data, hash"
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

bodies = st.fixed_dictionaries(
    {"n": st.integers(), "note": st.text(max_size=40)},
    optional={"score": st.floats(allow_nan=False, allow_infinity=False), "flag": st.booleans()},
)


def _fill(ledger: Ledger, data: st.DataObject, n: int) -> None:
    """Append ``n`` random records in random batch sizes (so they span several commits)."""
    done = 0
    while done < n:
        size = data.draw(st.integers(1, n - done), label="batch")
        entries = []
        for i in range(size):
            subject = data.draw(st.sampled_from([None, "alice", "bob"]), label="subject")
            entries.append(Entry("decision", data.draw(bodies) | {"i": done + i}, subject))
        ledger.append_many(entries)
        done += size


def _new(make_backend: Callable[[str], Backend], kind: str, data: st.DataObject, n: int) -> Any:
    backend = make_backend(kind)
    ledger = backend.open()
    _fill(ledger, data, n)
    assert ledger.verify().ok
    return backend, ledger


def _row(backend: Backend, seq: int) -> list[Any]:
    rows = backend.sql(
        f"SELECT seq, {COLUMNS} FROM {backend.table('records')} WHERE seq = ?", (seq,)
    )
    return [bytes(v) if isinstance(v, bytes | memoryview) else v for v in rows[0]]


def _insert(backend: Backend, row: list[Any]) -> tuple[str, list[Any]]:
    marks = ", ".join("?" for _ in row)
    return f"INSERT INTO {backend.table('records')} (seq, {COLUMNS}) VALUES ({marks})", row


def _shift_up_from(backend: Backend, seq: int) -> list[tuple[str, list[Any]]]:
    """Statements moving every record at or after ``seq`` one place up (via a big offset)."""
    table = backend.table("records")
    return [
        (f"UPDATE {table} SET seq = seq + 1000001 WHERE seq >= ?", [seq]),
        (f"UPDATE {table} SET seq = seq - 1000000 WHERE seq >= 1000000", []),
    ]


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_flipped_byte_is_found(
    kind: str, make_backend: Callable[[str], Backend], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 20), label="n")
    backend, ledger = _new(make_backend, kind, data, n)
    seq = data.draw(st.integers(0, n - 1), label="seq")
    column = data.draw(st.sampled_from(["data", "data", "data", "hash"]), label="column")
    value = _row(backend, seq)[COLUMNS.split(", ").index(column) + 1]
    offset = data.draw(st.integers(0, len(value) - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    changed = bytearray(value)
    changed[offset] ^= 1 << bit
    backend.sql(
        f"UPDATE {backend.table('records')} SET {column} = ? WHERE seq = ?",
        (bytes(changed), seq),
        bypass=True,
    )
    result = ledger.verify()
    assert not result.ok
    assert result.first_bad == seq, result
    assert result.records == seq


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_deleted_record_is_found(
    kind: str, make_backend: Callable[[str], Backend], data: st.DataObject
) -> None:
    n = data.draw(st.integers(2, 20), label="n")
    backend, ledger = _new(make_backend, kind, data, n)
    seq = data.draw(st.integers(0, n - 2), label="seq")  # the last one: see truncation tests
    renumber = data.draw(st.booleans(), label="renumber")
    table = backend.table("records")
    steps: list[tuple[str, list[Any]]] = [(f"DELETE FROM {table} WHERE seq = ?", [seq])]
    if renumber:  # close the gap, as a careful attacker would
        steps += [
            (f"UPDATE {table} SET seq = seq + 999999 WHERE seq > ?", [seq]),
            (f"UPDATE {table} SET seq = seq - 1000000 WHERE seq >= 1000000", []),
        ]
    backend.sql_many(steps, bypass=True)
    result = ledger.verify()
    assert not result.ok
    assert result.first_bad == seq, result
    assert ("missing" in result.reason) != renumber


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_swapped_records_are_found(
    kind: str, make_backend: Callable[[str], Backend], data: st.DataObject
) -> None:
    n = data.draw(st.integers(2, 20), label="n")
    backend, ledger = _new(make_backend, kind, data, n)
    i = data.draw(st.integers(0, n - 2), label="i")
    j = data.draw(st.integers(i + 1, n - 1), label="j")
    row_i, row_j = _row(backend, i), _row(backend, j)
    table = backend.table("records")
    backend.sql_many(
        [
            (f"DELETE FROM {table} WHERE seq IN (?, ?)", [i, j]),
            _insert(backend, [i, *row_j[1:]]),
            _insert(backend, [j, *row_i[1:]]),
        ],
        bypass=True,
    )
    result = ledger.verify()
    assert not result.ok
    assert result.first_bad == i, result


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_inserted_forged_record_is_found(
    kind: str, make_backend: Callable[[str], Backend], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 20), label="n")
    backend, ledger = _new(make_backend, kind, data, n)
    seq = data.draw(st.integers(0, n - 1), label="seq")
    well_formed = data.draw(st.booleans(), label="well_formed")
    before = _row(backend, seq - 1) if seq else None
    at = _row(backend, seq)
    forged_id = new_record_ids(1)[0]
    ts = at[3]
    if well_formed:  # links correctly to the record before: only the one after can tell
        prev = before[10].hex() if before else "0" * 64
        body = canonical_json({"forged": True, "outcome": "approve"})
        record = encode_record(seq, forged_id, "decision", ts, prev, body)
    else:
        record = data.draw(st.binary(min_size=1, max_size=200), label="garbage")
    digest = record_hash(record)
    row = [seq, forged_id, "decision", ts, None, None, None, None, None, record, digest]
    backend.sql_many([*_shift_up_from(backend, seq), _insert(backend, row)], bypass=True)
    result = ledger.verify()
    assert not result.ok
    assert result.first_bad == seq, result


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY
@given(data=st.data())
def test_truncation_below_an_exported_checkpoint_is_found(
    kind: str, make_backend: Callable[[str], Backend], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 15), label="n")
    backend, ledger = _new(make_backend, kind, data, n)
    cp = ledger.checkpoint()
    extra = data.draw(st.integers(0, 5), label="extra")
    if extra:
        _fill(ledger, data, extra)
    keep = data.draw(st.integers(0, cp.size - 1), label="keep")
    steps: list[tuple[str, list[Any]]] = [
        (f"DELETE FROM {backend.table('records')} WHERE seq >= ?", [keep])
    ]
    if data.draw(st.booleans(), label="also_delete_stored_checkpoints"):
        steps.append((f"DELETE FROM {backend.table('checkpoints')}", []))
    backend.sql_many(steps, bypass=True)
    result = ledger.verify()
    assert not result.ok
    assert result.reason is not None and result.reason.startswith("TRUNCATION"), result
    assert result.first_bad == keep and result.records == keep


def test_truncating_the_tail_without_a_checkpoint_is_invisible_then_visible(
    make_backend: Callable[[str], Backend],
) -> None:
    """Why checkpoints exist: removing the newest records leaves a valid shorter chain."""
    backend = make_backend("sqlite")
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i}) for i in range(5)])
    backend.sql(f"DELETE FROM {backend.table('records')} WHERE seq = 4", bypass=True)
    assert ledger.verify().ok
    ledger.append("decision", {"n": 4})
    ledger.checkpoint()
    backend.sql(f"DELETE FROM {backend.table('records')} WHERE seq = 4", bypass=True)
    result = ledger.verify()
    assert not result.ok and result.first_bad == 4
    assert result.reason is not None and "TRUNCATION" in result.reason


@pytest.mark.parametrize("kind", KINDS)
def test_rewritten_chain_is_caught_by_the_checkpoint(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    """An attacker who edits a record and recomputes every later hash defeats the chain alone."""
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i, "outcome": "deny"}) for i in range(4)])
    first = ledger.checkpoint()
    ledger.append_many([Entry("decision", {"n": i, "outcome": "deny"}) for i in range(4, 8)])
    second = ledger.checkpoint()
    table = backend.table("records")
    steps: list[tuple[str, list[Any]]] = []
    prev = _row(backend, 4)[10]  # hash of seq 4
    for seq in range(5, 8):
        row = _row(backend, seq)
        doc = json.loads(row[9])
        if seq == 5:
            doc["body"]["outcome"] = "approve"
        record = encode_record(
            seq,
            doc["id"],
            doc["type"],
            doc["ts"],
            prev.hex(),
            canonical_json(doc["body"]),
            canonical_json(doc["idx"]),
        )
        prev = record_hash(record)
        steps.append((f"UPDATE {table} SET data = ?, hash = ? WHERE seq = ?", [record, prev, seq]))
    backend.sql_many(steps, bypass=True)
    result = ledger.verify(checkpoints=CheckpointDirectory(backend.root / "none"))
    assert not result.ok  # the stored checkpoint of size 8 no longer matches
    assert result.first_bad == first.size == 4, result
    assert "root mismatch" in (result.reason or "")
    assert second.size == 8
    with pytest.raises(IntegrityError):
        backend.open().checkpoint()  # a fresh instance re-verifies before signing


@pytest.mark.parametrize("kind", KINDS)
def test_index_column_tampering(kind: str, make_backend: Callable[[str], Backend]) -> None:
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i}, subject_id=f"s{i}") for i in range(5)])
    table = backend.table("records")
    backend.sql(f"UPDATE {table} SET type = 'promotion' WHERE seq = 2", bypass=True)
    result = ledger.verify()
    assert not result.ok and result.first_bad == 2 and "type column" in (result.reason or "")
    backend.sql(f"UPDATE {table} SET type = 'decision' WHERE seq = 2", bypass=True)
    assert ledger.verify().ok
    other = ledger.subject_key("someone-else")
    backend.sql(f"UPDATE {table} SET subject_key = ? WHERE seq = 3", (other,), bypass=True)
    for deep in (False, True):  # the index columns are inside the record (idx)
        result = ledger.verify(deep=deep)
        assert not result.ok and result.first_bad == 3 and "index columns" in (result.reason or "")


@pytest.mark.parametrize("kind", KINDS)
def test_forged_or_foreign_checkpoints_fail(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i}) for i in range(3)])
    cp = ledger.checkpoint()
    assert ledger.verify().ok
    forged = Checkpoint(cp.origin, cp.size, bytes(32), cp.timestamp, cp.key_id, cp.signature)
    elsewhere = CheckpointDirectory(backend.root / "copy")
    elsewhere.write(forged)
    result = ledger.verify(checkpoints=elsewhere)
    assert not result.ok and "invalid signature" in (result.reason or "")
    other = make_backend(kind).open()
    other.append("decision", {})
    foreign = CheckpointDirectory(backend.root / "foreign")
    foreign.write(other.checkpoint())
    result = ledger.verify(checkpoints=foreign)
    assert not result.ok and "another ledger" in (result.reason or "")


@pytest.mark.parametrize("kind", KINDS)
def test_deep_verify_passes_on_an_honest_ledger(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many(
        [
            Entry("decision", {"n": i, "model": {"name": "m", "version": i}}, f"s{i}")
            for i in range(5)
        ]
    )
    decision = ledger.find(limit=1)[0]
    ledger.append(
        "outcome", {"decision_id": decision.id, "actual": 1}, subject_id="s0", pii={"x": 1}
    )
    ledger.checkpoint()
    ledger.forget("s0")
    seen: list[tuple[int, int]] = []
    result = ledger.verify(deep=True, progress=lambda done, total: seen.append((done, total)))
    assert result.ok and result.records == 7 and result.checkpoints == 1
    assert seen and seen[-1] == (7, 7)


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_verify_agrees_with_sequential(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    """With a helper process on the second half, the first bad seq is the same."""
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i}, f"s{i % 7}") for i in range(40)])
    ledger.checkpoint()  # covers both halves (the helper starts at seq 25)
    ledger.append_many([Entry("decision", {"n": i}) for i in range(40, 50)])
    assert ledger.verify(workers=2) == ledger.verify(workers=1)
    assert ledger.verify(workers=2, deep=True).ok
    table = backend.table("records")
    for seq in (0, 5, 23, 24, 25, 26, 37, 49):
        original = _row(backend, seq)[9]
        changed = bytearray(original)
        changed[len(changed) // 2] ^= 0x20
        backend.sql(
            f"UPDATE {table} SET data = ? WHERE seq = ?", (bytes(changed), seq), bypass=True
        )
        parallel, sequential = ledger.verify(workers=2), ledger.verify(workers=1)
        assert not parallel.ok and parallel.first_bad == sequential.first_bad == seq, parallel
        backend.sql(f"UPDATE {table} SET data = ? WHERE seq = ?", (original, seq), bypass=True)
    assert ledger.verify(workers=2).ok
    for seq, first_bad in ((30, 30), (12, 12), (24, 12)):  # 24: no helper, its start is gone
        backend.sql(f"DELETE FROM {table} WHERE seq = ?", (seq,), bypass=True)
        parallel, sequential = ledger.verify(workers=2), ledger.verify(workers=1)
        assert parallel.first_bad == sequential.first_bad == first_bad, (parallel, sequential)


@pytest.mark.parametrize("kind", KINDS)
def test_the_helpers_merkle_half_joins_at_an_aligned_start(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    """From 8,192 records the helper starts at a multiple of 4,096 and hashes its part of the
    Merkle tree itself; every checkpoint, before, at and after its start, checks as in one
    process, and a record changed in its half is found at the same seq."""
    backend = make_backend(kind)
    ledger = backend.open()
    for stop in (3000, 4096, 5000, 8200, 8300):  # the helper starts at 8300 // 2 -> 4096
        ledger.append_many(
            [Entry("decision", {"n": i}, f"s{i % 7}") for i in range(ledger.size(), stop)]
        )
        if stop < 8300:
            ledger.checkpoint()
    sequential = ledger.verify(workers=1)
    assert sequential.ok and sequential.checkpoints == 4
    assert ledger.verify(workers=2) == sequential
    table = backend.table("records")
    original = _row(backend, 6000)[9]
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x20
    backend.sql(f"UPDATE {table} SET data = ? WHERE seq = ?", (bytes(changed), 6000), bypass=True)
    assert ledger.verify(workers=2) == ledger.verify(workers=1)
    assert ledger.verify(workers=2).first_bad == 6000


def test_the_helper_never_runs_a_governance_package_from_the_working_directory(
    tmp_path: Path, make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An auditor verifying from a directory that holds a planted ``governance`` package: the
    helper process runs this package's code (``python -P``), never the planted one."""
    backend = make_backend("sqlite")
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i}, f"s{i % 7}") for i in range(40)])
    ledger.checkpoint()
    planted = tmp_path / "cwd" / "governance" / "ledger"
    planted.mkdir(parents=True)
    marker = tmp_path / "planted-code-ran"
    (planted.parent / "__init__.py").write_text("")
    (planted / "__init__.py").write_text("")
    (planted / "_verify.py").write_text(
        f"def verify_helper_main():\n    open({str(marker)!r}, 'w').close()\n"
    )
    monkeypatch.chdir(planted.parent.parent)
    assert ledger.verify(workers=2).ok
    assert not marker.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_helper_that_fails_has_its_half_walked_here(
    kind: str, make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper process that cannot run (here: it exits 1 at once) checks nothing less."""
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"n": i}, f"s{i % 7}") for i in range(40)])
    ledger.checkpoint()
    ledger.append_many([Entry("decision", {"n": i}) for i in range(40, 50)])
    expected = ledger.verify(workers=1)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the helper's interpreter
    assert ledger.verify(workers=2) == expected and expected.ok
    table = backend.table("records")
    original = _row(backend, 37)[9]
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x20
    backend.sql(f"UPDATE {table} SET data = ? WHERE seq = ?", (bytes(changed), 37), bypass=True)
    assert ledger.verify(workers=2).first_bad == 37  # in the helper's half, found here
