"""1. Durable audited decisions per second through the Python API.

One decision per call (``DecisionService.decide``), acknowledged only once committed, at 1
thread and at N threads (where the ledger's group commit merges concurrent commits), on SQLite
and on PostgreSQL. Compared, in the same run, with

* the seed tutorials' way: one MLflow run per decision (``mlflow.start_run`` + ``log_params`` +
  ``log_metric`` + ``log_text``, SQLite tracking URI in a temporary directory; the application is
  scored by the same compiled scorecard, so only the recording differs), measured in its own
  interpreter so MLflow's global state cannot touch ours;
* the raw storage limit: one single-row durable INSERT per decision with a sha256 hash chain and
  nothing else (SQLite WAL, ``synchronous=FULL``; PostgreSQL ``synchronous_commit=on``), with
  real decision records' bytes;
* the ledger's share alone: a real decision's record appended under an alias fence, without
  the scoring before it (the ceiling of the 1-thread row if deciding cost nothing).
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Budget, Row, log, pg_schema, run_for
from bench.project import REPO, Context, subprocess_env

NAME = "decisions"
TITLE = "Durable audited decisions/s, Python API, one decision per call"
GOAL_RATIO = 250.0  # vs the seed tutorials' one MLflow run per decision (shown after)
# Against the raw durable 1-row commit, same store, same run (issue 12): one thread near the
# storage's speed, many threads above it (group commit amortises the fsync).
GOAL_RAW = {"sqlite": (0.8, 3.0), "postgres": (0.8, 2.0)}


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"seconds": 0.3, "repeats": 2, "threads": 8, "mlflow_seconds": 0.5}
    return {"seconds": 2.0, "repeats": 3, "threads": 32, "mlflow_seconds": 3.0}


# -- the seed tutorials' way -----------------------------------------------------------------


def mlflow_baseline(root: Path, tmp: Path, seconds: float, repeats: int) -> list[float]:
    """Decisions/s with one MLflow run per decision (run in a fresh interpreter)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.decisions",
            "mlflow",
            str(root),
            str(tmp),
            str(seconds),
            str(repeats),
        ],
        cwd=REPO,
        env=subprocess_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the MLflow baseline failed:\n{proc.stderr[-3000:]}")
    return [float(x) for x in json.loads(proc.stdout.strip().splitlines()[-1])]


def _mlflow_main(root: Path, tmp: Path, seconds: float, repeats: int) -> None:
    import logging

    import mlflow
    import pandas as pd

    from governance.core.scorecard import Scorecard

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    tmp.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "decisions-as-runs", artifact_location=(tmp / "artifacts").as_uri()
    )
    sc = Scorecard.from_dict(json.loads((root / "models" / "scorecard.json").read_text()))
    frame = pd.read_csv(root / "data" / "split" / "test.csv")
    rows = frame[list(sc.order)].to_dict(orient="records")
    ids = frame["application_id"].astype(str).tolist()
    n = 0

    def one() -> int:
        nonlocal n
        i = n % len(rows)
        n += 1
        scored = sc.score(rows[i])
        with mlflow.start_run(experiment_id=experiment, run_name=f"decision-{ids[i]}"):
            mlflow.log_params({**rows[i], "application_id": ids[i]})
            mlflow.log_metric("score", scored.score)
            mlflow.log_text(
                json.dumps(
                    {
                        "outcome": scored.outcome,
                        "reasons": [dict(r) for r in scored.reasons],
                        "explanation": scored.explanation.to_dict(),
                    }
                ),
                "decision.json",
            )
        return 1

    for _ in range(3):  # warm-up: schema creation, first-run caches
        one()
    print(json.dumps([run_for(seconds, one) for _ in range(repeats)]))


# -- the raw storage limit -------------------------------------------------------------------


