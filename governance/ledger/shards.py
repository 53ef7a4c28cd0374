"""A ledger of K hash chains on PostgreSQL, with one checkpoint that commits to all of them.

One chain is serialised by one lock, so a single ledger takes one writer's speed however many
replicas serve. A sharded ledger is K complete ledgers (each its own chain, Merkle tree,
checkpoints and data keys, sharing the home's keys) in K schemas of one database, with
``shards=K`` in the URL: ``postgresql://host/db?schema=S&shards=4``. Shard 0, the control
shard, lives in schema ``S``; shard ``i`` in ``S_shard<i>``. The number is fixed when the
ledger is created (stored in the control shard's metadata); an existing unsharded ledger is
not resharded.

Where a record goes, so that every read of one subject or one decision touches one shard:

* a record about a subject (``subject_key``): shard ``H(subject_key) mod K``. A subject's
  decisions, data keys, erasure and legal holds are in one shard, so find-by-subject and
  ``forget`` read one shard;
* an event about a decision (``decision_id``: outcomes, reviews, recourse, notices): the
  decision's shard (the same batch, or found by id);
* alias moves (promotions, registrations) and every other record without a subject or a
  decision: the control shard;
* a decision about no one: ``H(record id) mod K``.

Alias fences: decisions on every shard are fenced against the control shard's moves. A shard's
append takes a shared advisory lock on the control shard's moves and reads its moves in the
same transaction; a move takes that lock exclusively (see
:class:`~governance.ledger.postgres_store.PostgresStore`). An append that spans shards is
checked once under a shared session lock held until every shard's part is written.

Checkpoint: every shard signs its own checkpoint, then the control shard appends a
``shard_heads`` record holding those signed checkpoints and signs its own, which covers that
record. The control shard's checkpoint is the one to witness: it commits to every shard's
head. Verify walks every shard and checks each against its own checkpoints and the ones the
control shard committed to, so an insider who rewrites a shard and re-signs its checkpoints
with the operator's key still contradicts the control shard's records.

An append is atomic per shard: a batch that spans shards commits shard by shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from governance.ledger._commit import EncodedBody, Entry
from governance.ledger._verify import VerifyResult
from governance.ledger.checkpoint import Checkpoint
from governance.ledger.errors import LedgerError
from governance.ledger.ledger import Ledger
from governance.ledger.records import (
    Head,
    Receipt,
    Record,
    new_record_ids,
    register_event_type,
)
from governance.ledger.store import FENCE_TYPES, Fence, LedgerStore, Query, StoreError
from governance.ledger.urls import MAX_SHARDS, split_shards

__all__ = [
    "MAX_SHARDS",
    "SHARD_HEADS",
    "ShardedLedger",
    "ShardedVerifyResult",
    "add_committed",
    "committed_heads",
    "open_ledger",
    "shard_schema",
    "shard_url",
    "split_shards",
    "with_schema",
]

SHARD_HEADS = "shard_heads"
register_event_type(
    SHARD_HEADS,
    "the signed checkpoints of every shard of a sharded ledger (body.shards)",
    required=("shards",),
)
_MAX_WINDOW = 10_000  # Ledger.find's limit: a merged page reads offset + limit per shard
_PAGE = 1_000  # shard_heads records read per query


def shard_schema(schema: str, shard: int) -> str:
    """The schema of shard ``shard`` of the ledger whose control shard is ``schema``."""
    return schema if shard == 0 else f"{schema}_shard{shard}"


def with_schema(url: str, schema: str) -> str:
    """``url`` with its ``schema=`` query parameter set to ``schema``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", schema)])))


def shard_url(url: str, shard: int) -> str:
    """The store URL of shard ``shard`` of the ledger whose control shard is at ``url``."""
    from governance.ledger.postgres_store import split_url

    try:
        _, schema = split_url(url)
    except StoreError as exc:
        raise LedgerError(str(exc)) from exc
    return with_schema(url, shard_schema(schema, shard))


