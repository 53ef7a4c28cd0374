"""The storage interface of the ledger, shared by the SQLite and PostgreSQL stores.

A store owns the chain head. :meth:`LedgerStore.append` takes records without seq, timestamp or
``prev`` (:class:`~governance.ledger.records.PendingRecord`) and, inside *one* transaction that
holds the ledger's write lock, reads the head, builds and hashes the records
(:func:`~governance.ledger.records.chain_rows`), inserts them and commits. It returns only after
the commit: a receipt means the records are durable. Writers in any number of processes are
serialised into one linear chain.

Both stores keep the same tables:

``records``
    ``seq`` (primary key), ``id`` (unique), ``type``, ``ts``, the index columns ``subject_key``,
    ``subject_tag`` (first 8 bytes of the subject key as a signed 64-bit integer: the subject
    index), ``model_name``, ``model_version``, ``ref``; ``data`` (the canonical record bytes
    exactly as hashed) and ``hash`` (32 bytes). UPDATE and DELETE are refused by triggers.
``checkpoints``
    Signed tree heads (append-only too).
``subject_keys``
    Wrapped per-subject data keys; the only table that allows DELETE (erasure).
``meta``
    Ledger identity, schema version and key fingerprints (append-only).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from governance.ledger.checkpoint import Checkpoint
from governance.ledger.offset_marks import OffsetMarks
from governance.ledger.records import Head, PendingRecord, Receipt, subject_tag

__all__ = [
    "APPEND_ONLY_MESSAGE",
    "FENCE_TYPES",
    "SCHEMA_VERSION",
    "ChainSource",
    "Fence",
    "FenceError",
    "LedgerStore",
    "Query",
    "StoreError",
    "fence_sql",
]

SCHEMA_VERSION = "1"
APPEND_ONLY_MESSAGE = "ledger is append-only"


class StoreError(RuntimeError):
    """The store cannot be opened or used (bad URL, schema from another version, ...)."""


#: Event types that move a model's aliases (see :mod:`governance.lifecycle.promotion`).
FENCE_TYPES: tuple[str, ...] = ("promotion", "registration")


@dataclass(frozen=True)
class Fence:
    """A condition an append checks inside its own transaction, under the chain's lock.

    The append fails with :class:`FenceError` (nothing written) if a record of one of
    :data:`FENCE_TYPES` for ``model`` was appended at seq ``since`` or later: the caller
    resolved an alias of ``model`` from the ledger when it held ``since`` records, and a move
    recorded after that could have changed the answer.
    """

    model: str
    since: int


class FenceError(StoreError):
    """An alias-moving event was recorded after the caller resolved the alias; nothing written."""

    def __init__(self, fence: Fence, seq: int) -> None:
        super().__init__(
            f"an alias of model {fence.model!r} moved (record {seq}) after it was resolved"
            f" (at ledger size {fence.since}); nothing was written"
        )
        self.fence = fence
        self.seq = seq


def fence_sql(table: str, mark: str, index: str = "", model: str = "model_name") -> str:
    """The query both stores run per fence: the first alias-moving record since ``since``.

    It must seek the ``(type, seq)`` index: alias moves are a handful of records however long
    the ledger. The ``(model_name, model_version, type)`` index looks as good to a planner
    without statistics and walks every decision the model made since ``since`` (24 ms per
    decision at 300,000 records against 11 us). SQLite's planner takes a hint (``index``:
    ``INDEXED BY records_type``); PostgreSQL's does not, so there the model is compared as an
    expression no index covers (``model``: ``model_name || ''``), which leaves ``(type, seq)``
    as the only index that fits. (Seen on PostgreSQL before its first ``ANALYZE``: 1.6 ms
    against 0.04 ms per fence at 20,000 decisions, and on a sharded ledger, whose fences
    reach back to when the alias was resolved, 2,600 index entries per decision.)
    """
    types = ", ".join(f"'{t}'" for t in FENCE_TYPES)
    hint = f" {index}" if index else ""
    return (
        f"SELECT seq FROM {table}{hint} WHERE seq >= {mark} AND {model} = {mark}"
        f" AND type IN ({types}) ORDER BY seq LIMIT 1"
    )


@dataclass(frozen=True)
class Query:
    """Filters for :meth:`LedgerStore.find`; all given filters must hold.

    Attributes
    ----------
    subject_key
        HMAC subject key.
    model_name, model_version
        Model (a version filter needs the name).
    type
        Event type.
    ref
        The decision an event refers to (``body.decision_id``).
    since, until
        Half-open time range ``[since, until)`` in the ledger's timestamp format.
    limit, offset
        Paging, in seq order.
    after
        Keyset paging: only records after this seq (the last seq of the previous page), so a
        page deep into the results costs what the first one does.
    """

    subject_key: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    type: str | None = None
    ref: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    offset: int = 0
    after: int | None = None


def _where(
    query: Query, seq_from: int | None, seq_to: int | None, mark: str
) -> tuple[list[str], list[Any]]:
    """The WHERE terms of ``query`` over ``[seq_from, seq_to)``, and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    if query.subject_key is not None:
        where += [f"subject_tag = {mark}", f"subject_key = {mark}"]
        params += [subject_tag(query.subject_key), query.subject_key]
    filters: list[tuple[str, Any]] = [("model_name", query.model_name)]
    if query.model_name is not None:
        filters.append(("model_version", query.model_version))
    filters += [("type", query.type), ("ref", query.ref)]
    for column, value in filters:
        if value is not None:
            where.append(f"{column} = {mark}")
            params.append(value)
    for clause, bound in (("seq >=", seq_from), ("seq <", seq_to)):
        if bound is not None:
            where.append(f"{clause} {mark}")
            params.append(bound)
    return where, params


