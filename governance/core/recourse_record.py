"""The ``recourse`` ledger event that goes with every adverse decision (pure; no I/O).

Every adverse decision is appended together with a ``recourse`` event in the same transaction:
the event names the decision (``decision_id``, an index column, so ``events_for`` finds it), the
model version, the sha256 of the recourse policy it was computed under, and the recourse
document itself (:meth:`governance.core.recourse.Recourse.to_dict`, its plain-word
``summary`` included). It is hashed into the chain like any other record, and a notice or the
explorer reads it back from the ledger alone.

A :class:`Memo` shares one computation between identical adverse applications of one batch
(the same inputs under the same policy have the same exact answer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from governance.core.recourse import RecoursePolicy, compute
from governance.core.scorecard import Scorecard

FORMAT: Final = "governance.recourse-event/1"

ERR_NOT_RECOURSE = "record {id} is a {type} event, not a recourse event"


def event_body(
    decision_id: str, model: Mapping[str, Any], recourse: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of the ``recourse`` event of one adverse decision."""
    return {
        "format": FORMAT,
        "decision_id": decision_id,
        "model": {"name": model["name"], "version": model["version"]},
        "policy_sha256": recourse["policy_sha256"],
        "feasible": recourse["feasible"],
        "recourse": dict(recourse),
    }


class Memo:
    """Recourse documents of one model version, computed once per distinct input among the
    last ``size`` distinct inputs (a batch of a million rows would otherwise keep every
    denial's document: memory, and garbage collections walking it all)."""

    def __init__(self, scorecard: Scorecard, policy: RecoursePolicy, size: int = 4096) -> None:
        self.scorecard = scorecard
        self.policy = policy
        self.size = size
        self._done: dict[str, dict[str, Any]] = {}

    def document(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The recourse document (``to_dict``) of an adverse application."""
        key = json.dumps(inputs, sort_keys=True, default=str)
        found = self._done.get(key)
        if found is None:
            found = compute(self.scorecard, self.policy, inputs).to_dict()
            if len(self._done) >= self.size:
                del self._done[next(iter(self._done))]  # the oldest
            self._done[key] = found
        return found


def recorded(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The (first) decoded ``recourse`` event among a decision's events, or None."""
    for event in events:
        if event.get("type") == "recourse":
            return event
    return None


__all__ = ["FORMAT", "Memo", "event_body", "recorded"]
