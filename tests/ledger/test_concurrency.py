"""Concurrency: writer processes appending at once build one linear chain."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

Backend = Any  # tests/ledger/conftest.py:Backend (conftest modules are not importable)
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WRITERS = 4
SINGLES = 60
BATCHES = 6
BATCH = 25

WRITER = r"""
import json, sys, threading
from pathlib import Path
from governance.ledger import Entry, Ledger

url, home, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
singles, batches, batch = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ledger = Ledger.open(url, home=home)
sys.stdin.readline()  # start together
receipts = []
for i in range(singles):
    receipts.append(ledger.append("decision", {"writer": name, "i": i}, subject_id=f"{name}-{i}",
                                  pii={"i": i} if i % 4 == 0 else None))
    if i % (singles // batches) == 0:
        receipts += ledger.append_many(
            [Entry("decision", {"writer": name, "i": i, "k": k}) for k in range(batch)])
json.dump([[r.seq, r.id, r.hash] for r in receipts], sys.stdout)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_writer_processes_build_one_chain(
    kind: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(kind)
    ledger = backend.open()  # creates the schema and keys before the writers start
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                backend.url,
                str(backend.home),
                f"w{n}",
                str(SINGLES),
                str(BATCHES),
                str(BATCH),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(WRITERS)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    receipts: list[list[Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-3000:]
        receipts += json.loads(out)

    total = ledger.size()
    assert total == len(receipts) == WRITERS * (SINGLES + BATCHES * BATCH)
    assert sorted(seq for seq, _, _ in receipts) == list(range(total))  # no gap, no duplicate
    assert len({record_id for _, record_id, _ in receipts}) == total
    for seq, record_id, digest in receipts:
        record = ledger.get(record_id)
        assert record is not None and record.seq == seq and record.hash == digest
    # The writers really interleaved: the chain alternates between them.
    writers = [record.body["writer"] for record in ledger.iter_records()]
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert switches >= WRITERS - 1
    result = ledger.verify(deep=True)
    assert result.ok and result.records == total, result
    ledger.checkpoint()
    assert ledger.verify().ok
