"""4. Auditing at 1,000,000 decisions: ``verify``, ``trace`` and ``find --subject``.

The ledger is the one the ``batch`` benchmark filled with 1,000,000 synthetic decisions (the same
store and records); run alone, this benchmark fills one with ``Ledger.append_many`` batches of
10,000 real-shaped decision bodies. One signed checkpoint covering every record is made first
(as ``make run`` does), so verify also rebuilds and checks the Merkle tree. Only the measured
operations are timed.

Baselines, same ledger file, same run: for verify, reading every record and recomputing its
sha256 with nothing else (no chain, header or checkpoint checks); for lookups, the bare indexed
``SELECT data`` by id, and by subject index.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Budget, Row, log, percentile
from bench.project import Context, decision_seqs, subprocess_env
from governance.ledger.records import subject_tag

NAME = "audit"
TITLE = "Audit at scale: verify, trace and subject lookup"
LOOKUP_GOAL_MS = 20.0
VERIFY_GOAL_S = 5.0


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"records": 20_000, "lookups": 50, "repeats": 2}
    return {"records": 1_000_000, "lookups": 200, "repeats": 3}


def build_ledger(ctx: Context, n: int) -> dict[str, Any]:
    """Fill a fresh SQLite ledger with ``n`` decisions: subject ``str(seq + 1)`` at ``seq``."""
    from governance.ledger import Entry, Ledger

    path = ctx.path("audit/ledger.db")
    settings = ctx.settings(f"sqlite:///{path}")
    bodies = [json.loads(data)["body"] for data in ctx.sample_records]
    for b in bodies:
        b.pop("subject_key", None)
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        for start in range(0, n, 10_000):
            ledger.append_many(
                Entry("decision", bodies[i % len(bodies)], subject_id=str(i + 1))
                for i in range(start, min(start + 10_000, n))
            )
    return {"path": str(path), "url": settings.ledger_url, "records": n}


def _raw_verify(path: str) -> float:
    import hashlib

    start = time.perf_counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sha = hashlib.sha256
    cursor = conn.execute("SELECT data, hash FROM records ORDER BY seq")
    n = 0
    while rows := cursor.fetchmany(65536):
        for data, digest in rows:
            if sha(b"\x00" + data).digest() != digest:
                raise AssertionError("raw verify: hash mismatch")
        n += len(rows)
    conn.close()
    return time.perf_counter() - start


def _timed(fn: Any, items: list[Any]) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def run(ctx: Context) -> list[Row]:
    from governance.decisions.service import DecisionService

    s = sizes(ctx)
    n = s["records"]
    big = ctx.shared.get("big_ledger")
    if not big or big.get("records") != n:
        log(f"audit: building a {n:,}-record ledger with append_many")
        t = time.perf_counter()
        big = build_ledger(ctx, n)
        log(f"audit: built in {time.perf_counter() - t:.1f} s")
    else:
        log(f"audit: using the batch benchmark's {n:,}-record ledger")
    settings = ctx.settings(big["url"])
    rng = random.Random(5)
    with DecisionService.open(settings) as svc:
        ledger = svc.ledger
        decided = decision_seqs(big["path"])  # the k-th decision has subject str(k + 1)
        if len(decided) != n:
            raise AssertionError(f"the ledger holds {len(decided)} decisions, expected {n}")
        total = ledger.size()
        log("audit: signing a checkpoint over every record (not timed)")
        ledger.checkpoint()
        verify_runs: list[float] = []
        raw_runs: list[float] = []
        for _ in Budget(s["repeats"], seconds=90 if not ctx.quick else 20):
            raw_runs.append(_raw_verify(big["path"]))
            t = time.perf_counter()
            result = ledger.verify()
            verify_runs.append(time.perf_counter() - t)
            if not result.ok or result.records != total or result.checkpoints < 1:
                raise AssertionError(f"verify failed: {result}")
            log(f"audit: verify {verify_runs[-1]:.2f} s (raw scan + hash {raw_runs[-1]:.2f} s)")
        lat: dict[str, list[float]] = {}
        conn = sqlite3.connect(f"file:{big['path']}?mode=ro", uri=True)
        try:
            for r in range(s["repeats"]):
                # different random records for ours and for the raw baseline (cold pages)
                picked = rng.sample(range(n), min(2 * s["lookups"], n))
                ks, raw_ks = picked[: len(picked) // 2], picked[len(picked) // 2 :]
                seqs, raw_seqs = [decided[k] for k in ks], [decided[k] for k in raw_ks]
                ids = [x.id for x in map(ledger.get_seq, seqs) if x is not None]
                subjects = [str(k + 1) for k in ks]
                raw_records = [x for x in map(ledger.get_seq, raw_seqs) if x is not None]
                raw_ids = [x.id for x in raw_records]
                keys = [x.body.get("subject_key") for x in raw_records]
                probe = ledger.find(subject_id=subjects[0])
                if not probe or probe[0].seq != seqs[0]:
                    raise AssertionError(
                        "the k-th decision does not have subject k + 1 in this ledger"
                    )
                if r == 0:
                    for i in ids[:5]:
                        svc.trace(i)  # warm: the model version and lineage are cached once
                timings = {
                    "trace": _timed(svc.trace, ids),
                    "find": _timed(lambda sid: ledger.find(subject_id=sid), subjects),
                    "get": _timed(
                        lambda i: conn.execute(
                            "SELECT data FROM records WHERE id = ?", (i,)
                        ).fetchall(),
                        raw_ids,
                    ),
                    "subject": _timed(
                        lambda k: conn.execute(
                            "SELECT data FROM records WHERE subject_tag = ? AND subject_key = ?"
                            " ORDER BY seq",
                            (subject_tag(k), k),
                        ).fetchall(),
                        keys,
                    ),
                }
                for what, ms in timings.items():
                    lat.setdefault(f"{what}-p50", []).append(percentile(ms, 50))
                    lat.setdefault(f"{what}-p99", []).append(percentile(ms, 99))
        finally:
            conn.close()
        if ctx.profile_dir is not None:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            for i in ids:
                svc.trace(i)
            prof.disable()
            prof.dump_stats(ctx.profile_dir / "audit-trace.prof")
    cli_runs = [_cli_verify(ctx, big["url"], total)]
    label = f"{n:,} decisions" + (
        f" ({total:,} records with their recourse events)" if total != n else ""
    )
    verify_goal = (f"≤ {VERIFY_GOAL_S:.0f} s", "value", VERIFY_GOAL_S)
    ms_goal = (f"≤ {LOOKUP_GOAL_MS:.0f} ms", "value", LOOKUP_GOAL_MS)
    lookups = s["lookups"]
    return [
        Row(
            NAME,
            "verify-raw",
            f"raw limit: read + sha256 every record, {label}",
            "s",
            raw_runs,
            is_baseline=True,
        ),
        Row(
            NAME,
            "verify",
            f"ours: Ledger.verify() (chain + Merkle vs 1 checkpoint), {label}",
            "s",
            verify_runs,
            baseline="verify-raw",
            goal=("> 1× (faster than one core's raw read + sha256)", "ratio", 1.0),
            extra={"seconds_goal": verify_goal[0]},
        ),
        Row(
            NAME,
            "verify-cli",
            f"governance audit verify (CLI, incl. start-up), {label}",
            "s",
            cli_runs,
            baseline="verify-raw",
            goal=verify_goal,
        ),
        Row(
            NAME,
            "get-raw",
            f"raw: SELECT data by id, p50 of {lookups}",
            "ms",
            lat["get-p50"],
            is_baseline=True,
        ),
        Row(
            NAME,
            "get-raw-p99",
            f"raw: SELECT data by id, p99 of {lookups}",
            "ms",
            lat["get-p99"],
            is_baseline=True,
        ),
        Row(
            NAME,
            "trace-p50",
            f"ours: trace (decision + events + lineage), p50 of {lookups}, {label}",
            "ms",
            lat["trace-p50"],
            baseline="get-raw",
            goal=ms_goal,
        ),
        Row(
            NAME,
            "trace-p99",
            f"ours: trace, p99 of {lookups}",
            "ms",
            lat["trace-p99"],
            baseline="get-raw-p99",
            goal=ms_goal,
        ),
        Row(
            NAME,
            "subject-raw",
            f"raw: SELECT data by subject index, p50 of {lookups}",
            "ms",
            lat["subject-p50"],
            is_baseline=True,
        ),
        Row(
            NAME,
            "subject-raw-p99",
            f"raw: SELECT data by subject index, p99 of {lookups}",
            "ms",
            lat["subject-p99"],
            is_baseline=True,
        ),
        Row(
            NAME,
            "find-p50",
            f"ours: find(subject_id=…), p50 of {lookups}, {label}",
            "ms",
            lat["find-p50"],
            baseline="subject-raw",
            goal=ms_goal,
        ),
        Row(
            NAME,
            "find-p99",
            f"ours: find(subject_id=…), p99 of {lookups}",
            "ms",
            lat["find-p99"],
            baseline="subject-raw-p99",
            goal=ms_goal,
        ),
    ]


def _cli_verify(ctx: Context, url: str, n: int) -> float:
    """``governance audit verify --json`` on a ledger of ``n`` records, wall time (one run)."""
    env = subprocess_env(ctx.root, GOVERNANCE_LEDGER_URL=url)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "governance"), "audit", "verify", "--json"],
        cwd=ctx.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise AssertionError(f"governance audit verify failed: {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    if doc.get("records") != n or not doc.get("ok"):
        raise AssertionError(f"governance audit verify: {doc}")
    return elapsed
