"""Every stored byte is covered: the index columns are inside the hashed record (format 2).

An insider who edits an index column (to hide a subject's decisions from ``find --subject`` or
to move a decision to another model version) is caught by a plain ``verify``, which names the
record -- on SQLite and on PostgreSQL, and for format-1 ledgers (no ``idx``) by re-deriving the
columns from the body. So is one who writes into the id, type or ts column a value that takes in
text of the record's body, so that the record's tail still ends with what the columns say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Entry, Ledger
from governance.ledger.canonical import (
    CANONICAL_FORMAT,
    CANONICAL_FORMAT_V1,
    canonical_json,
    encoder_for,
)
from governance.ledger.records import (
    RECORD_FORMAT,
    RECORD_FORMAT_V1,
    ChainBreak,
    ChainWalker,
    Record,
    checked_idx_bytes,
    encode_record,
    idx_bytes,
    index_columns,
    record_hash,
    subject_tag,
)

Backend = Any  # tests/ledger/conftest.py:Backend
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _ledger(backend: Backend) -> Ledger:
    ledger = backend.open()
    ledger.append_many(
        [
            Entry(
                "decision",
                {"model": {"name": "hmda", "version": str(1 + i % 2)}, "n": i},
                subject_id=f"applicant-{i}",
            )
            for i in range(6)
        ]
    )
    return ledger


def test_new_ledgers_write_record_format_2_with_idx(ledger: Ledger) -> None:
    assert ledger.record_format == RECORD_FORMAT
    assert ledger.store.meta()["record_format"] == RECORD_FORMAT
    receipt = ledger.append(
        "decision", {"model": {"name": "m", "version": 7}}, subject_id="applicant-1"
    )
    record = ledger.get(receipt.id)
    assert record is not None
    sk = ledger.subject_key("applicant-1")
    assert record.idx == {"model": "m", "ref": None, "subject": sk, "version": "7"}
    assert b'"idx":{"model":"m","ref":null,"subject":"' + sk.encode() in record.data
    assert ledger.verify(deep=True).ok


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("subject_key", "0" * 64),
        ("subject_key", None),
        ("subject_tag", 12345),
        ("model_name", "another-model"),
        ("model_version", "5"),
        ("model_version", None),
        ("ref", "01890a5d-ac96-774b-bcce-b302099a8057"),
    ],
)
def test_an_edited_index_column_is_named_by_a_plain_verify(
    kind: str, column: str, value: object, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(kind)
    ledger = _ledger(backend)
    assert ledger.verify().ok
    table = backend.table("records")
    backend.sql(f"UPDATE {table} SET {column} = ? WHERE seq = 3", (value,), bypass=True)
    result = ledger.verify()
    assert not result.ok and result.first_bad == 3, result
    assert "index columns" in (result.reason or ""), result


@pytest.mark.parametrize("kind", KINDS)
def test_hiding_a_subject_from_find_is_caught(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    """The issue's scenario: after the edit ``find --subject`` returns nothing; verify says so."""
    backend = make_backend(kind)
    ledger = _ledger(backend)
    assert len(ledger.find(subject_id="applicant-4")) == 1
    sk = ledger.subject_key("someone-else")
    backend.sql(
        f"UPDATE {backend.table('records')} SET subject_key = ?, subject_tag = ? WHERE seq = 4",
        (sk, subject_tag(sk)),
        bypass=True,
    )
    assert ledger.find(subject_id="applicant-4") == []  # hidden from the query...
    result = ledger.verify()
    assert not result.ok and result.first_bad == 4  # ...but not from verification


def test_format_1_ledgers_are_covered_by_rederiving_the_columns(
    make_backend: Callable[[str], Backend],
) -> None:
    """A format-1 ledger (no idx) gets its index columns re-derived from each body."""
    from tests.ledger.test_formats import load_fixture  # the format-1 fixture

    backend = make_backend("sqlite")
    ledger = backend.open(load_fixture(backend))
    assert ledger.record_format == RECORD_FORMAT_V1
    assert ledger.verify().ok
    backend.sql(
        f"UPDATE {backend.table('records')} SET model_version = '9' WHERE seq = 2", bypass=True
    )
    result = ledger.verify()
    assert not result.ok and result.first_bad == 2 and "index columns" in (result.reason or "")


