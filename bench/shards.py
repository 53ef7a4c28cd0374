"""9. Sharded ledgers on PostgreSQL: durable decisions/s with 1, 2 and 4 shards, 4 processes.

One chain is serialised by one lock, so a ledger takes one writer's speed however many replicas
serve; a sharded ledger (``shards=K`` in the URL, :mod:`governance.ledger.shards`) has K chains,
each with its own lock. Four serving processes write at once, each its own
``DecisionService.open`` on the same ledger URL (plus ``&shards=K``) and the same registered
model, each deciding with N threads (:class:`bench.decisions.Decider`; subject ids distinct
across processes), one decision per call, acknowledged once committed.

For each K a fresh schema (shard ``i`` in ``SCHEMA_shard<i>``, all dropped afterwards); the
parent creates the ledger, starts the four workers (``python -m bench.shards worker ...``),
waits until each has decided once (model loaded, connections open), then releases them together
(a line on each one's stdin) for every repeat. Decisions/s is every worker's count over the
span from the first start to the last end. Afterwards the decision records in every shard are
counted: they must equal what the workers reported, plus their warm-ups (nothing lost).

Each row's ``extra`` also says where the time went: ``cpu_busy`` (the machine's CPU, 0..1,
from /proc/stat) and ``commits_per_decision`` (PostgreSQL transactions committed per decision,
from pg_stat_database: how much each group commit gathered) and ``cpu_ms_per_decision`` (CPU
milliseconds per decision in the worker processes and in PostgreSQL's, from /proc).
"""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from bench.common import Budget, Row, log, pg_schema
from bench.decisions import Decider
from bench.project import REPO, Context, subprocess_env

NAME = "shards"
TITLE = "Sharded ledger on PostgreSQL: durable decisions/s, 4 serving processes, 1 / 2 / 4 shards"
SHARDS = (1, 2, 4)
PROCESSES = 4
GOALS = {2: 1.5, 4: 2.5}  # decisions/s as a multiple of one shard's, same run
WARMUP = 1  # decisions each worker makes before the first start
TIMEOUT = 300.0  # seconds to wait for a worker's line before giving up


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"seconds": 0.5, "repeats": 2, "threads": 2, "budget": 10}
    return {"seconds": 3.0, "repeats": 3, "threads": 8, "budget": 60}


# -- the worker: one serving process ---------------------------------------------------------


def _worker_main(root: Path, url: str, index: int, threads: int, seconds: float) -> None:
    """Decide once, say ``ready``; then for every ``go`` line decide for ``seconds`` with
    ``threads`` threads and print ``{"count", "start", "end"}`` (wall clock) as JSON."""
    import pandas as pd

    from governance.decisions.service import DecisionService

    ctx = Context(
        quick=False,
        tmp=root.parent,
        root=root,
        applications=pd.read_csv(root / "data" / "raw" / "applications.csv"),
        features=(),
        pipeline={},
        pg=None,
    )
    with DecisionService.open(ctx.settings(url)) as svc:
        loaded, _ = svc.model(ctx.model, alias=ctx.alias)
        ctx.features = tuple(loaded.scorecard.order)
        decider = Decider(ctx, svc)
        decider.ids = [f"p{index}-{i}" for i in decider.ids]  # distinct across processes
        for _ in range(WARMUP):
            decider.one()
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            before = decider.n
            start = time.time()
            decider.threaded(threads, seconds)
            end = time.time()
            print(json.dumps({"count": decider.n - before, "start": start, "end": end}), flush=True)


# -- the parent ------------------------------------------------------------------------------


class Worker:
    """``python -m bench.shards worker ...``: its stdout lines come through a queue."""

    def __init__(self, ctx: Context, url: str, index: int, threads: int, seconds: float) -> None:
        self.index = index
        self.stderr_path = ctx.path(f"shards/worker-{index}.log")
        args = [str(ctx.root), url, str(index), str(threads), str(seconds)]
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.shards", "worker", *args],
                cwd=REPO,
                env=subprocess_env(ctx.root),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _fail(self, why: str) -> RuntimeError:
        tail = self.stderr_path.read_text(errors="replace")[-3000:]
        return RuntimeError(f"shards worker {self.index}: {why}\n{tail}")

    def expect(self, timeout: float = TIMEOUT) -> str:
        """The worker's next stdout line that is ours (``ready`` or a JSON object)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise self._fail(f"no answer in {timeout:.0f} s") from None
            if line is None:
                raise self._fail(f"exited with {self.proc.wait()}")
            if line == "ready" or line.startswith("{"):
                return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _shard_counts(schema: str, k: int) -> list[dict[str, int]]:
    """Records and decision records in every shard of the ledger whose control is ``schema``."""
    import psycopg

    from bench.common import pg_base_url
    from governance.ledger.shards import shard_schema

    counts = []
    with psycopg.connect(pg_base_url(), autocommit=True) as conn:
        for i in range(k):
            records, decisions = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE type = 'decision')"
                f" FROM {shard_schema(schema, i)}.records"
            ).fetchone() or (0, 0)
            counts.append({"records": int(records), "decisions": int(decisions)})
    return counts


def _cpu() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine in clock ticks, from /proc/stat (Linux)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def _cpu_by_kind(workers: list[int]) -> dict[str, float] | None:
    """CPU seconds used so far by the worker processes and by PostgreSQL's (Linux /proc)."""
    import os

    hz = os.sysconf("SC_CLK_TCK")
    used = {"workers": 0.0, "postgres": 0.0}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        kind = "workers" if int(pid) in workers else "postgres" if name == "postgres" else None
        if kind is not None:
            utime, stime = fields.split()[11:13]
            used[kind] += (int(utime) + int(stime)) / hz
    return used


