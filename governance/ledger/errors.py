"""The ledger's exceptions (raised by the facade, the commit path and verification)."""

from __future__ import annotations

__all__ = ["IntegrityError", "LedgerError", "NotCovered"]


class LedgerError(Exception):
    """The ledger cannot do what was asked (wrong keys, unknown record, bad arguments...)."""


class IntegrityError(LedgerError):
    """Stored data does not verify (tampering or corruption); the message says where."""


class NotCovered(LedgerError):
    """No checkpoint covers the record yet (reading never signs one unless asked)."""
