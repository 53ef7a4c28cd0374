"""The SQLite store's WAL backfill (:class:`governance.ledger.sqlite_store.WalBackfill`).

A thread on its own connection copies the WAL's committed pages into the database file, so the
append that crosses SQLite's checkpoint mark does not pay for the copy. What is in the database
file is read from a copy of that file alone, without its WAL. The SIGKILL test of a writer whose
backfills run all the time is in ``test_durability.py``.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import Entry, Ledger, sqlite_store

MARK = 64 << 10  # record bytes between two backfills in these tests


def _entries(n: int, pad: int = 1000) -> list[Entry]:
    return [Entry("decision", {"n": i, "pad": "x" * pad}) for i in range(n)]


def _in_file_alone(path: Path, tmp: Path) -> int:
    """How many records the database file holds without its WAL (what was copied into it)."""
    copy = tmp / f"alone-{len(list(tmp.glob('alone-*')))}.db"
    shutil.copyfile(path, copy)  # no -wal beside the copy: SQLite reads the file alone
    conn = sqlite3.connect(copy)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'records'").fetchone() is None:
            return 0  # not even the schema has been copied
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def open_ledger(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    path = tmp_path / "ledger.db"
    ledger = Ledger.open(f"sqlite:///{path}", home=tmp_path / "home")
    try:
        yield ledger, path
    finally:
        ledger.close()


def test_the_thread_copies_appends_past_the_mark_into_the_database_file(
    open_ledger: tuple[Ledger, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_BACKFILL_BYTES", MARK)
    ledger, path = open_ledger
    store = ledger.store
    assert isinstance(store, sqlite_store.SQLiteStore)
    backstop = store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert backstop == sqlite_store.WAL_BACKSTOP_PAGES  # the writer does not copy at 1,000 pages

    ledger.append_many(_entries(10))  # 10 KB: under the mark, so nobody copies it yet
    store._backfill.wait()
    assert _in_file_alone(path, tmp_path) == 0

    ledger.append_many(_entries(100))  # past the mark: the thread is asked
    store._backfill.wait()
    assert _in_file_alone(path, tmp_path) == ledger.size() == 110
    assert ledger.verify(deep=True).ok


def test_the_writer_copies_past_the_backstop_when_no_backfill_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_BACKFILL_BYTES", 1 << 62)  # the thread is never asked
    monkeypatch.setattr(sqlite_store, "WAL_BACKSTOP_PAGES", 20)
    path = tmp_path / "ledger.db"
    with Ledger.open(f"sqlite:///{path}", home=tmp_path / "home") as ledger:
        ledger.append_many(_entries(200))  # about 50 pages of 4 KiB
        assert ledger.store._backfill._thread is None  # type: ignore[attr-defined]
        assert _in_file_alone(path, tmp_path) == 200


def test_a_backfill_that_cannot_run_is_logged_and_appends_go_on(
    open_ledger: tuple[Ledger, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_BACKFILL_BYTES", MARK)
    ledger, _ = open_ledger
    connect = sqlite3.connect

    def refused(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    with caplog.at_level(logging.WARNING, logger=sqlite_store.__name__):
        monkeypatch.setattr(sqlite3, "connect", refused)  # the thread's own connection fails
        ledger.append_many(_entries(100))
        ledger.store._backfill.wait()  # type: ignore[attr-defined]
        monkeypatch.setattr(sqlite3, "connect", connect)
        ledger.append_many(_entries(100))  # later requests are dropped, appends are not
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "WAL backfill" in warnings[0] and "unable to open database file" in warnings[0]
    assert f"checkpoints at {sqlite_store.WAL_BACKSTOP_PAGES} pages" in warnings[0]
    assert ledger.size() == 200
    assert ledger.verify(deep=True).ok


def test_purge_empties_the_wal_while_backfills_are_asked_for(
    open_ledger: tuple[Ledger, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_BACKFILL_BYTES", MARK)
    ledger, path = open_ledger
    store = ledger.store
    assert isinstance(store, sqlite_store.SQLiteStore)
    for _ in range(5):
        ledger.append_many(_entries(100))  # each one asks the thread
        assert store.purge()
        assert path.with_name(path.name + "-wal").stat().st_size == 0
    assert ledger.verify(deep=True).ok


def test_closing_ends_the_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "WAL_BACKFILL_BYTES", MARK)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", home=tmp_path / "home")
    ledger.append_many(_entries(100))
    thread = ledger.store._backfill._thread  # type: ignore[attr-defined]
    assert thread is not None
    ledger.close()
    assert not thread.is_alive()


def test_purge_waits_for_a_backfill_in_progress_and_then_empties_the_wal(
    open_ledger: tuple[Ledger, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purge that met a running backfill's checkpoint would fail (SQLite runs one checkpoint
    at a time) and leave the deleted rows' page images in the WAL: it waits for it instead."""
    monkeypatch.setattr(sqlite_store, "WAL_BACKFILL_BYTES", MARK)
    ledger, path = open_ledger
    store = ledger.store
    assert isinstance(store, sqlite_store.SQLiteStore)
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Held(sqlite3.Connection):
        """The backfill's connection: its checkpoint starts only when the test says so."""

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "PRAGMA wal_checkpoint(PASSIVE)":
                entered.set()
                release.wait()
                cursor = super().execute(sql, *args)
                order.append("backfill")
                return cursor
            return super().execute(sql, *args)

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: connect(*a, factory=Held, **kw))
    purged: list[bool] = []

    def purge() -> None:
        purged.append(store.purge())
        order.append("purge")

    purging = threading.Thread(target=purge)
    try:
        ledger.append_many(_entries(100))  # past the mark: the thread starts, on a Held connection
        assert entered.wait(timeout=60)
        purging.start()
        purging.join(timeout=1.0)  # a purge that did not wait would be done by now
        assert purging.is_alive() and not order
    finally:
        release.set()  # else closing the ledger would wait for the held backfill forever
    purging.join(timeout=60)
    assert order == ["backfill", "purge"] and purged == [True]
    assert path.with_name(path.name + "-wal").stat().st_size == 0
    assert ledger.verify(deep=True).ok
