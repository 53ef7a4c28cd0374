"""The recourse recorded with a decision, read back from the ledger (no model registry)."""

from __future__ import annotations

from typing import Any

from governance.core import recourse_record
from governance.decisions.reviews import effective_outcome
from governance.ledger import Ledger, Record

ERR_NO_DECISION = "no decision with id {id}"
ERR_NOT_DECISION = "record {id} is a {type} event, not a decision"
ERR_NOT_RECORDED = (
    "decision {id} is adverse but no recourse was recorded with it (its model version carries "
    "no recourse policy: registered before recourse existed)"
)


def decision_record(ledger: Ledger, decision_id: str) -> Record:
    """The decision record, or ``LookupError`` naming what the id is instead."""
    record = ledger.get(decision_id)
    if record is None:
        raise LookupError(ERR_NO_DECISION.format(id=decision_id))
    if record.type != "decision":
        raise LookupError(ERR_NOT_DECISION.format(id=decision_id, type=record.type))
    return record


def is_adverse(body: dict[str, Any]) -> bool:
    """Adverse as the scorecard decides it: the score at or above the threshold."""
    return float(body["score"]) >= float(body["threshold"])


def recourse_of(ledger: Ledger, decision_id: str) -> dict[str, Any]:
    """A decision's recorded recourse and where it sits in the ledger.

    Returns
    -------
    dict
        ``decision_id``, ``outcome``, ``effective_outcome``, ``adverse``, ``recourse`` (the
        recorded document, None for a favourable decision) and ``event`` (``id``, ``seq``,
        ``ts``, ``hash`` of the ``recourse`` record).

    Raises
    ------
    LookupError
        No such decision, or an adverse decision without recorded recourse.
    """
    record = decision_record(ledger, decision_id)
    events = [ledger.decode(r) for r in ledger.events_for(decision_id)]
    adverse = is_adverse(record.body)
    found = recourse_record.recorded(events)
    if adverse and found is None:
        raise LookupError(ERR_NOT_RECORDED.format(id=decision_id))
    return {
        "decision_id": decision_id,
        "model": {k: record.body["model"][k] for k in ("name", "version")},
        "outcome": record.body["outcome"],
        "effective_outcome": effective_outcome(record, events),
        "adverse": adverse,
        "recourse": found["body"]["recourse"] if found else None,
        "event": {k: found[k] for k in ("id", "seq", "ts", "hash")} if found else None,
    }