def _pg_commits() -> int:
    """Transactions committed in the benchmark's database so far (pg_stat_database)."""
    import psycopg

    from bench.common import pg_base_url

    with psycopg.connect(pg_base_url(), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _measure(ctx: Context, k: int, s: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    from governance.ledger.shards import open_ledger

    with pg_schema(f"shards{k}") as (base_url, schema):
        url = f"{base_url}&shards={k}"
        open_ledger(url, home=ctx.settings(url).home).close()  # create it once, not 4 at once
        workers: list[Worker] = []
        runs: list[float] = []
        reported = 0
        try:
            workers = [Worker(ctx, url, i, s["threads"], s["seconds"]) for i in range(PROCESSES)]
            for w in workers:
                w.expect()
            pids = [w.proc.pid for w in workers]
            cpu0, commits0, by_kind0 = _cpu(), _pg_commits(), _cpu_by_kind(pids)
            for _ in Budget(s["repeats"], seconds=s["budget"]):
                for w in workers:
                    w.send("go")
                got = [json.loads(w.expect()) for w in workers]
                count = sum(int(g["count"]) for g in got)
                span = max(g["end"] for g in got) - min(g["start"] for g in got)
                reported += count
                runs.append(count / span)
            cpu1, commits1, by_kind1 = _cpu(), _pg_commits(), _cpu_by_kind(pids)
        finally:
            for w in workers:
                w.stop()
        shards = _shard_counts(schema, k)
    written = sum(c["decisions"] for c in shards)
    expected = reported + PROCESSES * WARMUP
    if written != expected:
        raise RuntimeError(
            f"shards={k}: the ledger holds {written} decisions, the workers reported"
            f" {reported} + {PROCESSES * WARMUP} warm-ups = {expected}: {shards}"
        )
    extra = {
        "shards": k,
        "processes": PROCESSES,
        "threads_per_process": s["threads"],
        "records_per_shard": [c["records"] for c in shards],
        "decisions_per_shard": [c["decisions"] for c in shards],
        "decisions_reported": reported,
        "decisions_written": written,
        "ledger_equals_reported": True,
        # where the time went (whole machine, from the first start to the last end, so a
        # little idle time between repeats is counted): CPU busy, and transactions per decision
        "cpu_busy": None
        if cpu0 is None or cpu1 is None
        else round((cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1]), 3),
        "commits_per_decision": round((commits1 - commits0) / max(1, reported), 3),
        "cpu_ms_per_decision": None
        if by_kind0 is None or by_kind1 is None
        else {
            kind: round(1000 * (by_kind1[kind] - by_kind0[kind]) / max(1, reported), 3)
            for kind in by_kind0
        },
    }
    log(
        f"shards: {k} shard(s): {statistics.median(runs):,.0f}/s; CPU busy"
        f" {extra['cpu_busy']}, {extra['commits_per_decision']} commits and CPU ms"
        f" {extra['cpu_ms_per_decision']} per decision;"
        f" per shard {shards}"
    )
    return runs, extra


def run(ctx: Context) -> list[Row]:
    if ctx.pg is not None:
        log(f"shards: skipped, PostgreSQL only ({ctx.pg})")
        return []
    s = sizes(ctx)
    who = f"{PROCESSES} processes × {s['threads']} threads, PostgreSQL (synchronous_commit=on)"
    rows = []
    for k in SHARDS:
        log(f"shards: {k} shard(s), {who}")
        runs, extra = _measure(ctx, k, s)
        if k == 1:
            rows.append(
                Row(
                    NAME,
                    "shards-1",
                    f"1 shard (one chain, one lock), {who}",
                    "/s",
                    runs,
                    is_baseline=True,
                    extra=extra,
                )
            )
        else:
            goal = GOALS[k]
            rows.append(
                Row(
                    NAME,
                    f"shards-{k}",
                    f"{k} shards ({k} chains, {k} locks), {who}",
                    "/s",
                    runs,
                    baseline="shards-1",
                    goal=(f"≥ {goal}× one shard", "ratio", goal),
                    extra=extra,
                )
            )
    return rows


if __name__ == "__main__":  # python -m bench.shards worker ROOT URL INDEX THREADS SECONDS
    if len(sys.argv) == 7 and sys.argv[1] == "worker":
        _worker_main(
            Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
        )
    else:
        raise SystemExit("usage: python -m bench.shards worker ROOT URL INDEX THREADS SECONDS")