index_text = st.one_of(st.none(), st.text(max_size=12))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=index_text,
    version=index_text,
    with_subject=st.booleans(),
    with_ref=st.booleans(),
    edit=st.sampled_from([None, 6, 7, 8, 9, 10]),
    replacement=st.one_of(st.none(), st.text(max_size=12), st.integers(-5, 5)),
)
def test_idx_bytes_are_canonical_and_any_column_change_is_caught(
    name: str | None,
    version: str | None,
    with_subject: bool,
    with_ref: bool,
    edit: int | None,
    replacement: object,
) -> None:
    """Property: ``idx`` is the canonical JSON of the columns, and the walker accepts exactly
    the columns the record holds (an edit to any of the five index columns is caught)."""
    sk = hashlib.sha256(b"subject").hexdigest() if with_subject else None
    ref = "01890a5d-ac96-774b-bcce-b302099a8057" if with_ref else None
    idx = idx_bytes(sk, name, version, ref)
    expected = {"model": name, "ref": ref, "subject": sk, "version": version}
    assert idx == canonical_json(expected)
    ts = "2026-12-01T00:00:00.000000Z"
    rid = "01890a5d-ac96-774b-bcce-b302099a8058"
    data = encode_record(0, rid, "decision", ts, "0" * 64, b'{"n":1}', idx)
    assert Record.from_bytes(data).idx == expected
    row = [0, data, record_hash(data), rid.encode(), b"decision", ts.encode()]
    row += [sk, subject_tag(sk), name, version, ref]
    original = list(row)
    if edit is not None:
        row[edit] = replacement
    walker = ChainWalker(canonical=CANONICAL_FORMAT, record_format=RECORD_FORMAT)
    if row == original:
        walker.feed([tuple(row)])
        assert walker.next_seq == 1
    else:
        with pytest.raises(ChainBreak) as caught:
            walker.feed([tuple(row)])
        assert caught.value.seq == 0


# A body whose nested keys spell the header's own: '"id":"' and friends occur before the tail.
_ECHO_BODY = b'{"inputs":{"a":"x","id":"y","ts":"z","type":"w"},"n":1}'


def _field_end(data: bytes, key: bytes, value: bytes) -> int:
    """The offset just after the header's ``key`` value (its last occurrence in the record)."""
    return data.rindex(b',"%b":"%b"' % (key, value)) + len(key) + 5 + len(value)


@pytest.mark.parametrize("record_format", [RECORD_FORMAT, RECORD_FORMAT_V1])
@pytest.mark.parametrize(("column", "key"), [(3, b"id"), (4, b"type"), (5, b"ts")])
def test_no_id_type_or_ts_column_can_take_in_the_records_text(
    record_format: str, column: int, key: bytes
) -> None:
    """Every value that ends where the true one ends but starts earlier in the record (so the
    record still ends with the tail the columns format to) is refused, in either format."""
    sk = hashlib.sha256(b"subject").hexdigest()
    ts = "2026-12-01T00:00:00.000000Z"
    rid = "01890a5d-ac96-774b-bcce-b302099a8058"
    idx = idx_bytes(sk, "m", "1", None) if record_format == RECORD_FORMAT else None
    data = encode_record(0, rid, "decision", ts, "0" * 64, _ECHO_BODY, idx)
    row = [0, data, record_hash(data), rid.encode(), b"decision", ts.encode()]
    row += [sk, subject_tag(sk), "m", "1", None]
    if record_format == RECORD_FORMAT_V1:
        row[6:] = [None, None, None, None, None]
    walker = ChainWalker(record_format=record_format)
    walker.feed([tuple(row)])  # the true columns pass
    end = _field_end(data, key, row[column])
    forged_values = [data[start:end] for start in range(end - len(row[column]))]
    assert any(b'"' + key + b'":"' in v for v in forged_values)  # the attack is in the set
    for forged in forged_values:
        tampered = list(row)
        tampered[column] = forged
        with pytest.raises(ChainBreak) as caught:
            ChainWalker(record_format=record_format).feed([tuple(tampered)])
        assert caught.value.seq == 0, forged


