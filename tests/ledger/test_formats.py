"""Canonical formats over a ledger's life: old ledgers keep verifying and keep their format.

``data/format1/`` is a ledger written by the code before canonical format 2 existed
(``data/make_format1_ledger.py``): its bytes came from the old encoder. It is copied into each
store, verified, read and appended to; a fresh ledger writes format 2; and a record in the wrong
format is caught by the deep check.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import ERASED, Ledger, LedgerError
from governance.ledger.canonical import (
    CANONICAL_FORMAT,
    CANONICAL_FORMAT_V1,
    canonical_json,
    canonical_json_v1,
    is_canonical,
    utc_now,
)
from governance.ledger.postgres_store import PostgresStore
from governance.ledger.records import (
    INSERT_COLUMNS,
    RECORD_FORMAT,
    encode_record,
    idx_bytes,
    new_record_ids,
    record_hash,
)
from governance.ledger.sqlite_store import SQLiteStore

Backend = Any  # tests/ledger/conftest.py:Backend
FIXTURE = Path(__file__).parent / "data" / "format1"
FACTS = json.loads((FIXTURE / "facts.json").read_text())
FLOATS = {"tiny": 1e-7, "boundary": 1e-5, "big": 1e16}


def _fixture_rows(sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{FIXTURE / 'ledger.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def load_fixture(backend: Backend) -> Path:
    """Put the format-1 fixture into ``backend``'s store; return its home directory."""
    home = backend.root / "format1-home"
    shutil.copytree(FIXTURE / "home", home)
    if backend.kind == "sqlite":
        shutil.copy(FIXTURE / "ledger.db", backend.path)
        return home
    store = PostgresStore(backend.url)  # creates the schema
    try:
        store.init_meta(dict(_fixture_rows("SELECT key, value FROM meta")))
    finally:
        store.close()
    steps: list[tuple[str, Any]] = []
    for table, columns in (
        ("records", ", ".join(INSERT_COLUMNS)),
        ("checkpoints", "n, origin, size, root, timestamp, key_id, signature"),
        ("subject_keys", "kid, subject_key, wrapped, created"),
    ):
        marks = ", ".join("?" for _ in columns.split(","))
        for row in _fixture_rows(f"SELECT {columns} FROM {table}"):
            steps.append((f"INSERT INTO {backend.table(table)} ({columns}) VALUES ({marks})", row))
    backend.sql_many(steps)
    return home


def test_the_fixture_is_format_1() -> None:
    meta = dict(_fixture_rows("SELECT key, value FROM meta"))
    assert meta["canonical"] == CANONICAL_FORMAT_V1 == FACTS["canonical"]
    data = [bytes(d) for (d,) in _fixture_rows("SELECT data FROM records ORDER BY seq")]
    assert len(data) == FACTS["size"]
    assert all(is_canonical(d, CANONICAL_FORMAT_V1) for d in data)
    spelled_v1 = [d for d in data if b"1e-07" in d and b"1e-05" in d]
    assert len(spelled_v1) >= 12  # written by the old encoder: not format 2
    assert not any(is_canonical(d, CANONICAL_FORMAT) for d in spelled_v1)


def test_format_1_ledger_verifies_reads_and_keeps_its_format(backend: Backend) -> None:
    home = load_fixture(backend)
    ledger = backend.open(home)
    assert ledger.canonical_format == CANONICAL_FORMAT_V1
    assert ledger.ledger_id == FACTS["ledger_id"]
    assert ledger.head().hash == FACTS["head"] and ledger.size() == FACTS["size"]
    for deep in (False, True):
        result = ledger.verify(deep=deep)
        assert result.ok, result
        assert result.records == FACTS["size"] and result.checkpoints == 2

    first = ledger.get(FACTS["decision_ids"][0])
    assert first is not None and first.body["inputs"]["lvr"] == 1e-7
    assert ledger.decode(first)["body"]["pii"] == {"name": "Ann 0 Ödegaard", "ssn": "000-00-0000"}
    erased = ledger.find(subject_id="applicant-2", type="decision")
    assert erased and ledger.decode(erased[0])["body"]["pii"] == ERASED
    assert len(ledger.find(model="hmda-logistic", version="2", type="decision")) == 6

    receipt = ledger.append("decision", {"floats": FLOATS, "n": "appended"}, subject_id="new")
    record = ledger.get(receipt.id)
    assert record is not None and record.prev == FACTS["head"]
    assert canonical_json_v1(record.body) in record.data  # format 1 spelling: 1e-07, 1e-05
    assert b'"tiny":1e-07' in record.data and b'"boundary":1e-05' in record.data
    assert is_canonical(record.data, CANONICAL_FORMAT_V1)
    cp = ledger.checkpoint()
    assert cp.size == FACTS["size"] + 1
    assert ledger.inclusion_proof(FACTS["decision_ids"][3])["verified"]
    assert ledger.consistency_proof(12, cp.size)["verified"]
    assert ledger.verify(deep=True).ok


def test_new_ledgers_write_format_2(ledger: Ledger) -> None:
    assert ledger.canonical_format == CANONICAL_FORMAT
    assert ledger.store.meta()["canonical"] == CANONICAL_FORMAT
    receipt = ledger.append("decision", {"floats": FLOATS})
    record = ledger.get(receipt.id)
    assert record is not None and canonical_json(record.body) in record.data
    assert b'"tiny":1e-7' in record.data and b'"boundary":0.00001' in record.data
    assert is_canonical(record.data) and not is_canonical(record.data, CANONICAL_FORMAT_V1)
    assert ledger.verify(deep=True).ok


def _append_raw(backend: Backend, ledger: Ledger, body: bytes) -> int:
    """Append one record with a correct chain link and hash, bypassing the facade's encoder."""
    head = ledger.head()
    seq, record_id, ts = head.size, new_record_ids(1)[0], utc_now()
    idx = idx_bytes(None, None, None, None) if ledger.record_format == RECORD_FORMAT else None
    data = encode_record(seq, record_id, "decision", ts, head.hash, body, idx)
    values = (seq, record_id, "decision", ts, None, None, None, None, None, data)
    backend.sql(
        f"INSERT INTO {backend.table('records')} ({', '.join(INSERT_COLUMNS)})"
        f" VALUES ({', '.join('?' for _ in INSERT_COLUMNS)})",
        (*values, record_hash(data)),
    )
    return seq


@pytest.mark.parametrize("legacy", [False, True], ids=["format2-ledger", "format1-ledger"])
def test_deep_verify_refuses_a_record_in_the_other_format(backend: Backend, legacy: bool) -> None:
    """A writer using the wrong encoder (or a forger who forgot) is caught by the deep check."""
    ledger = backend.open(load_fixture(backend)) if legacy else backend.open()
    ledger.append("decision", {"floats": FLOATS})
    wrong = (canonical_json if legacy else canonical_json_v1)({"floats": FLOATS})
    seq = _append_raw(backend, ledger, wrong)
    assert ledger.verify().ok  # hashes and links are right: only the encoding is wrong
    result = ledger.verify(deep=True)
    assert not result.ok and result.first_bad == seq
    assert result.reason is not None and "canonical form" in result.reason


def test_unknown_format_is_refused_with_one_line(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    meta = dict(_fixture_rows("SELECT key, value FROM meta"))
    store.init_meta({**meta, "canonical": "governance.canonical-json/9"})
    store.close()
    home = tmp_path / "home"
    shutil.copytree(FIXTURE / "home", home)
    with pytest.raises(LedgerError, match=r"canonical format 'governance.canonical-json/9'"):
        Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", home=home)
