"""Durability: a writer killed with SIGKILL at random moments loses no acknowledged record.

A writer subprocess appends in a loop (single records and batches) and prints ``seq id`` for
every record *after* its commit returned, flushing each line. The test kills it with SIGKILL at
random moments, over and over, and after each kill checks that every acknowledged id is stored
at its acknowledged seq, that nothing partial exists and that the ledger verifies.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

Backend = Any  # tests/ledger/conftest.py:Backend (conftest modules are not importable)

WRITER = r"""
import random, sys, threading
from pathlib import Path
from governance.ledger import Entry, Ledger
from governance.ledger import sqlite_store

url, home, seed, threads = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if int(sys.argv[5]):  # backfill the SQLite WAL every that many record bytes
    sqlite_store.WAL_BACKFILL_BYTES = int(sys.argv[5])
ledger = Ledger.open(url, home=home)
out, out_lock = sys.stdout, threading.Lock()
print("ready", flush=True)

def write(k):
    rnd = random.Random(seed * 100 + k)
    n = 0
    while True:
        size = rnd.choice([1, 1, 1, 2, 5, 20, 50] if threads == 1 else [1, 1, 1, 1, 2, 5])
        entries = [
            Entry("decision", {"writer": seed, "t": k, "n": n + i, "pad": "x" * rnd.randrange(999)},
                  subject_id=f"s{rnd.randrange(50)}",
                  pii={"n": n + i} if rnd.random() < 0.3 else None)
            for i in range(size)
        ]
        receipts = ledger.append_many(entries)  # concurrent callers share commits (group commit)
        with out_lock:  # acknowledged: printed only after append_many returned
            out.write("".join(f"{r.seq} {r.id}\n" for r in receipts))
            out.flush()
        n += size

for k in range(1, threads):
    threading.Thread(target=write, args=(k,), daemon=True).start()
write(0)
"""


def _check_present(ledger: Any, acknowledged: dict[int, str]) -> None:
    for seq, record_id in acknowledged.items():
        record = ledger.get(record_id)
        assert record is not None, f"acknowledged record {record_id} (seq {seq}) lost"
        assert record.seq == seq


def _kill_loop(
    backend: Backend, kills: int, budget: float, threads: int = 1, backfill_bytes: int = 0
) -> int:
    """Kill ``kills`` writers at random moments (within ``budget`` seconds); return the kills.

    With ``threads`` > 1 each writer appends from that many threads at once, so the kills land
    inside group commits: a leader committing other threads' records, followers waiting. With
    ``backfill_bytes`` the SQLite store's WAL backfill runs after every that many record bytes
    (a few records) instead of every 4 MiB, so kills land during backfills too.
    """
    rnd = random.Random(20260730)
    acknowledged: dict[int, str] = {}
    ledger = backend.open()
    ledger.append("decision", {"setup": True})  # create keys and schema before the writers run
    ledger.close()
    deadline = time.monotonic() + budget
    done = 0
    while done < kills and time.monotonic() < deadline:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                backend.client_url(f"writer{done}"),
                str(backend.home),
                str(done),
                str(threads),
                str(backfill_bytes),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        if rnd.random() < 0.9:  # most kills land while appending, some while starting up
            assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else ""
            time.sleep(rnd.uniform(0.0, 0.08))
        else:
            time.sleep(rnd.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        output, errors = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, errors.decode()[-2000:]
        fresh: dict[int, str] = {}
        for line in output.decode().splitlines():
            if line != "ready":
                seq, record_id = line.split()
                fresh[int(seq)] = record_id
        acknowledged.update(fresh)
        backend.wait_ended(f"writer{done}")  # a COMMIT sent before the kill may still land
        done += 1

        ledger = backend.open()
        try:
            size = ledger.size()
            assert max(acknowledged, default=0) < size
            _check_present(ledger, fresh)
            result = ledger.verify()
            assert result.ok and result.records == size, result
        finally:
            ledger.close()
    ledger = backend.open()
    try:
        _check_present(ledger, acknowledged)  # every acknowledgement, once more at the end
        assert ledger.verify(deep=True).ok
        ledger.checkpoint()
    finally:
        ledger.close()
    assert len(acknowledged) > kills  # the writers did write between the kills
    return done


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_record_sqlite(
    make_backend: Callable[[str], Backend],
) -> None:
    # at least 25 kills within the budget (a loaded machine gets fewer in; each one counts)
    assert _kill_loop(make_backend("sqlite"), kills=100, budget=55.0) >= 25


@pytest.mark.slow
def test_sigkill_during_wal_backfills_loses_no_acknowledged_record(
    make_backend: Callable[[str], Backend],
) -> None:
    assert _kill_loop(make_backend("sqlite"), kills=40, budget=30.0, backfill_bytes=4096) >= 15


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_loses_no_acknowledged_record_postgres(
    make_backend: Callable[[str], Backend],
) -> None:
    assert _kill_loop(make_backend("postgres"), kills=100, budget=55.0) >= 25


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_inside_group_commits_loses_no_acknowledged_record(
    make_backend: Callable[[str], Backend], kind: str
) -> None:
    assert _kill_loop(make_backend(kind), kills=40, budget=40.0, threads=8) >= 20
