"""PostgreSQL's one-statement append (``append_record(s)``) against the client-side chain.

The database builds and hashes each record from the bytes the client sent; these tests hold it
to the bytes :func:`~governance.ledger.records.chain_rows` builds, byte for byte and column for
column, and play the insider who replaces the function.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import Entry, Ledger
from governance.ledger.canonical import canonical_json
from governance.ledger.postgres_store import (
    AppendFunction,
    PostgresStore,
    StoreError,
    append_functions,
    least_privilege_sql,
)
from governance.ledger.records import (
    INSERT_COLUMNS,
    PendingRecord,
    chain_rows,
    idx_bytes,
    new_record_ids,
    subject_tag,
)
from tests.ledger.conftest import PG_URL, Backend

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(make_backend: Callable[[str], Backend]) -> Backend:
    return make_backend("postgres")


@pytest.fixture
def store(pg: Backend) -> Iterator[PostgresStore]:
    opened = PostgresStore(pg.url)
    yield opened
    opened.close()


def _installed(pg: Backend) -> dict[str, str]:
    """``{name: source}`` of the append functions in the ledger's schema."""
    rows = pg.sql(
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = ? AND p.proname = ANY(?)",
        (pg.schema, ["append_record", "append_records"]),
    )
    return dict(rows)


def _this_version(pg: Backend) -> dict[str, str]:
    return {f.name: f.body for f in append_functions(pg.schema, None)}


def _admin(statement: str) -> None:
    """Run DDL as the owner (no parameters: the function bodies hold ``%``)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(statement.encode())


def _stored_rows(pg: Backend, start: int) -> list[tuple[Any, ...]]:
    rows = pg.sql(
        f"SELECT {', '.join(INSERT_COLUMNS)} FROM {pg.table('records')}"
        " WHERE seq >= ? ORDER BY seq",
        (start,),
    )
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_record = st.tuples(
    st.sampled_from(["decision", "outcome", "model.note"]),
    st.dictionaries(_text, _json, max_size=4),
    st.booleans(),  # with idx (record format 2) or without (format 1)
    st.one_of(st.none(), st.text("0123456789abcdef", min_size=64, max_size=64)),
    st.one_of(st.none(), _text.filter(lambda t: t and "\x00" not in t)),  # a text column
)


def _pending(spec: tuple[str, dict[str, Any], bool, str | None, str | None]) -> PendingRecord:
    type_, body, with_idx, subject, model = spec
    version = None if model is None else "7"
    ref = new_record_ids(1)[0] if type_ == "outcome" else None
    return PendingRecord(
        id=new_record_ids(1)[0],
        type=type_,
        body=canonical_json(body),
        subject_key=subject,
        subject_tag=subject_tag(subject),
        model_name=model,
        model_version=version,
        ref=ref,
        idx=idx_bytes(subject, model, version, ref) if with_idx else None,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(groups=st.lists(st.lists(_record, min_size=1, max_size=4), min_size=1, max_size=3))
def test_the_database_writes_the_rows_the_client_builds(
    store: PostgresStore, pg: Backend, groups: list[list[Any]]
) -> None:
    """Non-ASCII, escapes, floats, both record formats: every column is what chain_rows makes."""
    for group in groups:
        head = store.head()
        pending = [_pending(spec) for spec in group]
        receipts = store.append(pending)
        ts = receipts[0].ts
        expected, expected_receipts = chain_rows(
            head.size, bytes.fromhex(head.hash), head.ts, pending, ts
        )
        assert _stored_rows(pg, head.size) == expected
        assert receipts == expected_receipts
        assert ts >= (head.ts or "")


_AWKWARD = ['"', "\\", "a,b", "{x}", "NULL", "é€😀", " ", ""]


@pytest.mark.parametrize("size", [1, 2, 8], ids=["append_record", "two", "eight"])
def test_awkward_values_reach_the_columns_exactly(
    store: PostgresStore, pg: Backend, size: int
) -> None:
    """Parameters go to the functions in binary: what array-literal quoting would mangle survives.

    Quotes, backslashes, commas, braces, the word ``NULL``, the empty string and non-BMP text in
    the text columns; a whole column of ``None``; subject tags at both ends of ``bigint``.
    """
    pending = [
        PendingRecord(
            id=new_record_ids(1)[0],
            type="decision",
            body=canonical_json({"n": n, "s": _AWKWARD[n % len(_AWKWARD)]}),
            subject_key=None if n % 2 else _AWKWARD[(n + 3) % len(_AWKWARD)],
            subject_tag=None if n % 2 else (-(2**63), 2**63 - 1)[n % 4 // 2],
            model_name=_AWKWARD[n % len(_AWKWARD)],
            model_version=_AWKWARD[(n + 1) % len(_AWKWARD)],
            ref=None,
            idx=None,
        )
        for n in range(size)
    ]
    head = store.head()
    receipts = store.append(pending)
    expected, expected_receipts = chain_rows(
        head.size, bytes.fromhex(head.hash), head.ts, pending, receipts[0].ts
    )
    assert _stored_rows(pg, head.size) == expected
    assert receipts == expected_receipts


def test_a_nul_in_a_text_column_is_refused_and_writes_nothing(
    store: PostgresStore, pg: Backend
) -> None:
    """PostgreSQL text cannot hold NUL: the append fails (one record or a group) and adds none."""
    store.append([_pending(("decision", {"n": 0}, True, None, "m"))])
    for size in (1, 3):
        bad = [_pending(("decision", {"n": n}, True, None, "m\x00n")) for n in range(size)]
        with pytest.raises(psycopg.DataError):
            store.append(bad)
    assert store.head().size == 1
    assert len(_stored_rows(pg, 0)) == 1


def test_a_new_ledger_gets_this_versions_functions(store: PostgresStore, pg: Backend) -> None:
    assert _installed(pg) == _this_version(pg)
    assert set(_installed(pg)) == {"append_record", "append_records"}


@pytest.mark.parametrize("count", [1, 40], ids=["one-statement", "copy"])
def test_records_take_the_databases_time_and_never_go_back(
    store: PostgresStore, pg: Backend, count: int
) -> None:
    """The time is the server's, taken under the lock; a later clock reading is never earlier.

    A record stamped in the future stands for a clock that went back since: the next records
    (one by ``append_record``, 40 by the client and ``COPY``) take its time.
    """
    (now,) = pg.sql("SELECT clock_timestamp()")[0]
    first = store.append([_pending(("decision", {"n": 0}, True, None, "m"))])[0]
    assert abs(datetime.fromisoformat(first.ts) - now) < timedelta(seconds=5)
    future = "2999-01-01T00:00:00.000000Z"
    rows, _ = chain_rows(
        1, bytes.fromhex(first.hash), None, [_pending(("decision", {}, True, None, "m"))], future
    )
    pg.sql(f"INSERT INTO {pg.table('records')} VALUES ({', '.join('?' * 11)})", rows[0])
    later = store.append([_pending(("decision", {"n": n}, True, None, "m")) for n in range(count)])
    assert {r.ts for r in later} == {future}


def _forging(function: AppendFunction) -> str:
    """The insider's version of a function: a denial is stored as an approval."""
    forged = function.body.replace(
        "v_data := p_front ||",
        "v_data := convert_to(replace(convert_from(p_front, 'UTF8'),"
        " '\"deny\"', '\"approve\"'), 'UTF8') ||",
    ).replace(
        "v_data := p_front[i] ||",
        "v_data := convert_to(replace(convert_from(p_front[i], 'UTF8'),"
        " '\"deny\"', '\"approve\"'), 'UTF8') ||",
    )
    assert forged != function.body
    return function.create.replace(function.body, forged)