def seek_sql(
    table: str, query: Query, seq_from: int | None, seq_to: int | None, mark: str
) -> tuple[str, list[Any]]:
    """The seq of the match ``skip`` places past the first in ``[seq_from, seq_to)``.

    ``skip`` is the last parameter, left to the caller. The index of the filters is walked
    alone: no record is read for the skipped matches (PostgreSQL would fetch each from the heap).
    """
    where, params = _where(query, seq_from, seq_to, mark)
    sql = f"SELECT seq FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY seq LIMIT 1 OFFSET {mark}", params


def select_sql(
    table: str, query: Query, seq_from: int | None, seq_to: int | None, mark: str
) -> tuple[str, list[Any]]:
    """The SELECT both stores run for :meth:`LedgerStore.select` (``mark``: ``?`` or ``%s``).

    The time range arrives already turned into ``[seq_from, seq_to)``.
    """
    where, params = _where(query, seq_from, seq_to, mark)
    if query.offset > 0:
        # the page starts at the seq the offset reaches, found on the index alone
        start, start_params = seek_sql(table, query, seq_from, seq_to, mark)
        where = [*where, f"seq >= ({start})"]
        params = [*params, *start_params, query.offset]
    sql = f"SELECT data FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY seq LIMIT {mark}"
    return sql, [*params, query.limit]


