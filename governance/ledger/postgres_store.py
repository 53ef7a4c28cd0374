"""The ledger on PostgreSQL (psycopg 3), for when it outgrows one machine.

URL: ``postgresql://user@host:port/dbname?schema=NAME`` (libpq syntax; ``schema`` is ours and
defaults to ``governance_ledger``). All tables live in that schema, so several ledgers can share
a database.

* Writers serialise on a transaction-level advisory lock derived from the schema name
  (``pg_advisory_xact_lock``): an append reads the chain head, inserts and commits while holding
  it, so any number of processes and hosts build one linear chain. Advisory locks need no table
  privilege beyond INSERT, unlike ``LOCK TABLE`` or a mutable head row.
* In a sharded ledger (:mod:`governance.ledger.shards`) alias moves live in the control shard.
  A store told so (``moves=CONTROL_SCHEMA``) checks fences against the control shard's records
  under a shared advisory lock that every alias-moving append takes exclusively, so a decision
  on any shard and a promotion are still ordered one after the other. The moves lock is always
  taken before a chain's: a batch spanning shards holds it (shared, ``moves_frozen``) while it
  takes chain locks, so a move or a fenced append that held a chain lock while queueing for the
  moves lock would close a cycle through the client, which PostgreSQL cannot see, and hang.
* An append of fewer than 32 records is one statement and one round trip: the schema's
  ``append_record`` (one record) or ``append_records`` function (:func:`append_functions`)
  takes the locks, checks the fences, reads the head and the server's clock, builds and hashes
  each record from the bytes the client sent (:func:`~governance.ledger.records.record_front`)
  and inserts it, and the statement's own transaction commits. The client rebuilds every
  returned hash with :func:`~governance.ledger.records.chain_rows` and refuses an answer that
  differs, so a function someone replaced cannot make it hand out a receipt for a record it
  did not send. Larger appends build the rows in the client and ``COPY`` them. A role that
  may not create the functions in a ledger made before them (or replace outdated ones)
  appends the second way, which costs three more round trips.
* Commits are durable with the server's default ``synchronous_commit = on``.
* Triggers refuse UPDATE, DELETE and TRUNCATE on ``records``, ``checkpoints`` and ``meta``. A
  table owner or superuser can drop triggers, so production writers should connect as a role
  with only SELECT and INSERT: :func:`least_privilege_sql` creates one.
* Erasure deletes rows of ``subject_keys``. PostgreSQL keeps the dead tuple in the table file until
  ``VACUUM`` prunes it, and in WAL segments and backups until they are recycled:
  :meth:`PostgresStore.purge` runs ``VACUUM`` on the key table (which only the table owner may
  do; other roles get a warning and the DBA's routine vacuum must do it). Data keys are stored
  wrapped under a key-encryption key that never enters the database, so leftover bytes of a
  deleted key are useless without ``<home>/keys/``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from governance.ledger.checkpoint import Checkpoint
from governance.ledger.records import (
    GENESIS_HASH,
    GENESIS_HEX,
    INSERT_COLUMNS,
    Head,
    PendingRecord,
    Receipt,
    chain_rows,
    holds_nul,
    record_front,
)
from governance.ledger.store import (
    APPEND_ONLY_MESSAGE,
    FENCE_TYPES,
    ChainSource,
    Fence,
    FenceError,
    LedgerStore,
    Query,
    StoreError,
    fence_sql,
    seek_sql,
    select_sql,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "AppendFunction",
    "PostgresChainSource",
    "PostgresStore",
    "append_functions",
    "least_privilege_sql",
    "schema_sql",
    "split_url",
]

DEFAULT_SCHEMA = "governance_ledger"
_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_APPEND_ONLY_TABLES = ("records", "checkpoints", "meta")
_COPY_THRESHOLD = 32
_COPY_TYPES = [
    "int8",
    "text",
    "text",
    "text",
    "text",
    "int8",
    "text",
    "text",
    "text",
    "bytea",
    "bytea",
]  # INSERT_COLUMNS, for binary COPY (bytea travels raw instead of hex-escaped)


#: The database's clock as :func:`~governance.ledger.canonical.utc_now` writes it. Records take
#: their time under the chain's lock, so a writer that waited for the lock cannot stamp a
#: record with a time from before the one committed ahead of it.
_DB_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_FENCE_SQLSTATE = "GVF01"  # raised by the append functions when a fence fails (DETAIL: the seq)


def _lock_key(label: str) -> int:
    digest = hashlib.sha256(label.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_PARAMS = (  # (name, type) of append_record's parameters; append_records takes arrays of them
    ("p_fence_model", "text"),
    ("p_fence_since", "bigint"),
    ("p_id", "text"),
    ("p_type", "text"),
    ("p_front", "bytea"),
    ("p_subject_key", "text"),
    ("p_subject_tag", "bigint"),
    ("p_model_name", "text"),
    ("p_model_version", "text"),
    ("p_ref", "text"),
)


@dataclass(frozen=True)
class AppendFunction:
    """A function that appends to one chain in one statement (see :func:`append_functions`).

    Attributes
    ----------
    name
        Its name in the ledger's schema.
    body
        Its PL/pgSQL source, as ``pg_proc.prosrc`` holds it.
    create
        The ``CREATE OR REPLACE FUNCTION`` statement.
    call
        The ``SELECT`` that calls it: the mode, then :data:`_PARAMS` in order.
    """

    name: str
    body: str
    create: str
    call: str


def append_functions(schema: str, moves: str | None) -> tuple[AppendFunction, AppendFunction]:
    """The functions that append to the chain in ``schema``: one record, and several.

    Both take the moves lock the mode names (``'none'``, ``'shared'`` or ``'exclusive'``, see
    :meth:`PostgresStore._moves_mode`), then the chain's; check the fences; read the head and
    the server's clock; and build, hash and insert each record from its front bytes
    (:func:`~governance.ledger.records.record_front`). ``append_record`` takes one record and
    at most one fence as scalars (psycopg dumps its ten in about 3 us of client CPU, ten
    one-element arrays in about 40 us, even in binary); ``append_records`` takes arrays.

    ``moves`` is the control shard's schema for a shard of a sharded ledger (fences are checked
    against the control's records, the moves lock is the control's, taken shared), else
    ``None`` (fences against the schema's own records; a control shard takes its own moves
    lock exclusively for a move).
    """
    s = _check_name("schema", schema)
    control = s if moves is None else _check_name("schema", moves)
    suffix = "" if moves is None else "_shard"
    return (
        _append_function(s, control, f"append_record{suffix}", one=True),
        _append_function(s, control, f"append_records{suffix}", one=False),
    )


def _append_function(s: str, control: str, name: str, *, one: bool) -> AppendFunction:
    at, hint = ("", "1") if one else ("[i]", "i::text")
    types = ", ".join(f"'{t}'" for t in FENCE_TYPES)
    columns = ", ".join(INSERT_COLUMNS)
    fence = f"""
        SELECT r.seq INTO v_moved FROM {control}.records r
            WHERE r.seq >= p_fence_since{at} AND r.model_name || '' = p_fence_model{at}
            AND r.type IN ({types}) ORDER BY r.seq LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'an alias of model % moved', p_fence_model{at}
                USING ERRCODE = '{_FENCE_SQLSTATE}', DETAIL = v_moved::text, HINT = {hint};
        END IF;"""
    record = f"""
        v_data := p_front{at} || convert_to(',"prev":"' || encode(v_hash, 'hex') || '","seq":'
            || v_seq || ',"ts":"' || o_ts || '","type":"' || p_type{at} || '"}}', 'UTF8');
        v_hash := sha256('\\x00'::bytea || v_data);
        INSERT INTO {s}.records ({columns}) VALUES (v_seq, p_id{at}, p_type{at}, o_ts,
            p_subject_key{at}, p_subject_tag{at}, p_model_name{at}, p_model_version{at},
            p_ref{at}, v_data, v_hash);
        o_hashes := o_hashes || v_hash;"""
    if one:
        fences = f"    IF p_fence_model IS NOT NULL THEN{fence}\n    END IF;"
        records = f"    v_seq := o_seq;{record}"
    else:
        fences = (
            f"    FOR i IN 1 .. coalesce(array_length(p_fence_model, 1), 0) LOOP{fence}"
            "\n    END LOOP;"
        )
        records = (
            f"    FOR i IN 1 .. array_length(p_front, 1) LOOP\n        v_seq := o_seq + i - 1;"
            f"{record}\n    END LOOP;"
        )
    moves_key = _lock_key(f"governance.ledger.moves:{control}")
    body = f"""
