"""Build ``format1/``: a small ledger written by the code of commit aaeb6af (canonical JSON /1).

This is how the checked-in fixture was made, kept for the record. It was run once, before the
canonical format 2 existed, as::

    python tests/ledger/data/make_format1_ledger.py tests/ledger/data/format1

Running it with later code writes that code's current format, which is not what the fixture is
for: the point of ``format1/`` is that its bytes came from the old encoder. The ledger holds
decisions whose bodies exercise every spelling that format 1 and format 2 write differently
(floats at each exponent boundary) and the ones they share (escapes, non-ASCII, key order, big
integers, nesting), PII encrypted per subject, an erasure, outcomes, a review, a promotion and
two checkpoints (stored in the database and exported to ``home/checkpoints``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from pathlib import Path

from governance.ledger import Entry, Ledger

FLOATS = [
    1e-7, -1e-7, 1e-6, 1e-5, 1.5e-5, 9.999999999999999e-05, 1e-4, 0.001, 0.1, 1.0, 100.0,
    1e15, 9999999999999998.0, 1e16, 1e17, 1e21, 1e22, 1e23, 1.2345678901234567e-300,
    5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.0, 2 / 3,
]  # fmt: skip
TEXT = {
    "controls": "".join(chr(c) for c in range(0x20)) + "\x7f",
    "quote_backslash": '"\\/',
    "separators": "\u2028\u2029",
    "non_ascii": "Zürich 日本 😀 \ue000 \uffff",
}
KEYS = {"\uffff": 1, "\U0001f600": 2, "\ue000": 3, "a": 4, "B": 5, "é": 6, "": 7}


def body(i: int) -> dict[str, object]:
    return {
        "model": {"name": "hmda-logistic", "version": str(1 + i % 2), "alias": "champion"},
        "inputs": {"lvr": FLOATS[i % len(FLOATS)], "dir": FLOATS[(i * 7) % len(FLOATS)]},
        "floats": FLOATS,
        "text": TEXT,
        "keys": KEYS,
        "big": [2**53 + 1, 2**63, 2**64, -(2**70), 10**30],
        "nested": {"a": [[{"b": [None, True, False, []]}], {}]},
        "outcome": "deny" if i % 3 == 0 else "approve",
        "score": i / 7,
        "n": i,
    }


def main(out: Path) -> None:
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=False)
    db = out / "ledger.db"
    with Ledger.open(f"sqlite:///{db}", home=out / "home") as ledger:
        receipts = [
            ledger.append("decision", body(i), subject_id=f"applicant-{i}",
                          pii={"name": f"Ann {i} Ödegaard", "ssn": f"000-00-{i:04d}"})
            for i in range(6)
        ]  # fmt: skip
        receipts += ledger.append_many(
            [Entry("decision", body(i), subject_id=f"applicant-{i}") for i in range(6, 12)]
        )
        ledger.checkpoint()
        ledger.append("outcome", {"decision_id": receipts[0].id, "observed": "deny"})
        ledger.append(
            "review",
            {
                "decision_id": receipts[1].id,
                "kind": "override",
                "reviewer": "rév",
                "outcome": "deny",
            },
        )
        ledger.append(
            "promotion",
            {"model": {"name": "hmda-logistic", "version": "2"}, "alias": "champion",
             "approver": "Zoë", "reason": "gates passed\n(fairness 0.91)"},
        )  # fmt: skip
        ledger.forget("applicant-2", reason="request 17")
        ledger.append("decision", body(12), record_id=str(uuid.UUID(int=12, version=4)))
        ledger.checkpoint()
        assert ledger.verify(deep=True).ok
        facts = {
            "size": ledger.size(),
            "head": ledger.head().hash,
            "ledger_id": ledger.ledger_id,
            "canonical": "governance.canonical-json/1",
            "decision_ids": [r.id for r in receipts],
        }
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("VACUUM")
    conn.close()
    (out / "facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
