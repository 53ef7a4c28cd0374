"""The governed model lifecycle: alias promotion and rollback, their history, evidence packs.

>>> from governance.lifecycle import promote, rollback, history, build_evidence
>>> promote(settings, ledger, "mortgage-denial", "3", approver="a.risk", reason="MRM-142")
>>> history(ledger, "mortgage-denial", at="2027-01-31T00:00:00Z")["version"]
'3'

See :mod:`governance.lifecycle.promotion` and :mod:`governance.lifecycle.evidence`.
"""

from governance.lifecycle.evidence import (
    EvidenceError,
    EvidenceReport,
    build_evidence,
    verify_evidence,
)
from governance.lifecycle.promotion import (
    REFUSALS,
    PromotionError,
    PromotionRefused,
    check_version,
    events,
    history,
    promote,
    rollback,
)

__all__ = [
    "REFUSALS",
    "EvidenceError",
    "EvidenceReport",
    "PromotionError",
    "PromotionRefused",
    "build_evidence",
    "check_version",
    "events",
    "history",
    "promote",
    "rollback",
    "verify_evidence",
]