DECLARE
    v_now text;
    v_last text;
    v_moved bigint;
    v_data bytea;
    v_hash bytea;
    v_seq bigint;
BEGIN
    IF p_mode = 'exclusive' THEN
        PERFORM pg_advisory_xact_lock({moves_key});
    ELSIF p_mode = 'shared' THEN
        PERFORM pg_advisory_xact_lock_shared({moves_key});
    END IF;
    PERFORM pg_advisory_xact_lock({_lock_key(f"governance.ledger:{s}")});
{fences}
    SELECT r.seq + 1, r.hash, r.ts INTO o_seq, o_prev, v_last
        FROM {s}.records r ORDER BY r.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        o_seq := 0;
        o_prev := '\\x{GENESIS_HASH.hex()}'::bytea;
    END IF;
    v_now := {_DB_NOW};
    o_ts := CASE WHEN v_last IS NULL OR v_now COLLATE "C" > v_last COLLATE "C"
                 THEN v_now ELSE v_last END;
    o_hashes := '{{}}';
    v_hash := o_prev;
{records}
END
"""
    array = "" if one else "[]"
    params = ", ".join(f"{p} {t}{array}" for p, t in _PARAMS)
    create = f"""CREATE OR REPLACE FUNCTION {s}.{name}(p_mode text, {params},
    OUT o_seq bigint, OUT o_prev bytea, OUT o_ts text, OUT o_hashes bytea[])