def _bucket(key: str, k: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % k


def open_ledger(
    url: str | PathLike[str], *, home: Path | str, create: bool = True
) -> Ledger | ShardedLedger:
    """Open the ledger a URL names: a :class:`ShardedLedger` for ``shards=K`` > 1."""
    base, k = split_shards(str(url))
    if k == 1:
        return Ledger.open(base, home=home, create=create)
    return ShardedLedger.open(base, home=home, shards=k, create=create)


@dataclass(frozen=True)
class ShardedVerifyResult(VerifyResult):
    """:class:`VerifyResult` over every shard; ``shard`` names the first that failed."""

    shard: int | None = None
    shards: list[dict[str, Any]] = field(default_factory=list)


class ShardedLedger:
    """K ledgers on PostgreSQL behind the :class:`Ledger` interface (see the module docstring).

    Use :meth:`open` or :func:`open_ledger`. Thread-safe like :class:`Ledger`.
    """

    def __init__(self, shards: Sequence[Ledger]) -> None:
        self.shards = list(shards)
        self.control = self.shards[0]
        self.home = self.control.home
        self.ledger_id = self.control.ledger_id
        self.origin = self.control.origin
        self.canonical_format = self.control.canonical_format
        self.public_key = self.control.public_key
        self.checkpoint_dir = self.control.checkpoint_dir  # the control's: the ones to witness
        self.tree = self.control.tree  # what the control's checkpoint covers (tiles, proofs)
        self.store = self.control.store  # the control shard's, for its location

    @classmethod
    def open(cls, url: str, *, home: Path | str, shards: int, create: bool = True) -> ShardedLedger:
        """Open (creating if needed) the ``shards`` shards of the ledger at ``url``.

        Raises
        ------
        LedgerError
            If the database holds another layout (another number of shards, an unsharded
            ledger with records, a schema of another ledger), or as :meth:`Ledger.open`.
        """
        from governance.ledger.postgres_store import PostgresStore, split_url

        if not 1 <= shards <= MAX_SHARDS:
            raise LedgerError(f"shards must be in 1..{MAX_SHARDS}, got {shards}")
        try:
            _, schema = split_url(url)
        except StoreError as exc:
            raise LedgerError(str(exc)) from exc
        opened: list[Ledger] = []
        try:
            for i in range(shards):
                store = PostgresStore(
                    with_schema(url, shard_schema(schema, i)), create=create, moves=schema
                )
                try:
                    opened.append(Ledger(store, home))
                except FileNotFoundError as exc:
                    store.close()
                    raise LedgerError(str(exc)) from exc
                except BaseException:
                    store.close()
                    raise
            _check_layout(opened)
        except StoreError as exc:
            for ledger in opened:
                ledger.close()
            raise LedgerError(str(exc)) from exc
        except BaseException:
            for ledger in opened:
                ledger.close()
            raise
        return cls(opened)

    def close(self) -> None:
        """Close every shard (idempotent)."""
        for ledger in self.shards:
            ledger.close()

    def __enter__(self) -> ShardedLedger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ShardedLedger({self.control.store.location!r}, shards={len(self.shards)})"

    # -- routing --------------------------------------------------------------------------

    def shard_for_subject(self, subject_key: str) -> int:
        """The shard that holds every record about the subject with this key."""
        return _bucket(subject_key, len(self.shards))

    def _route(self, entry: Entry, placed: Mapping[str, int]) -> int:
        if entry.type in FENCE_TYPES or entry.type == SHARD_HEADS:
            return 0
        fields = entry.body.index if isinstance(entry.body, EncodedBody) else entry.body
        if entry.subject_id is not None:
            return self.shard_for_subject(self.subject_key(entry.subject_id))
        key = fields.get("subject_key")
        if isinstance(key, str) and key:
            return self.shard_for_subject(key)
        ref = fields.get("decision_id")
        if isinstance(ref, str) and ref:
            if ref in placed:
                return placed[ref]
            found = self._locate(ref)
            return 0 if found is None else found[0]
        if entry.type == "decision":
            return _bucket(str(entry.id), len(self.shards))
        return 0

    def _locate(self, record_id: str) -> tuple[int, Record] | None:
        """The shard holding ``record_id`` and the record (its likely shard asked first)."""
        first = _bucket(record_id, len(self.shards))
        for i in [first, *(j for j in range(len(self.shards)) if j != first)]:
            record = self.shards[i].get(record_id)
            if record is not None:
                return i, record
        return None

    # -- writing --------------------------------------------------------------------------

    def subject_key(self, subject_id: str) -> str:
        """Return the pseudonymous subject key (the same in every shard)."""
        return self.control.subject_key(subject_id)

    def append(
        self,
        type: str,
        body: Mapping[str, Any],
        *,
        subject_id: str | None = None,
        pii: Mapping[str, Any] | None = None,
        record_id: str | None = None,
    ) -> Receipt:
        """Append one record durably to its shard (see :meth:`Ledger.append`)."""
        return self.append_many([Entry(type, body, subject_id, pii, record_id)])[0]

    def append_many(
        self, items: Iterable[Entry | Mapping[str, Any]], *, fence: Fence | None = None
    ) -> list[Receipt]:
        """Append records, each to its shard, in order within each shard.

        Atomic per shard. Under a ``fence`` nothing is written if an alias moved; an append
        that spans shards checks it once under a lock that holds moves back until every part
        is written, and writes the parts on that lock's own connection (see
        :meth:`~governance.ledger.postgres_store.PostgresStore.moves_frozen`). Receipts carry
        each shard's own seq and name the shard.
        """
        entries = [item if isinstance(item, Entry) else Entry(**item) for item in items]
        if not entries:
            return []
        fresh = iter(new_record_ids(sum(1 for e in entries if e.id is None)))
        entries = [e if e.id is not None else replace(e, id=next(fresh)) for e in entries]
        placed: dict[str, int] = {}
        groups: dict[int, list[int]] = {}
        for pos, entry in enumerate(entries):
            shard = self._route(entry, placed)
            placed[str(entry.id)] = shard
            groups.setdefault(shard, []).append(pos)
        receipts: list[Receipt | None] = [None] * len(entries)

        def place(shard: int, got: Sequence[Receipt]) -> None:
            for pos, receipt in zip(groups[shard], got, strict=True):
                receipts[pos] = receipt._replace(shard=shard)

        if fence is not None and len(groups) > 1:
            parts = {
                shard: self.shards[shard].prepare([entries[pos] for pos in groups[shard]])
                for shard in sorted(groups)
            }
            with self.control.store.moves_frozen() as frozen:  # type: ignore[attr-defined]
                frozen.check(fence)  # and no move can commit until the block ends
                for shard, pending in parts.items():
                    place(shard, frozen.append(self.shards[shard].store, pending))
        else:
            for shard in sorted(groups):
                part = [entries[pos] for pos in groups[shard]]
                place(shard, self.shards[shard].append_many(part, fence=fence))
        return [r for r in receipts if r is not None]

    def fenced_through(self, receipts: Sequence[Receipt]) -> int | None:
        """None: a shard's seq says nothing about the control shard, where moves are."""
        return None

    def forget(self, subject_id: str, *, reason: str | None = None) -> Receipt:
        """Erase a subject's PII in the subject's shard (see :meth:`Ledger.forget`)."""
        shard = self.shard_for_subject(self.subject_key(subject_id))
        return self.shards[shard].forget(subject_id, reason=reason)._replace(shard=shard)

    def legal_hold(
        self, subject_id: str | None = None, *, subject_key: str | None = None
    ) -> Record | None:
        """The ``legal_hold`` event in force for a subject, or None."""
        sk = subject_key or self.subject_key(str(subject_id))
        return self.shards[self.shard_for_subject(sk)].legal_hold(subject_key=sk)

    # -- reading --------------------------------------------------------------------------

    def get(self, record_id: str) -> Record | None:
        """Return the record with this id, from whichever shard holds it, or ``None``."""
        found = self._locate(record_id)
        return None if found is None else found[1]

    def shard_of(self, record_id: str) -> int | None:
        """The shard holding ``record_id``, or None."""
        found = self._locate(record_id)
        return None if found is None else found[0]

    def find(
        self,
        subject_id: str | None = None,
        model: str | None = None,
        version: str | int | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        type: str | None = None,
        ref: str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        subject_key: str | None = None,
        after: int | None = None,
        shard: int | None = None,
    ) -> list[Record]:
        """Records matching all filters (see :meth:`Ledger.find`).

        A subject, a decision (``ref``) or an alias-moving ``type`` names one shard, which is
        read alone, in seq order. Other queries read every shard and merge by time (then
        shard); ``offset + limit`` is then at most 10,000, and ``after`` (a seq, which is per
        shard) needs ``shard``.
        """
        query: dict[str, Any] = {
            "model": model,
            "version": version,
            "since": since,
            "until": until,
            "type": type,
            "ref": ref,
        }
        if subject_id is not None:
            sk = self.subject_key(subject_id)
            if subject_key is not None and subject_key != sk:
                return []
            subject_key = sk
        if shard is None:
            if subject_key is not None:
                shard = self.shard_for_subject(subject_key)
            elif type in FENCE_TYPES or type == SHARD_HEADS:
                shard = 0
            elif ref is not None:
                shard = self.shard_of(ref)
        if shard is not None:
            if not 0 <= shard < len(self.shards):
                raise LedgerError(f"shard must be in 0..{len(self.shards) - 1}, got {shard}")
            return self.shards[shard].find(
                **query, limit=limit, offset=offset, subject_key=subject_key, after=after
            )
        if after is not None:
            raise LedgerError(
                "after= pages by seq, and a sharded ledger has one seq per shard: pass shard="
            )
        if offset < 0 or not 0 < limit <= _MAX_WINDOW or offset + limit > _MAX_WINDOW:
            raise LedgerError(
                f"on a sharded ledger limit must be in 1..{_MAX_WINDOW} and offset + limit at"
                f" most {_MAX_WINDOW}: page by since= instead"
            )
        merged = [
            (record.ts, i, record.seq, record)
            for i, ledger in enumerate(self.shards)
            for record in ledger.find(**query, limit=offset + limit, subject_key=subject_key)
        ]
        merged.sort(key=lambda item: item[:3])
        return [item[3] for item in merged[offset : offset + limit]]

    def events_for(self, decision_id: str) -> list[Record]:
        """The events that refer to a decision, from the decision's shard, in seq order."""
        shard = self.shard_of(decision_id)
        return [] if shard is None else self.shards[shard].events_for(decision_id)

    def decode(self, record: Record) -> dict[str, Any]:
        """A record with its PII decrypted by its subject's shard (see :meth:`Ledger.decode`)."""
        sk = record.body.get("subject_key")
        shard = self.shard_for_subject(sk) if isinstance(sk, str) and sk else 0
        return self.shards[shard].decode(record)

    def size(self) -> int:
        """The control shard's size: where alias moves are, and what fences count in."""
        return self.control.size()

    def total(self) -> int:
        """Records in every shard."""
        return sum(ledger.size() for ledger in self.shards)

    def head(self) -> Head:
        """The control shard's chain head."""
        return self.control.head()

    def heads(self) -> list[Head]:
        """Every shard's chain head, in shard order."""
        return [ledger.head() for ledger in self.shards]

    # -- checkpoints, proofs, verification ------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Sign every shard's checkpoint, commit to them all in the control shard, sign it.

        Returns the control shard's checkpoint, which covers the ``shard_heads`` record and
        with it every shard's signed head: the one checkpoint to witness. A shard with no
        record since its last checkpoint keeps it (the control shard commits to the same signed
        head again, not to a second signature of the same tree that a bundle would not carry).
        """
        signed = [ledger.checkpoint(reuse=True) for ledger in self.shards[1:]]
        body = {
            "shards": [
                {"shard": i, "ledger_id": ledger.ledger_id, "checkpoint": cp.to_json()}
                for i, (ledger, cp) in enumerate(zip(self.shards[1:], signed, strict=True), 1)
            ]
        }
        self.control.append(SHARD_HEADS, body)
        return self.control.checkpoint()

    def checkpoints(self) -> list[Checkpoint]:
        """The control shard's checkpoints, oldest first (each commits to every shard's)."""
        return self.control.checkpoints()

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> dict[str, Any]:
        """The control shard's consistency proof (see :meth:`Ledger.consistency_proof`)."""
        return self.control.consistency_proof(old_size, new_size)

    def committed_heads(self) -> dict[int, list[tuple[str, Checkpoint]]]:
        """The shard checkpoints the control shard committed to (see :func:`committed_heads`)."""
        return committed_heads(self.control.store)

    def verify(
        self,
        *,
        deep: bool = False,
        workers: int | None = None,
        progress: Any = None,
    ) -> ShardedVerifyResult:
        """Verify every shard: its chain, its own checkpoints and those the control committed.

        The control shard is verified first, so the ``shard_heads`` records read from it are
        known good. ``progress(done, total)`` counts shards.
        """
        results: list[VerifyResult] = []
        committed: dict[int, list[tuple[str, Checkpoint]]] = {}
        for i, ledger in enumerate(self.shards):
            if i == 1:
                try:
                    committed = committed_heads(self.control.store, results[0].records)
                except (ValueError, KeyError, TypeError) as exc:
                    return self._failed(results, 0, f"a shard_heads record is malformed: {exc}")
            for _, cp in committed.get(i, []):
                if cp.origin != ledger.origin:
                    return self._failed(
                        results,
                        i,
                        f"the control shard committed to a checkpoint of {cp.origin} as shard"
                        f" {i}, which is {ledger.origin}",
                    )
            result = ledger.verify(deep=deep, workers=workers, also=committed.get(i, ()))
            results.append(result)
            if progress is not None:
                progress(i + 1, len(self.shards))
            if not result.ok:
                return self._failed(results, i, result.reason or "", result.first_bad)
        return ShardedVerifyResult(
            True,
            sum(r.records for r in results),
            None,
            None,
            sum(r.checkpoints for r in results),
            None,
            [r.to_dict() for r in results],
        )

    def _failed(
        self, results: list[VerifyResult], shard: int, reason: str, first_bad: int | None = None
    ) -> ShardedVerifyResult:
        schema = getattr(self.shards[shard].store, "schema", "?")
        return ShardedVerifyResult(
            False,
            sum(r.records for r in results),
            first_bad,
            f"shard {shard} ({schema}): {reason}",
            sum(r.checkpoints for r in results),
            shard,
            [r.to_dict() for r in results],
        )

    def inclusion_proof(self, record_id: str, *, checkpoint: bool = True) -> dict[str, Any]:
        """Prove a record is in its shard under that shard's signed checkpoint (RFC 9162).

        The result is :meth:`Ledger.inclusion_proof`'s plus ``shard``. A shard's checkpoints
        are committed to by the control shard's next checkpoint (:meth:`checkpoint`).
        """
        found = self._locate(record_id)
        if found is None:
            raise LedgerError(f"no record with id {record_id}")
        proof = self.shards[found[0]].inclusion_proof(record_id, checkpoint=checkpoint)
        return {**proof, "shard": found[0]}


