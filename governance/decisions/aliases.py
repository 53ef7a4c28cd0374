"""Which version an alias names, from the ledger, fenced at every append.

A promotion, rollback or registration that moves an alias is a ledger event
(:mod:`governance.lifecycle.promotion`), and ``governance history --at T`` answers "which version
held the alias at T" from those events alone. Decisions resolve aliases the same way, so both
always agree:

1. :meth:`AliasBook.resolve` notes the ledger's size ``n``, then reads the model's alias-moving
   events and takes the last move of the alias (the registry is asked only when the ledger has
   never recorded one, e.g. an alias set by hand in MLflow);
2. the decision is appended with a :class:`~governance.ledger.Fence` ``(model, n)``: inside the
   append's own transaction, under the chain's lock, the store checks that no alias-moving event
   of the model was recorded at seq ``n`` or later. If one was, nothing is written
   (:class:`~governance.ledger.FenceError`); the caller forgets the answer, resolves again and
   decides again with the version the alias names now.

So no decision recorded after a move is made by the version the alias left, in any process and
on either store, and the check costs one indexed query per append. After a successful append the
book advances ``n`` past the caller's own records (the fence proved nothing moved up to them), so
the range the next fence looks at stays short.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from governance.ledger import Fence, Ledger, Record
from governance.ledger.paging import iter_find

#: Ledger events that point an alias at a version (as :mod:`governance.lifecycle.promotion`
#: records them and ``governance history`` reads them).
MOVE_ACTIONS = ("promote", "rollback")

#: How often one decision is re-resolved and redone when aliases keep moving under it.
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Resolved:
    """An alias's version and the fence its decisions must be appended under."""

    version: str
    fence: Fence


class AliasBook:
    """Alias -> version answers of one ledger, shared by the threads of one process.

    Parameters
    ----------
    ledger
        The ledger decisions are appended to (its promotion events are the source of truth).
    registry_alias
        ``(model, alias) -> version`` from the registry, used only for an alias the ledger
        never recorded a move of (raises the caller's error if the registry has none either).
    """

    def __init__(self, ledger: Ledger, registry_alias: Callable[[str, str], str]) -> None:
        self.ledger = ledger
        self._registry_alias = registry_alias
        self._known: dict[tuple[str, str], Resolved] = {}
        self._lock = threading.Lock()

    def resolve(self, model: str, alias: str) -> Resolved:
        """The version ``alias`` names now and the fence to append under."""
        key = (model, alias)
        with self._lock:
            hit = self._known.get(key)
        if hit is not None:
            return hit
        since = self.ledger.size()  # first: any move recorded after this trips the fence
        version = last_move(self.ledger, model, alias) or self._registry_alias(model, alias)
        resolved = Resolved(str(version), Fence(model, since))
        with self._lock:
            self._known[key] = resolved
        return resolved

    def forget(self, model: str, alias: str | None = None) -> None:
        """Drop answers about ``model`` (one alias, or all of them)."""
        with self._lock:
            for key in [k for k in self._known if k[0] == model and alias in (None, k[1])]:
                del self._known[key]

    def advance(self, model: str, alias: str, used: Resolved, last_seq: int) -> None:
        """After an append under ``used.fence`` committed up to ``last_seq``: nothing moved."""
        with self._lock:
            hit = self._known.get((model, alias))
            # Only an answer no older than the one used: the append proved that nothing moved
            # in [used.fence.since, last_seq], which then covers [hit.fence.since, last_seq].
            if (
                hit is not None
                and hit.version == used.version
                and used.fence.since <= hit.fence.since <= last_seq
            ):
                self._known[(model, alias)] = Resolved(hit.version, Fence(model, last_seq + 1))


def _move(record: Record, alias: str) -> str | None:
    """The version a promotion, rollback or alias-setting registration points ``alias`` at."""
    body = record.body
    if body.get("alias") != alias:
        return None
    if record.type == "promotion" and body.get("action") not in MOVE_ACTIONS:
        return None  # a refusal moves nothing
    version = (body.get("model") or {}).get("version")
    return None if version is None else str(version)


def last_move(ledger: Ledger, model: str, alias: str) -> str | None:
    """The version the ledger's last recorded move of ``alias`` points at (None: never moved)."""
    latest: tuple[int, str] | None = None
    for type_ in ("promotion", "registration"):
        for record in iter_find(ledger, model=model, type=type_):
            version = _move(record, alias)
            if version is not None and (latest is None or record.seq > latest[0]):
                latest = (record.seq, version)
    return None if latest is None else latest[1]
