"""governance: an auditable machine-learning lifecycle.

Python API for decisions (each recorded in the ledger before it returns)::

    import governance

    d = governance.decide("mortgage-denial", features, subject_id="A-1042", alias="champion",
                          purpose="mortgage application")
    d.decision_id, d.outcome, d.score, d.reasons

    ds = governance.decide_batch("mortgage-denial", rows, subject_ids=ids, alias="champion")

Configuration comes from the environment when first used (see :mod:`governance.settings`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.decisions.service import Decision, DecisionService

__all__ = ["decide", "decide_batch", "default_service"]

_lock = threading.Lock()
_service: DecisionService | None = None


def default_service() -> DecisionService:
    """The process-wide decision service on the configured ledger and registry."""
    global _service
    with _lock:
        if _service is None:
            from governance.decisions.service import DecisionService

            _service = DecisionService.open()
        return _service


def decide(
    model: str,
    features: Mapping[str, Any],
    *,
    subject_id: str | None = None,
    version: str | None = None,
    alias: str | None = None,
    purpose: str | None = None,
    caller: str = "python",
    pii: Mapping[str, Any] | None = None,
) -> Decision:
    """Decide one application; it is durably in the ledger when this returns."""
    return default_service().decide(
        model,
        features,
        subject_id=subject_id,
        version=version,
        alias=alias,
        purpose=purpose,
        caller=caller,
        pii=pii,
    )


def decide_batch(
    model: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    subject_ids: Sequence[str | None] | None = None,
    version: str | None = None,
    alias: str | None = None,
    purpose: str | None = None,
    caller: str = "python",
) -> list[Decision]:
    """Decide many applications in one ledger transaction (all or nothing)."""
    return default_service().decide_many(
        model,
        rows,
        subject_ids=subject_ids,
        version=version,
        alias=alias,
        purpose=purpose,
        caller=caller,
    )