def committed_heads(
    control: LedgerStore, stop: int | None = None
) -> dict[int, list[tuple[str, Checkpoint]]]:
    """The shard checkpoints a control shard's ``shard_heads`` records commit to, by shard.

    Each comes with its source (``"committed in the control shard's record <seq>"``). With
    ``stop``, only records before that seq are read (the ones a walk has verified).

    Raises
    ------
    ValueError, KeyError, TypeError
        If a ``shard_heads`` record is malformed.
    """
    found: dict[int, list[tuple[str, Checkpoint]]] = {}
    after: int | None = None
    while True:
        page = control.find(Query(type=SHARD_HEADS, after=after, limit=_PAGE))
        for data in page:
            record = Record.from_bytes(data)
            if stop is not None and record.seq >= stop:
                return found
            add_committed(found, record)
            after = record.seq
        if len(page) < _PAGE:
            return found


def add_committed(found: dict[int, list[tuple[str, Checkpoint]]], record: Record) -> None:
    """Add the shard checkpoints one ``shard_heads`` record commits to, by shard, to ``found``.

    Raises
    ------
    ValueError, KeyError, TypeError
        If the record is malformed.
    """
    source = f"committed in the control shard's record {record.seq}"
    for item in record.body["shards"]:
        found.setdefault(int(item["shard"]), []).append(
            (source, Checkpoint.from_json(item["checkpoint"]))
        )


def _check_layout(ledgers: Sequence[Ledger]) -> None:
    """Refuse shards that do not belong together; record the layout when it is new."""
    control, k = ledgers[0], len(ledgers)
    meta = control.store.meta()
    if "shards" not in meta:
        if control.size() > 0:
            raise LedgerError(
                f"{control.store.location} holds an unsharded ledger of {control.size()}"
                " records; it cannot be resharded (its subjects would change shards)"
            )
        meta = control.store.init_meta({"shards": str(k)})
    if meta["shards"] != str(k):
        raise LedgerError(
            f"the ledger at {control.store.location} has {meta['shards']} shards, not {k}"
        )
    for i, ledger in enumerate(ledgers[1:], 1):
        got = ledger.store.init_meta({"shard_of": control.ledger_id, "shard": str(i)})
        if got.get("shard_of") != control.ledger_id or got.get("shard") != str(i):
            raise LedgerError(
                f"{ledger.store.location} is shard {got.get('shard')} of ledger"
                f" {got.get('shard_of')}, not shard {i} of {control.ledger_id}"
            )
