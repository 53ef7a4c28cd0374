"""What the explorer shows of the ledger itself: a record's place and proof, checkpoints, verify.

:func:`ledger_status` gives a decision page its ledger position, covering checkpoint and a
server-checked inclusion proof; :class:`TreeWarmer` builds the Merkle tree in the background so
pages need not wait for it; :class:`Verifier` runs ``Ledger.verify()`` for the integrity page.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance.ledger import Checkpoint, IntegrityError, verify_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerStatus:
    """Where a record sits in the ledger and whether its inclusion proof verifies."""

    seq: int
    hash: str
    prev: str
    size: int
    checkpoint: dict[str, Any] | None = None
    proof_verified: bool | None = None
    proof_length: int = 0
    proof_pending: bool = False
    latest_checkpoint_size: int | None = None
    problem: str | None = None


def checkpoint_view(cp: Checkpoint, ledger: Any) -> dict[str, Any]:
    """A checkpoint as the pages show it, with whether its signature verifies here."""
    return {
        "size": cp.size,
        "root": cp.root.hex(),
        "timestamp": cp.timestamp,
        "key_id": cp.key_id,
        "origin": cp.origin,
        "signature_ok": cp.origin == ledger.origin and verify_checkpoint(cp, ledger.public_key),
    }


def ledger_status(ledger: Any, record_id: str, tree_ready: bool = True) -> LedgerStatus:
    """A decision's ledger position, its covering checkpoint and a server-checked proof.

    A page view never signs a checkpoint: a decision that no checkpoint covers yet is shown
    as such (``governance audit checkpoint`` or ``POST /v1/ledger/checkpoints`` covers it).
    While the server is still building its Merkle tree (``tree_ready`` false, once after a
    start; see :class:`TreeWarmer`) the proof is shown as pending rather than waited for.
    """
    record = ledger.get(record_id)
    if record is None:
        raise LookupError(f"no record with id {record_id}")
    size = ledger.size()
    checkpoints = ledger.checkpoints()
    latest = checkpoints[-1].size if checkpoints else None
    base = {"seq": record.seq, "hash": record.hash, "prev": record.prev, "size": size}
    covering = [cp for cp in checkpoints if cp.size > record.seq]
    if not covering:
        return LedgerStatus(**base, latest_checkpoint_size=latest)
    if not tree_ready:
        return LedgerStatus(
            **base,
            checkpoint=checkpoint_view(covering[-1], ledger),
            proof_pending=True,
            latest_checkpoint_size=latest,
        )
    try:
        proof = ledger.inclusion_proof(record_id)
    except IntegrityError as exc:
        return LedgerStatus(**base, latest_checkpoint_size=latest, problem=str(exc))
    used = Checkpoint.from_json(proof["checkpoint"]) if "checkpoint" in proof else covering[-1]
    return LedgerStatus(
        **base,
        checkpoint=checkpoint_view(used, ledger),
        proof_verified=bool(proof["verified"]),
        proof_length=len(proof["proof"]),
        latest_checkpoint_size=latest,
    )


class TreeWarmer:
    """Builds the ledger's Merkle tree once, in the background, when the explorer is first used.

    The first inclusion proof after a start walks and checks every record to build the tree
    (about 6 s at 1,000,000 records here); later proofs only extend it. Starting that walk at
    sign-in (or at the first page of a session) means decision pages need not wait for it;
    a server whose explorer nobody opens never does the work.
    """

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.done = threading.Event()
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Start the walk (once per process)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="ui-merkle-tree", daemon=True).start()

    def _run(self) -> None:
        try:
            if self.ledger.size() > 0:
                self.ledger.consistency_proof(1)  # builds (and checks) the tree, cheaply
        except Exception as exc:  # reported by the proof itself on the decision page
            self.problem = str(exc)
            log.warning("explorer: building the Merkle tree failed: %s", exc)
        finally:
            self.done.set()

    def ready(self, wait: float = 0.0) -> bool:
        """Whether the tree is built (or failed), waiting up to ``wait`` seconds."""
        self.start()
        return self.done.wait(wait)


class Verifier:
    """Runs ``Ledger.verify()`` one at a time and keeps the latest result."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.lock = threading.Lock()
        self.last: dict[str, Any] | None = None

    def run(self, by: str) -> dict[str, Any]:
        """Verify the whole ledger now (``by`` whom) and keep the result as :attr:`last`."""
        with self.lock:
            started = time.perf_counter()
            result = self.ledger.verify()
            elapsed = time.perf_counter() - started
            self.last = {
                **result.to_dict(),
                "seconds": elapsed,
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "by": by,
            }
            return self.last


def public_key_hex(ledger: Any) -> str:
    """The ledger's Ed25519 public key, hex."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return str(ledger.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex())
