"""The decision ledger: append-only, tamper-evident, private, on SQLite or PostgreSQL.

Public API::

    from governance.ledger import Ledger, Entry

    with Ledger.open("sqlite:////abs/path/ledger.db", home=state_dir) as ledger:
        receipt = ledger.append("decision", body, subject_id="applicant-42", pii={...})
        receipts = ledger.append_many([Entry("decision", body, subject_id=...), ...])
        record = ledger.get(receipt.id)              # Record | None
        ledger.decode(record)                        # dict, PII decrypted or "[erased]"
        ledger.find(subject_id=..., model=..., version=..., since=..., until=..., type=...,
                    ref=..., limit=100, offset=0)   # list[Record], seq order
        ledger.events_for(decision_id)               # outcomes, reviews ...
        ledger.verify()                              # VerifyResult(ok, records, first_bad, ...)
        ledger.checkpoint()                          # signed Checkpoint, stored and exported
        ledger.inclusion_proof(record_id, checkpoint=False)  # dict, RFC 9162 (NotCovered)
        ledger.consistency_proof(old_size, new_size)
        ledger.forget("applicant-42")                # GDPR erasure; the chain still verifies

See :mod:`governance.ledger.ledger` for the state directory layout,
:mod:`governance.ledger.records` for the record format and
:mod:`governance.ledger.postgres_store` for ``least_privilege_sql``.
"""

from governance.ledger.canonical import CanonicalJSONError, canonical_json, utc_now
from governance.ledger.checkpoint import (
    Checkpoint,
    CheckpointDirectory,
    load_public_key,
    verify_checkpoint,
)
from governance.ledger.ledger import (
    EncodedBody,
    Entry,
    IntegrityError,
    Ledger,
    LedgerError,
    NotCovered,
    VerifyResult,
    open_store,
)
from governance.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from governance.ledger.privacy import ERASED, PiiError
from governance.ledger.records import (
    EVENT_TYPES,
    Head,
    Receipt,
    Record,
    record_hash,
    register_event_type,
)
from governance.ledger.store import Fence, FenceError, LedgerStore, Query, StoreError

__all__ = [
    "ERASED",
    "EVENT_TYPES",
    "CanonicalJSONError",
    "Checkpoint",
    "CheckpointDirectory",
    "EncodedBody",
    "Entry",
    "Fence",
    "FenceError",
    "Head",
    "IntegrityError",
    "Ledger",
    "LedgerError",
    "LedgerStore",
    "NotCovered",
    "PiiError",
    "Query",
    "Receipt",
    "Record",
    "StoreError",
    "VerifyResult",
    "canonical_json",
    "leaf_hash",
    "load_public_key",
    "open_store",
    "record_hash",
    "register_event_type",
    "utc_now",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