class ChainSource(abc.ABC):
    """A picklable handle that streams a ledger's records over its own new connection.

    Verification hands one to a helper process to walk part of the chain in parallel.
    """

    @abc.abstractmethod
    def rows(
        self, start: int = 0, stop: int | None = None, *, deep: bool = False, batch: int = 4096
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield chain rows (see :meth:`LedgerStore.iter_chain`) from one snapshot."""

    @abc.abstractmethod
    def hashes(
        self, start: int = 0, stop: int | None = None, *, batch: int = 65536
    ) -> Iterator[list[bytes]]:
        """Yield stored record hashes in seq order."""


class LedgerStore(abc.ABC):
    """Storage of one ledger. Implementations are safe to share between threads.

    Rows handed out by :meth:`iter_chain` are ``(seq, data, hash, id, type, ts, subject_key,
    subject_tag, model_name, model_version, ref)`` with ``id``, ``type`` and ``ts`` as UTF-8
    ``bytes``: every column of the row, so verification compares each with the record (the
    ``deep`` flag no longer changes the columns).
    """

    #: A description of where the ledger lives, without credentials.
    location: str

    def __init__(self) -> None:
        self._marks = OffsetMarks()

    # -- metadata -------------------------------------------------------------------------

    @abc.abstractmethod
    def meta(self) -> dict[str, str]:
        """Return the ledger's metadata (empty for a new store)."""

    @abc.abstractmethod
    def init_meta(self, values: Mapping[str, str]) -> dict[str, str]:
        """Insert metadata entries that are absent (race-safe); return all metadata."""

    # -- records --------------------------------------------------------------------------

    @abc.abstractmethod
    def append(
        self, pending: Sequence[PendingRecord], fences: Sequence[Fence] = ()
    ) -> list[Receipt]:
        """Append records atomically and durably; return one receipt each, after the commit.

        Each fence is checked in the same transaction, after the chain's lock is taken;
        :class:`FenceError` if one fails (nothing written).
        """

    @abc.abstractmethod
    def head(self) -> Head:
        """Return the chain head."""

    @abc.abstractmethod
    def get_by_id(self, record_id: str) -> tuple[bytes, bytes] | None:
        """Return ``(data, hash)`` of the record with this id, or ``None``."""

    @abc.abstractmethod
    def get_by_seq(self, seq: int) -> tuple[bytes, bytes] | None:
        """Return ``(data, hash)`` of the record at ``seq``, or ``None``."""

    @abc.abstractmethod
    def ts_from(self, seq: int) -> str | None:
        """Return the timestamp of the first stored record at or after ``seq``, or ``None``."""

    @abc.abstractmethod
    def select(self, query: Query, seq_from: int | None, seq_to: int | None) -> list[bytes]:
        """Return the data of matching records in seq order, within ``[seq_from, seq_to)``."""

    @abc.abstractmethod
    def seek(self, query: Query, seq_from: int | None, skip: int) -> int | None:
        """Return the seq of the match of ``query``'s filters ``skip`` places past the first
        at or after ``seq_from`` (``None``: from the start), or ``None`` if there is none."""

    def find(self, query: Query) -> list[bytes]:
        """Return the data of the records matching ``query``, in seq order.

        A time range becomes a seq range by binary search on ``ts`` (timestamps never decrease
        along the chain), and ``after`` a lower bound on seq, so every query runs on the primary
        key or one index. A deep ``offset`` without them starts from the nearest of the marks
        this store keeps per filter (:mod:`~governance.ledger.offset_marks`).
        """
        seq_from = seq_to = None
        if query.since is not None or query.until is not None:
            size = self.head().size
            seq_from = 0 if query.since is None else self._first_seq_at(query.since, size)
            seq_to = size if query.until is None else self._first_seq_at(query.until, size)
        if query.after is not None:
            seq_from = max(seq_from or 0, query.after + 1)
        if seq_from is not None and seq_to is not None and seq_from >= seq_to:
            return []
        if seq_from is None and seq_to is None and query.offset:
            seq_from, offset = self._marks.start(
                replace(query, limit=0, offset=0),
                query.offset,
                lambda start, skip: self.seek(query, start, skip),
            )
            query = replace(query, offset=offset)
        return self.select(query, seq_from, seq_to)

    def _first_seq_at(self, ts: str, size: int) -> int:
        """Return the first seq whose timestamp is at or after ``ts`` (``size`` if none)."""
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            found = self.ts_from(mid)
            if found is not None and found < ts:
                lo = mid + 1
            else:
                hi = mid
        return lo

    @abc.abstractmethod
    def chain_source(self) -> ChainSource:
        """Return a picklable source of this ledger's rows (raises once closed)."""

    def iter_chain(
        self,
        start: int = 0,
        stop: int | None = None,
        *,
        deep: bool = False,
        batch: int | None = None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield rows in seq order from ``start`` (to ``stop``), in lists of up to ``batch``
        (by default, as many as the store fetches at once).

        The rows come from one consistent snapshot, over a connection of their own.
        """
        source = self.chain_source()
        if batch is None:
            return source.rows(start, stop, deep=deep)
        return source.rows(start, stop, deep=deep, batch=batch)

    def iter_hashes(
        self, start: int = 0, stop: int | None = None, *, batch: int = 65536
    ) -> Iterator[list[bytes]]:
        """Yield the stored record hashes (Merkle leaves) in seq order."""
        return self.chain_source().hashes(start, stop, batch=batch)

    # -- checkpoints ----------------------------------------------------------------------

    @abc.abstractmethod
    def add_checkpoint(self, cp: Checkpoint) -> None:
        """Store a signed checkpoint."""

    @abc.abstractmethod
    def checkpoints(self) -> list[Checkpoint]:
        """Return the stored checkpoints in the order they were made.

        Raises
        ------
        ValueError
            If a stored checkpoint is malformed.
        """

    # -- subject keys ---------------------------------------------------------------------

    @abc.abstractmethod
    def current_data_keys(self, subject_keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """Return ``{subject_key: (kid, wrapped)}``, the newest key of each subject that has one."""

    @abc.abstractmethod
    def data_keys(self, kids: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """Return ``{kid: (subject_key, wrapped)}`` for the kids that still exist."""

    @abc.abstractmethod
    def add_data_keys(self, rows: Sequence[tuple[str, str, bytes, str]]) -> None:
        """Insert ``(kid, subject_key, wrapped, created)`` rows."""

    @abc.abstractmethod
    def delete_data_keys(self, subject_key: str) -> int:
        """Delete every data key of a subject; return how many were deleted."""

    @abc.abstractmethod
    def purge(self) -> bool:
        """Physically remove deleted key bytes where the database allows it.

        Returns
        -------
        bool
            Whether the purge completed (SQLite: the WAL was checkpointed and truncated).
        """

    # -- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Close connections (idempotent)."""
