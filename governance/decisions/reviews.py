"""Human review: the effective outcome and review status of a decision.

The decision record never changes; a review event of kind ``override`` supersedes its outcome
(the last one wins). A ``contest`` (GDPR art. 22(3)) gives the decision the status
``contested`` until a later ``review`` or ``override`` resolves it (status ``reviewed`` or
``overridden``); a decision nobody reviewed has the status ``decided``. Light on imports: the
audit CLI uses it without loading models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from governance.ledger import Ledger, Record


def effective_outcome(decision: Record, events: Sequence[Mapping[str, Any] | Record]) -> str:
    """The outcome after human review: the last override wins; the record stays as it was."""
    override = override_in_force(events)
    return str((override or decision.body)["outcome"])


def override_in_force(events: Sequence[Mapping[str, Any] | Record]) -> Mapping[str, Any] | None:
    """The body of the last override review (the one :func:`effective_outcome` follows)."""
    found = None
    for event in events:
        kind, body = (
            (event.type, event.body)
            if isinstance(event, Record)
            else (event["type"], event["body"])
        )
        if kind == "review" and body.get("kind") == "override":
            found = body
    return found


STATUSES = ("decided", "contested", "reviewed", "overridden")


def review_status(events: Sequence[Mapping[str, Any] | Record]) -> str:
    """``decided``, ``contested`` (an open contest), ``reviewed`` or ``overridden``.

    The last review event decides: a contest opens, a review or an override after it resolves.
    """
    status = "decided"
    for event in events:
        kind, body = (
            (event.type, event.body)
            if isinstance(event, Record)
            else (event["type"], event["body"])
        )
        if kind == "review":
            status = {"contest": "contested", "override": "overridden"}.get(
                str(body.get("kind")), "reviewed"
            )
    return status


def with_effective_outcomes(ledger: Ledger, records: Sequence[Record]) -> list[dict[str, Any]]:
    """Decoded decisions, each with its effective outcome and review status (search results)."""
    out = []
    for r in records:
        events = ledger.events_for(r.id)
        out.append(
            {
                **ledger.decode(r),
                "effective_outcome": effective_outcome(r, events),
                "status": review_status(events),
            }
        )
    return out
