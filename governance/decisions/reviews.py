"""Human review: the effective outcome of a decision after overrides.

The decision record never changes; a review event of kind ``override`` supersedes its outcome
(the last one wins). Light on imports: the audit CLI uses it without loading models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from governance.ledger import Ledger, Record


def effective_outcome(decision: Record, events: Sequence[Mapping[str, Any] | Record]) -> str:
    """The outcome after human review: the last override wins; the record stays as it was."""
    outcome = str(decision.body["outcome"])
    for event in events:
        kind, body = (
            (event.type, event.body)
            if isinstance(event, Record)
            else (event["type"], event["body"])
        )
        if kind == "review" and body.get("kind") == "override":
            outcome = str(body["outcome"])
    return outcome


def with_effective_outcomes(ledger: Ledger, records: Sequence[Record]) -> list[dict[str, Any]]:
    """Decoded decisions, each with its effective outcome (for find / search results)."""
    return [
        {**ledger.decode(r), "effective_outcome": effective_outcome(r, ledger.events_for(r.id))}
        for r in records
    ]
