"""2. Batch scoring with the ledger: decisions/s through ``DecisionService.score_frame``.

1,000,000 synthetic applications (a seeded bootstrap of the real HMDA rows with jitter, see
:func:`bench.project.synthetic`) are scored and recorded, one ledger transaction per chunk of
10,000, into a fresh ledger each run. Compared in the same run with the raw batched INSERT
limit: the same number of records of the same sizes (real decision records' bytes), a sha256
hash chain, batches of 10,000 in one transaction each (SQLite ``executemany``; PostgreSQL
``COPY``), nothing else (no id, subject, model or ref indexes).

The last SQLite ledger is kept for the ``audit`` benchmark (same store, same records).
"""

from __future__ import annotations

import cProfile
import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import Budget, Row, log, pg_schema
from bench.project import SYNTHETIC_LABEL, Context, decision_seqs

NAME = "batch"
TITLE = "Batch scoring with the ledger (synthetic applications), decisions/s"
CHUNK = 10_000
GOAL = 0.6  # times the raw batched INSERT / COPY, same run (issue 12)


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"rows": 20_000, "pg_rows": 10_000, "repeats": 2, "budget": 30.0}
    return {"rows": 1_000_000, "pg_rows": 200_000, "repeats": 3, "budget": 150.0}


def _chain_batches(records: list[bytes], n: int):
    prev = bytes(32)
    sha = hashlib.sha256
    m = len(records)
    for start in range(0, n, CHUNK):
        rows = []
        for seq in range(start, min(start + CHUNK, n)):
            data = records[seq % m]
            digest = sha(prev + data).digest()
            rows.append((seq, data, digest))
            prev = digest
        yield rows


def raw_sqlite(path: Path, records: list[bytes], n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE raw (seq INTEGER PRIMARY KEY, data BLOB NOT NULL, hash BLOB NOT NULL)"
    )
    start = time.perf_counter()
    for rows in _chain_batches(records, n):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO raw (seq, data, hash) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def _ledger_rows(records: list[bytes], n: int):
    """``_chain_batches`` as rows of the ledger's table: each with the columns a decision's
    record fills (a UUIDv7 id, a subject key and its tag, the model), in ``INSERT_COLUMNS``."""
    from governance.ledger.records import INSERT_COLUMNS, new_record_ids, subject_tag

    keys = [hashlib.sha256(b"subject %d" % i).hexdigest() for i in range(min(n, 100_000))]
    for rows in _chain_batches(records, n):
        ids = new_record_ids(len(rows))
        ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        full = []
        for (seq, data, digest), rid in zip(rows, ids, strict=True):
            key = keys[seq % len(keys)]
            column = {
                "seq": seq,
                "id": rid,
                "type": "decision",
                "ts": ts,
                "subject_key": key,
                "subject_tag": subject_tag(key),
                "model_name": "mortgage-denial",
                "model_version": "1",
                "ref": None,
                "data": data,
                "hash": digest,
            }
            full.append(tuple(column[c] for c in INSERT_COLUMNS))
        yield full


def schema_sqlite(path: Path, records: list[bytes], n: int) -> float:
    """The ledger's own table and indexes, nothing else: the same batches (rows built outside
    the timing: storage only). The ceiling of ``score_frame`` if deciding cost nothing.

    Through the store's own connection (its pragmas) and statement, with its WAL backfill
    asked after each batch as the store's append asks it (every batch is past its mark)."""
    from governance.ledger.sqlite_store import _INSERT_SQL, SQLiteStore

    store = SQLiteStore(path)
    conn = store.conn
    elapsed = 0.0
    for rows in _ledger_rows(records, n):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT_SQL, rows)  # the store's own statement
        conn.execute("COMMIT")
        store._backfill.ask()
        elapsed += time.perf_counter() - start
    store.close()
    return n / elapsed


def schema_postgres(url: str, schema: str, records: list[bytes], n: int) -> float:
    """:func:`schema_sqlite` on PostgreSQL: binary ``COPY`` into the ledger's own schema (its
    table, indexes and append-only triggers), as the store copies a large append."""
    import psycopg

    from governance.ledger.postgres_store import _COPY_TYPES, schema_sql
    from governance.ledger.records import INSERT_COLUMNS

    sql = f"COPY {schema}.records ({', '.join(INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    elapsed = 0.0
    with psycopg.connect(url.split("?", 1)[0]) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute(schema_sql(schema))
        conn.commit()
        for rows in _ledger_rows(records, n):
            start = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            elapsed += time.perf_counter() - start
    return n / elapsed


def raw_postgres(url: str, schema: str, records: list[bytes], n: int) -> float:
    import psycopg

    with psycopg.connect(url.split("?", 1)[0]) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(f"DROP TABLE IF EXISTS {schema}.raw")
        conn.execute(
            f"CREATE TABLE {schema}.raw (seq bigint PRIMARY KEY, data bytea NOT NULL,"
            " hash bytea NOT NULL)"
        )
        conn.commit()
        start = time.perf_counter()
        for rows in _chain_batches(records, n):
            sql = f"COPY {schema}.raw (seq, data, hash) FROM STDIN"
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return n / (time.perf_counter() - start)


