"""Fixtures for the ledger tests: the same tests run on SQLite and on PostgreSQL.

The PostgreSQL variants need a server at ``GOVERNANCE_TEST_PG_URL`` (default
``postgresql://127.0.0.1:5432/test``); they are marked ``postgres`` and skip with the reason when
no server is reachable. Each PostgreSQL ledger lives in its own schema, dropped afterwards, so
tests are isolated and parallel-safe.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import Ledger

PG_URL = os.environ.get("GOVERNANCE_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_TABLES = ("records", "checkpoints", "meta")


@cache
def pg_unavailable() -> str | None:
    """Return why PostgreSQL cannot be used for tests, or ``None`` if it can."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL server reachable at GOVERNANCE_TEST_PG_URL={PG_URL}: {exc}"
    return None


def _with_query(url: str, extra: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{extra}"


class Backend:
    """One ledger location plus privileged (trigger-bypassing) access to its tables.

    Parameters
    ----------
    kind
        ``"sqlite"`` or ``"postgres"``.
    root
        A temporary directory (home directories and the SQLite file live there).
    """

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.home = root / "home"
        if kind == "sqlite":
            self.path = root / "ledger.db"
            self.url = f"sqlite:///{self.path}"
            self.schema = ""
        else:
            reason = pg_unavailable()
            if reason:
                pytest.skip(reason)
            self.schema = f"gl_test_{uuid.uuid4().hex[:16]}"
            self.url = _with_query(PG_URL, f"schema={self.schema}")
        self._opened: list[Ledger] = []

    # -- ledgers --------------------------------------------------------------------------

    def open(self, home: Path | None = None) -> Ledger:
        """Open the ledger (closed automatically at teardown)."""
        ledger = Ledger.open(self.url, home=home or self.home)
        self._opened.append(ledger)
        return ledger

    def client_url(self, name: str) -> str:
        """The ledger's URL for another process, its PostgreSQL sessions named ``name``."""
        if self.kind == "sqlite":
            return self.url
        return _with_query(self.url, f"application_name={self.schema}-{name}")

    def wait_ended(self, name: str, timeout: float = 30.0) -> None:
        """Wait until the server has ended every session of a killed client ``name``.

        A client killed while its COMMIT is on the wire leaves the server to finish that
        transaction on its own: until its session ends, a record nobody acknowledged may still
        appear. (SQLite has no server: the process's death ends everything.)
        """
        if self.kind == "sqlite":
            return
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            while conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"{self.schema}-{name}",),
            ).fetchone() != (0,):
                assert time.monotonic() < deadline, (
                    f"sessions of {name} still open after {timeout} s"
                )
                time.sleep(0.01)

    def table(self, name: str) -> str:
        """Qualified table name."""
        return f"{self.schema}.{name}" if self.schema else name

    # -- privileged SQL -------------------------------------------------------------------

    def sql(self, statement: str, params: Sequence[Any] = (), *, bypass: bool = False) -> list[Any]:
        """Run one SQL statement (``?`` placeholders) as the owner; return its rows.

        With ``bypass`` the append-only triggers are dropped first (as an attacker with
        database access would) and restored after.
        """
        return self.sql_many([(statement, params)], bypass=bypass)

    def sql_many(
        self, steps: Sequence[tuple[str, Sequence[Any]]], *, bypass: bool = False
    ) -> list[Any]:
        """Run statements in one transaction; return the rows of the last one."""
        rows: list[Any] = []
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            try:
                conn.execute("BEGIN IMMEDIATE")
                saved = conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                ).fetchall()
                if bypass:
                    for name, _ in saved:
                        conn.execute(f"DROP TRIGGER {name}")
                try:
                    for statement, params in steps:
                        rows = conn.execute(statement, params).fetchall()
                finally:
                    if bypass:
                        for _, ddl in saved:
                            conn.execute(ddl)
                conn.execute("COMMIT")
                return rows
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as pg, pg.transaction():
            if bypass:
                for table in _TABLES:
                    pg.execute(f"ALTER TABLE {self.table(table)} DISABLE TRIGGER USER".encode())
            for statement, params in steps:
                cur = pg.execute(statement.replace("?", "%s").encode(), params)
                rows = cur.fetchall() if cur.description else []
            if bypass:
                for table in _TABLES:
                    pg.execute(f"ALTER TABLE {self.table(table)} ENABLE TRIGGER USER".encode())
        return rows

    def at_rest(self) -> bytes:
        """All bytes of the ledger at rest: the SQLite files, or a ``pg_dump`` of the schema."""
        if self.kind == "sqlite":
            return b"".join(
                p.read_bytes()
                for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
                if p.exists()
            )
        return subprocess.run(
            ["pg_dump", "--schema", self.schema, "--dbname", PG_URL],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout

    # -- teardown -------------------------------------------------------------------------

    def cleanup(self) -> None:
        for ledger in self._opened:
            ledger.close()
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


@pytest.fixture
def make_backend(tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    """Return a factory of fresh, isolated backends; all are cleaned up afterwards."""
    made: list[Backend] = []

    def make(kind: str) -> Backend:
        backend = Backend(kind, tmp_path / f"b{len(made)}")
        backend.root.mkdir(parents=True)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.cleanup()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, make_backend: Callable[[str], Backend]) -> Backend:
    """A fresh backend of each kind."""
    return make_backend(request.param)


@pytest.fixture
def ledger(backend: Backend) -> Ledger:
    """A fresh, empty ledger on each backend."""
    return backend.open()


def make_decision_body(
    i: int = 0, *, model: str = "hmda-logistic", version: str = "3"
) -> dict[str, Any]:
    """A realistic decision body (about 1 KB)."""
    return {
        "model": {"name": model, "version": version, "alias": "champion", "lineage_id": "ab12"},
        "inputs": {f"feature_{k:02d}": (i * 7 + k) % 13 / 3.0 for k in range(12)},
        "outcome": "deny" if i % 5 == 0 else "approve",
        "score": (i % 100) / 100.0,
        "threshold": 0.5,
        "explanation": {
            "base": -1.25,
            "contributions": {f"feature_{k:02d}": (k - 6) / 10.0 for k in range(12)},
            "reasons": ["Debt-to-income ratio too high", "Insufficient credit history"],
        },
        "caller": "tests",
        "purpose": "mortgage-underwriting",
        "n": i,
    }


@pytest.fixture
def decision_body() -> Callable[..., dict[str, Any]]:
    """``decision_body(i, model=..., version=...)``: a realistic ~1 KB decision body."""
    return make_decision_body


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL server URL the tests use (without a schema)."""
    return PG_URL
