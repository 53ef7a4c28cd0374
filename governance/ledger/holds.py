"""Legal holds: which ``legal_hold`` event is in force for a subject, and the refusal to forget.

A hold and its release are ordinary ledger events naming the subject by its key; the one in
force is the latest ``legal_hold`` with no ``legal_hold_release`` after it. While one is in
force :meth:`~governance.ledger.Ledger.forget` refuses the subject: records that a court or a
regulator asked to be kept are kept.
"""

from __future__ import annotations

from collections.abc import Callable

from governance.ledger.errors import LedgerError
from governance.ledger.records import Record

Find = Callable[..., list[Record]]
"""The ledger's ``find`` (passed in: the facade imports this module, not the reverse)."""

PAGE = 1000
ERR_HELD = (
    "refusing to forget: the subject is under a legal hold since {since} ({reason}; event {id}); "
    "release it first"
)


def hold_in_force(find: Find, subject_key: str) -> Record | None:
    """The ``legal_hold`` event in force for a subject key (not released since), or None."""
    current: Record | None = None
    for kind in ("legal_hold", "legal_hold_release"):
        offset = 0
        while True:
            page = find(subject_key=subject_key, type=kind, limit=PAGE, offset=offset)
            for record in page:
                if current is None or record.seq > current.seq:
                    current = record
            if len(page) < PAGE:
                break
            offset += PAGE
    return current if current is not None and current.type == "legal_hold" else None


def refuse_if_held(find: Find, subject_key: str) -> None:
    """Raise :class:`LedgerError` naming the hold when one is in force for the subject."""
    hold = hold_in_force(find, subject_key)
    if hold is not None:
        raise LedgerError(
            ERR_HELD.format(since=hold.ts, reason=hold.body.get("reason"), id=hold.id)
        )