@pytest.mark.parametrize("kind", KINDS)
def test_hiding_a_record_from_lookup_by_id_is_caught(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    """An insider rewrites a decision's id column so that ``get(id)`` no longer finds it, in a
    way that keeps the record's tail matching the columns; both verifies name the record."""
    backend = make_backend(kind)
    ledger = backend.open()
    ledger.append_many(
        [
            Entry("decision", {"inputs": {"a": "x", "id": "y"}, "n": i}, subject_id=f"s{i}")
            for i in range(4)
        ]
    )
    target = ledger.get_seq(2)
    assert target is not None
    data = target.data
    start = data.index(b'"id":"y"') + 6
    forged = data[start : _field_end(data, b"id", target.id.encode())].decode()
    table = backend.table("records")
    backend.sql(f"UPDATE {table} SET id = ? WHERE seq = 2", (forged,), bypass=True)
    assert ledger.get(target.id) is None  # hidden from lookup by id...
    for deep in (False, True):
        result = ledger.verify(deep=deep)  # ...but not from verification
        assert not result.ok and result.first_bad == 2, result
        assert "id column" in (result.reason or ""), result


model_member = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.none(), st.text(max_size=6), st.integers(0, 2), st.booleans()),
            "version": st.one_of(
                st.none(),
                st.text(max_size=4),
                st.integers(-2, 2),
                st.booleans(),
                st.floats(-2, 2),
                st.lists(st.integers(0, 1), max_size=1),
            ),
        },
    ),
)


def _model_columns_by_the_rules(model: object) -> tuple[str | None, str | None] | str:
    """The documented rules of ``body.model`` (what a cache must not change): the columns, or
    the start of the error message."""
    if model is None:
        return None, None
    if not isinstance(model, dict):
        return "body.model must be an object"
    name, version = model.get("name"), model.get("version")
    if name is not None and (not isinstance(name, str) or not name):
        return "body.model.name must be"
    if version is not None and (isinstance(version, bool) or not isinstance(version, str | int)):
        return "body.model.version must be"
    return name, None if version is None else str(version)


@settings(max_examples=300, deadline=None)
@given(models=st.lists(model_member, min_size=1, max_size=8))
def test_index_columns_follow_the_rules_whatever_was_checked_before(
    models: list[object],
) -> None:
    """Property: the model columns (cached by the name's and version's types and values) are
    what the rules give, in any order of calls: ``True`` after ``1``, ``1.0`` after ``1`` or
    ``"1"`` after ``1`` each get their own answer, never a cached neighbour's."""
    for model in models:
        expected = _model_columns_by_the_rules(model)
        body = {} if model is None else {"model": model}
        if isinstance(expected, str):
            with pytest.raises(ValueError, match=expected):
                index_columns("decision", body)
        else:
            assert index_columns("decision", body)[1:3] == expected


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    version=st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 5)),
    with_subject=st.booleans(),
    with_ref=st.booleans(),
)
def test_the_appends_idx_is_idx_bytes_of_its_checked_columns(
    name: str | None, version: str | int | None, with_subject: bool, with_ref: bool
) -> None:
    """Property: the ``idx`` an append writes (from checked columns, with the model's part
    cached) is :func:`idx_bytes` of the same columns, quotes, escapes and non-ASCII included."""
    body: dict[str, Any] = {"model": {"name": name, "version": version}}
    if with_subject:
        body["subject_key"] = hashlib.sha256(str(name).encode()).hexdigest()
    if with_ref:
        body["decision_id"] = "01890a5d-ac96-774b-bcce-b302099a8057"
    columns = index_columns("outcome" if with_ref else "decision", body)
    for encode in (canonical_json, encoder_for(CANONICAL_FORMAT_V1)):
        expected = idx_bytes(*columns, encode)
        assert checked_idx_bytes(*columns, encode) == expected
        assert checked_idx_bytes(*columns, encode) == expected  # from the cache
