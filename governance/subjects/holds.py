"""Legal holds on a subject's records, and the retention report (what is due, what is held).

A hold and its release are ledger events (``legal_hold`` / ``legal_hold_release``, naming the
subject by its key, with who and why); while one is in force :meth:`Ledger.forget` refuses the
subject. The retention report counts, per record type, the records older than the type's
retention period (``params.yaml`` → ``retention``, :mod:`governance.core.retention`) and the
subjects whose personal data may therefore be erased, leaving out those under a hold.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from governance.core.retention import RetentionPolicy
from governance.core.text import refuse_control
from governance.ledger import EVENT_TYPES, Ledger, Receipt

ERR_NOT_HELD = "subject is not under a legal hold: nothing to release"
ERR_ALREADY_HELD = "subject is already under a legal hold (event {id} since {ts})"
ERR_EMPTY = "give a non-empty --reason and --by"


def _checked(reason: str, by: str) -> None:
    """Both given, ``by`` one line, ``reason`` prose (:mod:`governance.core.text`)."""
    if not reason.strip() or not by.strip():
        raise ValueError(ERR_EMPTY)
    refuse_control("--by", by)
    refuse_control("--reason", reason, prose=True)


def hold(ledger: Ledger, subject_id: str, *, reason: str, by: str) -> Receipt:
    """Put a subject's records under a legal hold (``forget`` is refused until released)."""
    _checked(reason, by)
    current = ledger.legal_hold(subject_id)
    if current is not None:
        raise ValueError(ERR_ALREADY_HELD.format(id=current.id, ts=current.ts))
    sk = ledger.subject_key(subject_id)
    return ledger.append("legal_hold", {"subject_key": sk, "reason": reason, "by": by})


def release(ledger: Ledger, subject_id: str, *, reason: str, by: str) -> Receipt:
    """Release the hold in force on a subject."""
    _checked(reason, by)
    current = ledger.legal_hold(subject_id)
    if current is None:
        raise ValueError(ERR_NOT_HELD)
    sk = ledger.subject_key(subject_id)
    body = {"subject_key": sk, "reason": reason, "by": by, "hold": current.id}
    return ledger.append("legal_hold_release", body)


def retention_report(
    ledger: Ledger, policy: RetentionPolicy, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Per record type: its period, the cut-off, how many records are past it; and the subjects
    whose personal data may be erased (every record about them is past its period), apart from
    those under a legal hold. Pseudonymous records stay in the chain; erasure is ``forget``.
    """
    now = now or dt.datetime.now(dt.UTC)
    cutoffs = {kind: policy.cutoff(kind, now) for kind in EVENT_TYPES}
    counts = dict.fromkeys(EVENT_TYPES, 0)
    totals = dict.fromkeys(EVENT_TYPES, 0)
    subject_due: dict[str, bool] = {}
    for record in ledger.iter_records():
        kind = record.type
        past = dt.datetime.fromisoformat(record.ts) < cutoffs.get(kind, policy.cutoff(kind, now))
        totals[kind] = totals.get(kind, 0) + 1
        counts[kind] = counts.get(kind, 0) + int(past)
        sk = record.body.get("subject_key")
        if isinstance(sk, str):
            subject_due[sk] = subject_due.get(sk, True) and past
    due = sorted(sk for sk, ok in subject_due.items() if ok)
    held = [sk for sk in due if ledger.legal_hold(subject_key=sk) is not None]
    rows = [
        {
            "type": kind,
            "months": policy.months_for(kind),
            "cutoff": policy.cutoff(kind, now).isoformat(),
            "records": totals[kind],
            "records_due": counts[kind],
        }
        for kind in sorted(totals)
    ]
    return {
        "now": now.isoformat(),
        "minimum_months": policy.minimum,
        "types": rows,
        "subjects": len(subject_due),
        "subjects_due": [sk for sk in due if sk not in set(held)],
        "subjects_held": held,
    }