class RawSQLite:
    """Single-row durable INSERT with a sha256 hash chain: the SQLite floor."""

    def __init__(self, path: Path, records: list[bytes]) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS raw (seq INTEGER PRIMARY KEY, data BLOB NOT NULL,"
            " hash BLOB NOT NULL)"
        )
        self.records = records
        self.seq = 0
        self.prev = bytes(32)

    def one(self) -> int:
        data = self.records[self.seq % len(self.records)]
        digest = hashlib.sha256(self.prev + data).digest()
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO raw (seq, data, hash) VALUES (?, ?, ?)", (self.seq, data, digest))
        c.execute("COMMIT")
        self.prev = digest
        self.seq += 1
        return 1

    def close(self) -> None:
        self.conn.close()


class RawPostgres:
    """Single-row INSERT, autocommit (``synchronous_commit=on``), sha256 chain: the floor."""

    def __init__(self, url: str, schema: str, records: list[bytes]) -> None:
        import psycopg

        base = url.split("?", 1)[0]
        self.conn = psycopg.connect(base, autocommit=True)
        self.conn.execute("SET synchronous_commit = on")
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.raw (seq bigint PRIMARY KEY,"
            " data bytea NOT NULL, hash bytea NOT NULL)"
        )
        self.sql = f"INSERT INTO {schema}.raw (seq, data, hash) VALUES (%s, %s, %s)"
        self.records = records
        self.seq = 0
        self.prev = bytes(32)

    def one(self) -> int:
        data = self.records[self.seq % len(self.records)]
        digest = hashlib.sha256(self.prev + data).digest()
        self.conn.execute(self.sql, (self.seq, data, digest), prepare=True)
        self.prev = digest
        self.seq += 1
        return 1

    def close(self) -> None:
        self.conn.close()


# -- ours ------------------------------------------------------------------------------------


class Decider:
    """Calls ``DecisionService.decide`` with real applications, cycling through them."""

    def __init__(self, ctx: Context, svc: Any) -> None:
        frame = ctx.synthetic(4096, seed=7)
        self.rows = frame[list(ctx.features)].to_dict(orient="records")
        self.ids = frame["application_id"].astype(str).tolist()
        self.svc = svc
        self.ctx = ctx
        self.n = 0
        self.lock = threading.Lock()

    def one(self) -> int:
        with self.lock:
            i = self.n % len(self.rows)
            self.n += 1
        self.svc.decide(
            self.ctx.model,
            self.rows[i],
            subject_id=f"bench-{self.ids[i]}",
            alias=self.ctx.alias,
            caller="bench",
            purpose="benchmark",
        )
        return 1

    def threaded(self, threads: int, seconds: float) -> float:
        counts = [0] * threads
        errors: list[BaseException] = []
        start_gate = threading.Barrier(threads + 1)
        deadline = 0.0

        def work(k: int) -> None:
            start_gate.wait()
            try:
                while time.perf_counter() < deadline:
                    counts[k] += self.one()
            except BaseException as exc:  # surface it in the main thread
                errors.append(exc)

        pool = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(threads)]
        for t in pool:
            t.start()
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        start_gate.wait()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise errors[0]
        return sum(counts) / elapsed


class Appender:
    """The ledger's share of a decision: a real approval's body, appended under an alias fence.

    Everything ``decide`` does after scoring (ids, the subject's HMAC, the canonical record,
    the fence check, the chain, the durable commit), and nothing before it, so the row shows
    how much of the gap to the raw commit is the ledger's and how much the decision's.
    """

    def __init__(self, svc: Any) -> None:
        from governance.ledger import Fence

        ledger = svc.ledger
        approved = next(
            r
            for r in ledger.iter_records()
            if r.type == "decision" and r.body.get("outcome") == "approve"
        )  # an approval: one record (a denial adds its recourse)
        self.body = {k: v for k, v in approved.body.items() if k != "subject_key"}
        self.fence = Fence(since=ledger.size(), model=self.body["model"]["name"])
        self.ledger = ledger
        self.n = 0

    def one(self) -> int:
        from governance.ledger import Entry

        self.n += 1
        entry = Entry("decision", self.body, subject_id=f"append-{self.n}")
        self.ledger.append_many([entry], fence=self.fence)
        return 1


