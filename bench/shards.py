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
            for _ in Budget(s["repeats"], seconds=s["budget"]):
                for w in workers:
                    w.send("go")
                got = [json.loads(w.expect()) for w in workers]
                count = sum(int(g["count"]) for g in got)
                span = max(g["end"] for g in got) - min(g["start"] for g in got)
                reported += count
                runs.append(count / span)
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
    }
    log(f"shards: {k} shard(s): {statistics.median(runs):,.0f}/s; per shard {shards}")
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