def test_a_replaced_function_gets_no_receipt(pg: Backend) -> None:
    """The insider replaces the append functions to rewrite denials; the writer refuses to answer.

    The forged record is internally consistent (its hash is of its own bytes), so only the
    writer, which knows what it sent, can tell; it gives no receipt, for one record or a group.
    The owner's next open puts this version's functions back.
    """
    ledger = pg.open()
    ledger.append("decision", {"outcome": "approve"})
    for function in append_functions(pg.schema, None):
        _admin(_forging(function))
    with pytest.raises(StoreError, match="append_record is not this version's"):
        ledger.append("decision", {"outcome": "deny"})
    with pytest.raises(StoreError, match="append_records is not this version's"):
        ledger.append_many([Entry("decision", {"outcome": "deny"})] * 2)
    with Ledger.open(pg.url, home=pg.home) as reopened:
        receipt = reopened.append("decision", {"outcome": "deny"})
        record = reopened.get(receipt.id)
        assert record is not None and record.body == {"outcome": "deny"}
    assert _installed(pg) == _this_version(pg)


def test_a_role_that_cannot_install_the_function_appends_the_other_way(
    pg: Backend, pg_url: str
) -> None:
    """A ledger made before the function, opened by a least-privilege role: appends still work.

    The role may not create functions in the schema, so the append builds the rows in the client
    (three more round trips); the owner's next open installs the function.
    """
    if "@" in pg_url.split("//", 1)[1]:
        pytest.skip("GOVERNANCE_TEST_PG_URL names a user; cannot log in as the test role")
    with pg.open() as owner:
        owner.append("decision", {"n": 1})
    _admin(f"DROP FUNCTION {pg.schema}.append_record")
    _admin(f"DROP FUNCTION {pg.schema}.append_records")
    role = f"gl_writer_{uuid.uuid4().hex[:10]}"
    _admin(least_privilege_sql(role, pg.schema, login=True))
    try:
        url = pg_url.replace("postgresql://", f"postgresql://{role}@", 1)
        with Ledger.open(f"{url}?schema={pg.schema}", home=pg.home) as writer:
            receipts = [writer.append("decision", {"n": n}) for n in range(2, 5)]
            assert [r.seq for r in receipts] == [1, 2, 3]
            assert writer.verify().ok
        assert _installed(pg) == {}  # not installed, and the appends did not need them
        with Ledger.open(pg.url, home=pg.home) as owner:
            assert owner.append("decision", {"n": 5}).seq == 4
        assert _installed(pg) == _this_version(pg)
    finally:
        _admin(f"DROP OWNED BY {role}")
        _admin(f"DROP ROLE {role}")