LANGUAGE plpgsql AS $governance${body}$governance$"""
    # Binary parameters (%b): psycopg writes a text array element by element in Python, quoting
    # and hex-escaping each (646 us for a group of 20 records, against 72 us in binary).
    casts = ", ".join(f"%b::{t}{array}" for _, t in _PARAMS)
    call = f"SELECT o_seq, o_prev, o_ts, o_hashes FROM {s}.{name}(%b, {casts})"
    return AppendFunction(name, body, create, call)


def _text_filters(query: Query) -> tuple[str | None, ...]:
    """The filters of ``query`` that a record's text column must equal (one holding a NUL
    matches no row here: the store answers "nothing", not the driver's DataError)."""
    return (query.subject_key, query.model_name, query.model_version, query.type, query.ref)


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise StoreError(f"invalid {kind} name {name!r}: use [a-z_][a-z0-9_]{{0,62}}")
    return name


def split_url(url: str) -> tuple[str, str]:
    """Split our URL into a libpq connection string and the schema name.

    Parameters
    ----------
    url
        ``postgresql://...`` with an optional ``schema=`` query parameter.

    Returns
    -------
    tuple
        ``(conninfo, schema)``.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    conninfo = urlunsplit(parts._replace(query=urlencode(kept)))
    return conninfo, _check_name("schema", schema)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def schema_sql(schema: str = DEFAULT_SCHEMA) -> str:
    """Return the DDL of a ledger schema (tables, indexes, append-only triggers).

    Parameters
    ----------
    schema
        The schema name.

    Returns
    -------
    str
        SQL to run as the schema's owner.
    """
    s = _check_name("schema", schema)
    triggers = "".join(
        f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {s}.{table}
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {s}.{table}
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_change();"""
        for table in _APPEND_ONLY_TABLES
    )
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE {s}.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE {s}.records (
    seq           bigint PRIMARY KEY CHECK (seq >= 0),
    id            text NOT NULL UNIQUE,
    type          text NOT NULL,
    ts            text NOT NULL,
    subject_key   text,
    subject_tag   bigint,
    model_name    text,
    model_version text,
    ref           text,
    data          bytea NOT NULL,
    hash          bytea NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE INDEX records_subject ON {s}.records (subject_tag, seq) WHERE subject_tag IS NOT NULL;
CREATE INDEX records_model ON {s}.records (model_name, model_version, type, seq)
    WHERE model_name IS NOT NULL;
CREATE INDEX records_ref ON {s}.records (ref, seq) WHERE ref IS NOT NULL;
CREATE INDEX records_type ON {s}.records (type, seq);
CREATE TABLE {s}.checkpoints (
    n         bigint PRIMARY KEY,
    origin    text NOT NULL,
    size      bigint NOT NULL,
    root      bytea NOT NULL,
    timestamp text NOT NULL,
    key_id    text NOT NULL,
    signature bytea NOT NULL
);
CREATE TABLE {s}.subject_keys (
    kid         text PRIMARY KEY,
    subject_key text NOT NULL,
    wrapped     bytea NOT NULL,
    created     text NOT NULL
);
CREATE INDEX subject_keys_subject ON {s}.subject_keys (subject_key, created);
CREATE FUNCTION {s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}: % on %.% refused', TG_OP, TG_TABLE_SCHEMA,
        TG_TABLE_NAME USING ERRCODE = 'raise_exception';
END
$$;
{triggers}
"""


def least_privilege_sql(
    role: str, schema: str = DEFAULT_SCHEMA, *, login: bool = False, password: str | None = None
) -> str:
    """Return SQL that creates a role allowed only to read and append to a ledger.

    The role gets ``USAGE`` on the schema, ``SELECT, INSERT`` on ``records``, ``checkpoints``
    and ``meta``, ``SELECT, INSERT, DELETE`` on ``subject_keys`` (erasure), and ``EXECUTE`` on
    the schema's functions (:func:`append_functions`, which run with the caller's rights). It owns
    nothing, so it can neither UPDATE, DELETE nor TRUNCATE ledger rows nor drop the triggers: the
    append-only rule then holds even for someone who has its credentials. (No sequences are
    used: seq and checkpoint numbers are assigned under the advisory lock.) Run it as the
    schema owner after the schema exists (open the ledger once as the owner, or run
    :func:`schema_sql`).

    Example::

        psql "$ADMIN_URL" -c "$(python -c 'from governance.ledger.postgres_store import *;
            print(least_privilege_sql("ledger_writer", login=True, password="..."))')"

    Parameters
    ----------
    role
        The role to create.
    schema
        The ledger schema.
    login, password
        Create a login role (with this password) rather than a group role to ``GRANT`` to
        users or ``SET ROLE`` to.

    Returns
    -------
    str
        The SQL.
    """
    r, s = _check_name("role", role), _check_name("schema", schema)
    options = "LOGIN" if login else "NOLOGIN"
    if password is not None:
        escaped = password.replace("'", "''")
        options += f" PASSWORD '{escaped}'"
    return f"""