def _backend(ctx: Context, backend: str, url: str, raw: Any, s: dict[str, Any]) -> list[Row]:
    from governance.decisions.service import DecisionService

    svc = DecisionService.open(ctx.settings(url))
    try:
        decider = Decider(ctx, svc)
        for _ in range(8):  # load the model, create the ledger's keys, decide an approval
            decider.one()
        appender = Appender(svc)
        before = svc.ledger.size()
        runs: dict[str, list[float]] = {"raw": [], "one": [], "many": [], "append": []}
        for _ in Budget(s["repeats"], seconds=60 if not ctx.quick else 10):
            runs["raw"].append(run_for(s["seconds"], raw.one))
            runs["one"].append(run_for(s["seconds"], decider.one))
            runs["many"].append(decider.threaded(s["threads"], s["seconds"]))
            runs["append"].append(run_for(s["seconds"], appender.one))
        written = svc.ledger.size() - before
        if ctx.profile_dir is not None:
            prof = cProfile.Profile()
            prof.enable()
            run_for(min(s["seconds"], 2.0), decider.one)
            prof.disable()
            prof.dump_stats(ctx.profile_dir / f"decisions-{backend}-1thread.prof")
    finally:
        svc.close()
        raw.close()
    store = (
        "SQLite (WAL, synchronous=FULL)"
        if backend == "sqlite"
        else ("PostgreSQL (synchronous_commit=on)")
    )
    one, many = GOAL_RAW[backend]
    raw_key = f"{backend}-raw"
    return [
        Row(
            NAME,
            f"{backend}-raw",
            f"raw limit: 1-row durable INSERT + sha256 chain, {store}",
            "/s",
            runs["raw"],
            is_baseline=True,
        ),
        Row(
            NAME,
            f"{backend}-1",
            f"ours, 1 thread, {store}",
            "/s",
            runs["one"],
            baseline=raw_key,
            also=["mlflow-run"],
            goal=(f"≥ {one}× the raw 1-row durable commit", "ratio", one),
            extra={"ledger_records_written": written - appender.n},
        ),
        Row(
            NAME,
            f"{backend}-{s['threads']}",
            f"ours, {s['threads']} threads (group commit), {store}",
            "/s",
            runs["many"],
            baseline=raw_key,
            also=["mlflow-run"],
            goal=(f"≥ {many:.0f}× the raw 1-row durable commit", "ratio", many),
        ),
        Row(
            NAME,
            f"{backend}-append-1",
            f"the ledger's share alone: a decision's record appended (fenced), 1 thread, {store}",
            "/s",
            runs["append"],
            baseline=raw_key,
            extra={
                "note": "no goal: the ceiling of the 1-thread row if deciding cost nothing",
                "records_appended": appender.n,
            },
        ),
    ]


def run(ctx: Context) -> list[Row]:
    s = sizes(ctx)
    log("decisions: one MLflow run per decision (the seed tutorials' way)")
    mlflow_runs = mlflow_baseline(
        ctx.root, ctx.path("decisions/mlflow"), s["mlflow_seconds"], s["repeats"]
    )
    rows = [
        Row(
            NAME,
            "mlflow-run",
            "one MLflow run per decision (seed tutorials), SQLite tracking",
            "/s",
            mlflow_runs,
            is_baseline=True,
        )
    ]
    log("decisions: SQLite")
    raw = RawSQLite(ctx.path("decisions/raw.db"), ctx.sample_records)
    rows += _backend(ctx, "sqlite", f"sqlite:///{ctx.path('decisions/ledger.db')}", raw, s)
    if ctx.pg is None:
        log("decisions: PostgreSQL")
        with pg_schema("dec") as (url, _), pg_schema("decraw") as (_, raw_schema):
            raw_pg = RawPostgres(url, raw_schema, ctx.sample_records)
            rows += _backend(ctx, "postgres", url, raw_pg, s)
    return rows


if __name__ == "__main__":  # python -m bench.decisions mlflow ROOT TMP SECONDS REPEATS
    if len(sys.argv) == 6 and sys.argv[1] == "mlflow":
        _mlflow_main(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        raise SystemExit("usage: python -m bench.decisions mlflow ROOT TMP SECONDS REPEATS")