def ours(ctx: Context, url: str, frame: Any, profile: Path | None = None) -> tuple[float, Any]:
    from governance.decisions.service import DecisionService

    with DecisionService.open(ctx.settings(url)) as svc:
        svc.model(ctx.model, alias=ctx.alias)  # load the model outside the timing
        prof = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if prof:
            prof.enable()
        last: list[Any] = []
        for _done, receipts, _scores, _outcomes in svc.score_frame(
            ctx.model,
            frame,
            subject_column="application_id",
            alias=ctx.alias,
            caller="bench",
            purpose="benchmark batch",
            chunk=CHUNK,
        ):
            last = receipts
        if prof and profile:
            prof.disable()
            prof.dump_stats(profile)
        rate = len(frame) / (time.perf_counter() - start)
        size = svc.ledger.size()
        sample = [r.id for r in last[:: max(1, len(last) // 200)]]
    return rate, {"ledger_records": size, "last_chunk_ids": sample}


def run(ctx: Context) -> list[Row]:
    s = sizes(ctx)
    n = s["rows"]
    log(f"batch: generating {n:,} synthetic applications")
    frame = ctx.synthetic(n, seed=1)
    rows: list[Row] = []
    raw_runs: list[float] = []
    our_runs: list[float] = []
    kept: dict[str, Any] = {}
    for r in Budget(s["repeats"], s["budget"]):
        raw_runs.append(raw_sqlite(ctx.path("batch/raw.db"), ctx.sample_records, n))
        log(f"batch: SQLite raw run {r + 1}: {raw_runs[-1]:,.0f}/s")
        path = ctx.path(f"batch/ledger-{r}.db")
        rate, info = ours(ctx, f"sqlite:///{path}", frame)
        our_runs.append(rate)
        log(f"batch: SQLite score_frame run {r + 1}: {rate:,.0f}/s")
        decided = len(decision_seqs(path))
        if decided != n:
            raise AssertionError(f"the ledger holds {decided} decisions, expected {n}")
        if kept:
            for old in Path(kept["path"]).parent.glob(Path(kept["path"]).name + "*"):
                old.unlink()
        kept = {"path": str(path), "url": f"sqlite:///{path}", "records": n, **info}
    ctx.shared["big_ledger"] = kept
    ctx.path("batch/raw.db")  # removes the raw baseline's file
    schema_rate = schema_sqlite(ctx.path("batch/schema.db"), ctx.sample_records, n)
    log(f"batch: SQLite, the ledger's schema alone: {schema_rate:,.0f}/s")
    ctx.path("batch/schema.db")
    label = f"{n:,} {SYNTHETIC_LABEL}"
    rows += [
        Row(
            NAME,
            "sqlite-raw",
            f"raw limit: batched INSERT ({CHUNK:,}/txn) + sha256 chain,"
            f" SQLite WAL FULL, {n:,} records",
            "/s",
            raw_runs,
            is_baseline=True,
        ),
        Row(
            NAME,
            "sqlite",
            f"ours: score_frame, SQLite ledger, {label}",
            "/s",
            our_runs,
            baseline="sqlite-raw",
            goal=(f"≥ {GOAL}× the raw batched INSERT", "ratio", GOAL),
            extra={"rows": n, "synthetic": True, "chunk": CHUNK},
        ),
        Row(
            NAME,
            "sqlite-schema",
            f"the ledger's schema alone: the same batched INSERT into the ledger's table and"
            f" indexes (id, subject, model, ref, type), no deciding, SQLite, {n:,} records",
            "/s",
            [schema_rate],
            baseline="sqlite-raw",
            extra={
                "note": "no goal: the ceiling of the score_frame row if deciding cost nothing",
                "rows": n,
            },
        ),
    ]
    if ctx.profile_dir is not None:
        pn = min(n, 100_000)
        ours(
            ctx,
            f"sqlite:///{ctx.path('batch/profile.db')}",
            frame.iloc[:pn],
            profile=ctx.profile_dir / "batch-sqlite.prof",
        )
    if ctx.pg is None:
        m = s["pg_rows"]
        part = frame.iloc[:m]
        raw_pg: list[float] = []
        ours_pg: list[float] = []
        for r in Budget(s["repeats"], s["budget"] / 2):
            with pg_schema("batchraw") as (url, schema):
                raw_pg.append(raw_postgres(url, schema, ctx.sample_records, m))
            with pg_schema("batch") as (url, _schema):
                ours_pg.append(ours(ctx, url, part)[0])
            log(
                f"batch: PostgreSQL run {r + 1}: raw {raw_pg[-1]:,.0f}/s, ours {ours_pg[-1]:,.0f}/s"
            )
        with pg_schema("batchschema") as (url, schema):
            schema_pg = schema_postgres(url, schema, ctx.sample_records, m)
        log(f"batch: PostgreSQL, the ledger's schema alone: {schema_pg:,.0f}/s")
        rows += [
            Row(
                NAME,
                "postgres-raw",
                f"raw limit: COPY ({CHUNK:,}/txn) + sha256 chain, PostgreSQL, {m:,} records",
                "/s",
                raw_pg,
                is_baseline=True,
            ),
            Row(
                NAME,
                "postgres",
                f"ours: score_frame, PostgreSQL ledger, {m:,} synthetic",
                "/s",
                ours_pg,
                baseline="postgres-raw",
                goal=(f"≥ {GOAL}× the raw COPY", "ratio", GOAL),
                extra={"rows": m, "synthetic": True, "chunk": CHUNK},
            ),
            Row(
                NAME,
                "postgres-schema",
                f"the ledger's schema alone: the same COPY into the ledger's table and indexes"
                f" (id, subject, model, ref, type), no deciding, PostgreSQL, {m:,} records",
                "/s",
                [schema_pg],
                baseline="postgres-raw",
                extra={
                    "note": "no goal: the ceiling of the score_frame row if deciding cost nothing",
                    "rows": m,
                },
            ),
        ]
    return rows