CREATE ROLE {r} {options} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
GRANT USAGE ON SCHEMA {s} TO {r};
GRANT SELECT, INSERT ON {s}.records, {s}.checkpoints, {s}.meta TO {r};
GRANT SELECT, INSERT, DELETE ON {s}.subject_keys TO {r};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r};
"""


@dataclass(frozen=True)
class PostgresChainSource(ChainSource):
    """Streams records from a PostgreSQL ledger over a new read-only connection."""

    conninfo: str = field(repr=False)
    schema: str
    connect_timeout: float = 10.0

    def _query(
        self, sql: str, params: Sequence[Any], batch: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        conn = psycopg.connect(
            self.conninfo, autocommit=False, connect_timeout=int(self.connect_timeout)
        )
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor(name="governance_ledger_walk", binary=True) as cur:
                cur.itersize = batch
                cur.execute(sql.encode(), params)
                while rows := cur.fetchmany(batch):
                    yield rows
            conn.rollback()
        finally:
            conn.close()

    @staticmethod
    def _range(sql: str, start: int, stop: int | None) -> tuple[str, list[Any]]:
        params: list[Any] = [start]
        if stop is not None:
            sql += " AND seq < %s"
            params.append(stop)
        return sql + " ORDER BY seq", params

    def rows(
        self, start: int = 0, stop: int | None = None, *, deep: bool = False, batch: int = 4096
    ) -> Iterator[list[tuple[Any, ...]]]:
        columns = (
            "seq, data, hash, convert_to(id, 'UTF8'), convert_to(type, 'UTF8'),"
            " convert_to(ts, 'UTF8'), subject_key, subject_tag, model_name, model_version, ref"
        )
        sql, params = self._range(
            f"SELECT {columns} FROM {self.schema}.records WHERE seq >= %s", start, stop
        )
        return self._query(sql, params, batch)

    def hashes(
        self, start: int = 0, stop: int | None = None, *, batch: int = 65536
    ) -> Iterator[list[bytes]]:
        sql, params = self._range(
            f"SELECT hash FROM {self.schema}.records WHERE seq >= %s", start, stop
        )
        for rows in self._query(sql, params, batch):
            yield [bytes(row[0]) for row in rows]


class FrozenMoves:
    """What :meth:`PostgresStore.moves_frozen` yields: a connection holding the moves lock."""

    def __init__(self, conn: psycopg.Connection[Any], fence_sql: str) -> None:
        self._conn = conn
        self._fence_sql = fence_sql

    def check(self, fence: Fence) -> None:
        """Raise :class:`FenceError` if an alias of ``fence.model`` moved since ``fence.since``."""
        moved = self._conn.execute(self._fence_sql, (fence.since, fence.model)).fetchone()
        if moved is not None:
            raise FenceError(fence, int(moved[0]))

    def append(self, store: PostgresStore, pending: Sequence[PendingRecord]) -> list[Receipt]:
        """Append to ``store`` (a shard of this ledger) in one transaction on this connection."""
        return store._append_on(self._conn, pending, ()) if pending else []


class PostgresStore(LedgerStore):
    """A ledger in one PostgreSQL schema.

    Parameters
    ----------
    url
        ``postgresql://...`` with optional ``schema=NAME``.
    connect_timeout
        Seconds to wait for the server.
    moves
        For a shard of a sharded ledger: the schema of its control shard, which holds the
        alias moves every fence is checked against (see the module docstring).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 10.0,
        create: bool = True,
        moves: str | None = None,
    ) -> None:
        super().__init__()
        self._conninfo, self.schema = split_url(url)
        self.location = _redact(url)
        self._connect_timeout = connect_timeout
        self._lock_key = _lock_key(f"governance.ledger:{self.schema}")
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = self._connect()
        s = self.schema
        self._insert_sql = (
            f"INSERT INTO {s}.records ({', '.join(INSERT_COLUMNS)}) "
            f"VALUES ({', '.join('%s' for _ in INSERT_COLUMNS)})"
        )
        self._copy_sql = (
            f"COPY {s}.records ({', '.join(INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        )
        self._head_sql = f"SELECT seq, hash, ts FROM {s}.records ORDER BY seq DESC LIMIT 1"
        self._moves = None if moves is None else _check_name("schema", moves)
        self._moves_key = _lock_key(f"governance.ledger.moves:{moves}")
        self._fence_sql = fence_sql(f"{self._moves or s}.records", "%s", model="model_name || ''")
        # append_record and append_records, once installed (_create_schema)
        self._functions: tuple[AppendFunction, AppendFunction] | None = None
        try:
            self._create_schema(create)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=int(self._connect_timeout)
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.location}: {exc}") from exc

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The store's connection (raises once closed)."""
        if self._conn is None:
            raise StoreError("the ledger store is closed")
        return self._conn

    def _create_schema(self, create: bool = True) -> None:
        with self._lock, self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            exists = self.conn.execute(
                "SELECT to_regclass(%s)", (f"{self.schema}.meta",)
            ).fetchone()
            if exists is None or exists[0] is None:
                if not create:
                    raise StoreError(f"no ledger at {self.location}")
                self.conn.execute(schema_sql(self.schema).encode())
            self._functions = self._install_append_functions()

    def _install_append_functions(self) -> tuple[AppendFunction, AppendFunction] | None:
        """Make sure the schema's append functions are this version's; return them.

        ``None`` when they are not and the role may not create them (appends then take the
        client-side path). Runs in :meth:`_create_schema`'s transaction, under the chain lock.
        """
        functions = append_functions(
            self.schema, None if self._moves == self.schema else self._moves
        )
        for function in functions:
            found = self.conn.execute(
                "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = %s AND p.proname = %s",
                (self.schema, function.name),
            ).fetchall()
            if [row[0] for row in found] == [function.body]:
                continue
            try:
                with self.conn.transaction():  # a savepoint: a refusal leaves the rest intact
                    self.conn.execute(function.create.encode())
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
                return None
        return functions

    # -- metadata -------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        with self._lock:
            rows = self.conn.execute(f"SELECT key, value FROM {self.schema}.meta").fetchall()
        return {key: value for key, value in rows}

    def init_meta(self, values: Mapping[str, str]) -> dict[str, str]:
        with self._lock, self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            with self.conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self.schema}.meta (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO NOTHING",
                    list(values.items()),
                )
        return self.meta()

    # -- records --------------------------------------------------------------------------

    def append(
        self, pending: Sequence[PendingRecord], fences: Sequence[Fence] = ()
    ) -> list[Receipt]:
        if not pending:
            return []
        with self._lock:
            return self._append_on(self.conn, pending, fences)

    def _moves_mode(self, pending: Sequence[PendingRecord], fences: Sequence[Fence]) -> str:
        """Which moves lock an append takes before its chain's (see the module docstring)."""
        if self._moves is None:
            return "none"  # one chain: its lock orders alias moves and decisions
        if self._moves == self.schema:
            return "exclusive" if any(p.type in FENCE_TYPES for p in pending) else "none"
        return "shared" if fences else "none"

    def _append_on(
        self,
        conn: psycopg.Connection[Any],
        pending: Sequence[PendingRecord],
        fences: Sequence[Fence],
    ) -> list[Receipt]:
        """Append in one transaction on ``conn`` (the store's, or a frozen batch's)."""
        if self._functions is not None and len(pending) < _COPY_THRESHOLD:
            return self._append_call(conn, self._functions, pending, fences)
        mode = self._moves_mode(pending, fences)
        with conn.transaction(), conn.cursor() as cur:
            # One round trip for the locks, the fences and the head: pipelined, they still run
            # one after the other, each statement seeing what committed before it started (so
            # the head is read under the chain's lock). The moves lock before the chain's,
            # always (see the module docstring). 1.16x decisions/s at 1 thread and 1.20x at 8
            # against a round trip each, same run; pipelining the INSERT and COMMIT too was
            # 0.85x (measured 2026-12-03).
            with conn.pipeline():
                if mode == "exclusive":
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._moves_key,))
                elif mode == "shared":
                    conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._moves_key,))
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                checks = [
                    (fence, conn.execute(self._fence_sql, (fence.since, fence.model)))
                    for fence in fences
                ]
                head = conn.execute(self._head_sql)
                clock = conn.execute(f"SELECT {_DB_NOW}")
            for fence, found in checks:
                moved = found.fetchone()
                if moved is not None:
                    raise FenceError(fence, int(moved[0]))
            row = head.fetchone()
            if row is None:
                size, prev, last_ts = 0, GENESIS_HASH, None
            else:
                size, prev, last_ts = row[0] + 1, bytes(row[1]), row[2]
            now = clock.fetchone()
            assert now is not None
            rows, receipts = chain_rows(size, prev, last_ts, pending, now[0])
            if len(rows) >= _COPY_THRESHOLD:
                with cur.copy(self._copy_sql) as copy:
                    copy.set_types(_COPY_TYPES)
                    for values in rows:
                        copy.write_row(values)
            elif len(rows) == 1:
                cur.execute(self._insert_sql, rows[0])
            else:
                cur.executemany(self._insert_sql, rows)
        return receipts

    def _append_call(
        self,
        conn: psycopg.Connection[Any],
        functions: tuple[AppendFunction, AppendFunction],
        pending: Sequence[PendingRecord],
        fences: Sequence[Fence],
    ) -> list[Receipt]:
        """Append with one call of ``append_record(s)``: one statement, its own transaction.

        ``conn`` is in autocommit, so the statement commits (durably) before it returns.
        """
        mode = self._moves_mode(pending, fences)
        function = functions[0] if len(pending) == 1 and len(fences) <= 1 else functions[1]
        if function is functions[0]:
            p = pending[0]
            fence = fences[0] if fences else None
            params: tuple[Any, ...] = (
                mode,
                None if fence is None else fence.model,
                None if fence is None else fence.since,
                p.id,
                p.type,
                record_front(p),
                p.subject_key,
                p.subject_tag,
                p.model_name,
                p.model_version,
                p.ref,
            )
        else:
            params = (
                mode,
                [f.model for f in fences],
                [f.since for f in fences],
                [p.id for p in pending],
                [p.type for p in pending],
                [record_front(p) for p in pending],
                [p.subject_key for p in pending],
                [p.subject_tag for p in pending],
                [p.model_name for p in pending],
                [p.model_version for p in pending],
                [p.ref for p in pending],
            )
        try:
            row = conn.execute(function.call, params, prepare=True).fetchone()
        except psycopg.Error as exc:
            if exc.sqlstate == _FENCE_SQLSTATE:
                fence = fences[int(exc.diag.message_hint or 0) - 1]
                raise FenceError(fence, int(exc.diag.message_detail or -1)) from None
            raise
        assert row is not None
        size, prev, ts, hashes = row
        rows, receipts = chain_rows(size, bytes(prev), None, pending, ts)
        if [bytes(h) for h in hashes] != [r[-1] for r in rows]:
            raise StoreError(
                f"{self.location}: the database chained records {size} to"
                f" {size + len(pending) - 1} differently from what was sent ({self.schema}."
                f"{function.name} is not this version's): no receipt given"
            )
        return receipts

    @contextmanager
    def moves_frozen(self) -> Iterator[FrozenMoves]:
        """Hold every alias move of a sharded ledger back; yield the fence check and writer.

        A shared session lock on the moves key, on a connection of its own, for appends that
        span shards: the fences are checked once, here, and no move commits until the block
        ends, so every shard's part is written under the same answer. The parts are written on
        that same connection (:meth:`FrozenMoves.append`), never through a store's own: a move
        or a fenced append queued for the moves lock may hold a store's connection meanwhile.
        """
        if self._moves is None:
            raise StoreError("moves_frozen needs a shard of a sharded ledger (moves=...)")
        conn = self._connect()
        try:
            conn.execute("SELECT pg_advisory_lock_shared(%s)", (self._moves_key,))
            yield FrozenMoves(conn, self._fence_sql)
        finally:
            conn.close()  # ends the session, and its lock

    def head(self) -> Head:
        with self._lock:
            row = self.conn.execute(self._head_sql).fetchone()
        if row is None:
            return Head(size=0, hash=GENESIS_HEX, ts=None)
        return Head(size=row[0] + 1, hash=bytes(row[1]).hex(), ts=row[2])

    def _one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._lock:
            row = self.conn.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def get_by_id(self, record_id: str) -> tuple[bytes, bytes] | None:
        if holds_nul(record_id):
            return None
        row = self._one(f"SELECT data, hash FROM {self.schema}.records WHERE id = %s", (record_id,))
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def get_by_seq(self, seq: int) -> tuple[bytes, bytes] | None:
        row = self._one(f"SELECT data, hash FROM {self.schema}.records WHERE seq = %s", (seq,))
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def ts_from(self, seq: int) -> str | None:
        row = self._one(
            f"SELECT ts FROM {self.schema}.records WHERE seq >= %s ORDER BY seq LIMIT 1", (seq,)
        )
        return None if row is None else str(row[0])

    def select(self, query: Query, seq_from: int | None, seq_to: int | None) -> list[bytes]:
        if holds_nul(*_text_filters(query)):
            return []
        sql, params = select_sql(f"{self.schema}.records", query, seq_from, seq_to, "%s")
        with self._lock:
            return [bytes(row[0]) for row in self.conn.execute(sql, params).fetchall()]

    def seek(self, query: Query, seq_from: int | None, skip: int) -> int | None:
        if holds_nul(*_text_filters(query)):
            return None
        sql, params = seek_sql(f"{self.schema}.records", query, seq_from, None, "%s")
        with self._lock:
            row = self.conn.execute(sql, [*params, skip]).fetchone()
        return None if row is None else int(row[0])

    def chain_source(self) -> PostgresChainSource:
        self.conn  # noqa: B018 - raise if closed
        return PostgresChainSource(self._conninfo, self.schema, self._connect_timeout)

    # -- checkpoints ----------------------------------------------------------------------

    def add_checkpoint(self, cp: Checkpoint) -> None:
        s = self.schema
        with self._lock, self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            self.conn.execute(
                f"INSERT INTO {s}.checkpoints (n, origin, size, root, timestamp, key_id, signature)"
                f" SELECT COALESCE(MAX(n) + 1, 0), %s, %s, %s, %s, %s, %s FROM {s}.checkpoints",
                (cp.origin, cp.size, cp.root, cp.timestamp, cp.key_id, cp.signature),
            )

    def checkpoints(self) -> list[Checkpoint]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT origin, size, root, timestamp, key_id, signature"
                f" FROM {self.schema}.checkpoints ORDER BY n"
            ).fetchall()
        return [
            Checkpoint(
                origin=origin,
                size=size,
                root=bytes(root),
                timestamp=timestamp,
                key_id=key_id,
                signature=bytes(signature),
            )
            for origin, size, root, timestamp, key_id, signature in rows
        ]

    # -- subject keys ---------------------------------------------------------------------

    def current_data_keys(self, subject_keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
        if not subject_keys:
            return {}
        # The keys go in binary (%b), as the append functions' parameters do: psycopg writes a
        # text array element by element in Python (10,000 keys 60 ms in text, 25-37 ms in binary).
        with self._lock:
            rows = self.conn.execute(
                f"SELECT subject_key, kid, wrapped FROM {self.schema}.subject_keys"
                " WHERE subject_key = ANY(%b::text[]) ORDER BY created, kid",
                (list(subject_keys),),
            ).fetchall()
        return {sk: (kid, bytes(wrapped)) for sk, kid, wrapped in rows}  # the newest wins

    def data_keys(self, kids: Collection[str]) -> dict[str, tuple[str, bytes]]:
        if not kids:
            return {}
        with self._lock:
            rows = self.conn.execute(
                f"SELECT kid, subject_key, wrapped FROM {self.schema}.subject_keys"
                " WHERE kid = ANY(%b::text[])",
                ([k for k in kids if not holds_nul(k)],),
            ).fetchall()
        return {kid: (sk, bytes(wrapped)) for kid, sk, wrapped in rows}

    def add_data_keys(self, rows: Sequence[tuple[str, str, bytes, str]]) -> None:
        if not rows:
            return
        with self._lock, self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.schema}.subject_keys (kid, subject_key, wrapped, created)"
                " VALUES (%s, %s, %s, %s)",
                rows,
            )

    def delete_data_keys(self, subject_key: str) -> int:
        with self._lock, self.conn.transaction():
            cur = self.conn.execute(
                f"DELETE FROM {self.schema}.subject_keys WHERE subject_key = %s", (subject_key,)
            )
            return cur.rowcount

    def purge(self) -> bool:
        """``VACUUM`` the key table so deleted key tuples are pruned from its pages.

        Returns ``False`` when the connected role may not vacuum it (not the owner): then the
        database's routine (auto)vacuum prunes the tuples later.
        """
        with self._lock:
            conn = self.conn
            notices: list[str] = []

            def collect(diag: psycopg.errors.Diagnostic) -> None:
                notices.append(str(diag.message_primary))

            conn.add_notice_handler(collect)
            try:
                conn.execute(f"VACUUM {self.schema}.subject_keys")
            except psycopg.Error:
                return False
            finally:
                conn.remove_notice_handler(collect)
        return not any("skipping" in message for message in notices)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
