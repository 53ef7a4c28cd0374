"""The append transaction: entries prepared into records, then committed in groups.

:func:`prepare_entry` turns one :class:`Entry` into the record bytes and index columns (PII
encrypted, subject key added); :class:`GroupCommit` merges concurrent callers' records into
one durable transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from governance.ledger.privacy import KeyRing, encrypt_pii
from governance.ledger.records import (
    PendingRecord,
    Receipt,
    check_event_type,
    checked_idx_bytes,
    holds_nul,
    index_columns,
    is_record_id,
    subject_tag,
)
from governance.ledger.store import Fence, LedgerStore

__all__ = ["EncodedBody", "Entry", "GroupCommit", "prepare_entry"]

ERR_MODEL_NUL = "body.model.name and body.model.version must not contain NUL (U+0000)"


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A body already written in the ledger's canonical JSON (batch records built column-wise).

    The ledger stores ``data`` as the body without encoding it again. ``data`` must be exactly
    what the ledger's encoder (:attr:`Ledger.canonical_format`) writes for the body, subject key
    included, and ``index`` must hold the body's members the index columns come from
    (``subject_key``, ``model`` with ``name`` and ``version``, ``decision_id``) and name the
    members its event type requires (their values are not read). Deep
    verification re-checks both: bytes that are not canonical, or index columns that
    contradict the body, are named as the first bad record.

    Attributes
    ----------
    data
        The body's canonical JSON bytes (an object).
    index
        The members of the body that index columns are derived from.
    """

    data: bytes
    index: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One record for :meth:`Ledger.append_many`.

    Attributes
    ----------
    type
        A registered event type (``decision``, ``outcome``, ...).
    body
        The event body (a JSON object), or an :class:`EncodedBody` (then without
        ``subject_id`` and ``pii``: its bytes hold the subject key already).
    subject_id
        The subject's identifier; stored only as its HMAC subject key.
    pii
        Personal data to store encrypted under the subject's key (needs ``subject_id``).
    id
        A record id to use instead of a new one (a lowercase UUID).
    """

    type: str
    body: Mapping[str, Any] | EncodedBody
    subject_id: str | None = None
    pii: Mapping[str, Any] | None = None
    id: str | None = None


def prepare_entry(
    entry: Entry,
    *,
    keys: KeyRing,
    encode: Callable[[object], bytes],
    fresh: Iterator[str],
    data_keys: Mapping[str, tuple[str, bytes]],
    seen_ids: set[str],
    with_idx: bool = True,
) -> PendingRecord:
    """Check one entry and build its record (raises ValueError/TypeError; nothing written).

    ``with_idx``: record format 2 (the index columns also go into the record as ``idx``).
    """
    type_ = check_event_type(entry.type)
    body = entry.body
    if isinstance(body, EncodedBody):
        return _prepare_encoded(type_, entry, body, fresh, seen_ids, encode, with_idx)
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a JSON object (a dict), got {type(body).__name__}")
    if "pii" in body:
        raise ValueError("body.pii is reserved for encrypted PII: pass PII as pii=")
    rid = next(fresh) if entry.id is None else entry.id
    if entry.id is not None and not is_record_id(entry.id):
        raise ValueError(f"record id {entry.id!r} is not a lowercase UUID")
    if rid in seen_ids:
        raise ValueError(f"record id {rid} appears twice in one batch")
    seen_ids.add(rid)
    extra: dict[str, Any] = {}
    sk: str | None = None
    if entry.subject_id is not None:
        sk = keys.subject_key(entry.subject_id)
        if body.get("subject_key", sk) != sk:
            raise ValueError("body.subject_key contradicts subject_id")
        extra["subject_key"] = sk
    if entry.pii is not None:
        if sk is None:
            raise ValueError("pii needs subject_id: PII is encrypted under the subject's key")
        if not isinstance(entry.pii, Mapping):
            raise TypeError("pii must be a JSON object (a dict)")
        kid, data_key = data_keys[sk]
        extra["pii"] = encrypt_pii(data_key, kid, rid, sk, entry.pii)
    if extra or type(body) is not dict:
        body = {**body, **extra}
    data = encode(body)
    subject_key, model_name, model_version, ref = _append_columns(type_, body)
    return PendingRecord(
        rid,
        type_,
        data,
        subject_key,
        subject_tag(subject_key),
        model_name,
        model_version,
        ref,
        (
            checked_idx_bytes(subject_key, model_name, model_version, ref, encode)
            if with_idx
            else None
        ),
    )


def _prepare_encoded(
    type_: str,
    entry: Entry,
    body: EncodedBody,
    fresh: Iterator[str],
    seen_ids: set[str],
    encode: Callable[[object], bytes],
    with_idx: bool,
) -> PendingRecord:
    """:func:`prepare_entry` for a body already encoded: checks, id and index columns only."""
    if entry.subject_id is not None or entry.pii is not None:
        raise ValueError("an encoded body holds its subject key: pass no subject_id or pii")
    if type(body.data) is not bytes or not body.data.startswith(b"{"):
        raise TypeError("EncodedBody.data must be the canonical JSON bytes of an object")
    rid = next(fresh) if entry.id is None else entry.id
    if entry.id is not None and not is_record_id(entry.id):
        raise ValueError(f"record id {entry.id!r} is not a lowercase UUID")
    if rid in seen_ids:
        raise ValueError(f"record id {rid} appears twice in one batch")
    seen_ids.add(rid)
    if "pii" in body.index:
        raise ValueError("body.pii is reserved for encrypted PII: pass PII as pii=")
    sk, model_name, model_version, ref = _append_columns(type_, body.index)
    idx = checked_idx_bytes(sk, model_name, model_version, ref, encode) if with_idx else None
    return PendingRecord(
        rid, type_, body.data, sk, subject_tag(sk), model_name, model_version, ref, idx
    )


def _append_columns(
    type_: str, body: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None, str | None]:
    """:func:`index_columns` of a record being appended, which also refuses a NUL in the model's
    name or version: PostgreSQL's text cannot hold one, so both stores refuse it alike, before
    anything is written. Verification keeps to :func:`index_columns`, so a record that SQLite
    took before this check still verifies."""
    columns = index_columns(type_, body)
    if holds_nul(columns[1], columns[2]):
        raise ValueError(ERR_MODEL_NUL)
    return columns


def covering(fences: Iterable[Fence]) -> list[Fence]:
    """The fewest fences that fail exactly when one of ``fences`` does: per model, the earliest.

    A move of a model recorded at seq ``s`` fails every fence of that model with ``since <= s``,
    so the model's earliest fence fails whenever any of its fences does. A group commit checks
    one fence per model, not one per caller (under 32 threads, mostly the same alias and
    nearly the same ``since``); if it fails, each caller is committed alone against its own.
    """
    earliest: dict[str, Fence] = {}
    for fence in fences:
        known = earliest.get(fence.model)
        if known is None or fence.since < known.since:
            earliest[fence.model] = fence
    return list(earliest.values())


class _Request:
    """One caller's records waiting in the group commit queue.

    ``gate`` is a lock held from creation: the caller blocks on it until the leader that
    committed its records (or failed to) releases it, or until it is handed the leadership.
    """

    __slots__ = ("done", "error", "fences", "gate", "pending", "receipts")

    def __init__(self, pending: list[PendingRecord], fences: Sequence[Fence] = ()) -> None:
        self.pending = pending
        self.fences = tuple(fences)
        self.receipts: list[Receipt] = []
        self.error: BaseException | None = None
        self.done = False
        self.gate = threading.Lock()
        self.gate.acquire()

    def finish(self, receipts: list[Receipt] | None, error: BaseException | None) -> None:
        self.receipts, self.error, self.done = receipts or [], error, True
        self.gate.release()


class GroupCommit:
    """Leader/follower group commit: concurrent appends share one transaction and one fsync.

    A durable commit costs one fsync (about 1.5 ms on this class of disk) whatever it holds.
    A caller that finds no commit under way leads: it takes every request queued so far (its
    own included) and commits them in one transaction. Callers arriving meanwhile queue up and
    sleep on their own gate; when the commit returns, the leader wakes exactly the callers it
    committed and hands the leadership to the first caller still queued, which commits
    everything queued by then. Nobody is woken to find nothing to do (a shared condition's
    ``notify_all`` woke every waiter after every commit: 31% of the time at 32 threads), and
    every answer still waits for its own commit to be durable.

    Each caller's records stay contiguous and all-or-nothing; if a combined commit fails, each
    caller's records are retried alone so one bad batch cannot fail the others.
    """

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._mutex = threading.Lock()
        self._queue: list[_Request] = []
        self._leading = False

    def append(self, pending: list[PendingRecord], fences: Sequence[Fence] = ()) -> list[Receipt]:
        request = _Request(pending, fences)
        with self._mutex:
            self._queue.append(request)
            lead = not self._leading
            self._leading = True
        if not lead:
            request.gate.acquire()  # committed by a leader, or handed the leadership
        if not request.done:
            with self._mutex:
                batch, self._queue = self._queue, []
            try:
                self._commit(batch)
            finally:
                with self._mutex:
                    if self._queue:
                        self._queue[0].gate.release()  # the next leader
                    else:
                        self._leading = False
        if request.error is not None:
            raise request.error
        return request.receipts

    def _commit(self, batch: list[_Request]) -> None:
        try:
            if len(batch) == 1:
                self._commit_one(batch[0])
                return
            combined = [record for request in batch for record in request.pending]
            try:
                receipts = self._store.append(
                    combined, covering(fence for request in batch for fence in request.fences)
                )
            except Exception:
                for request in batch:
                    self._commit_one(request)
                return
            start = 0
            for request in batch:
                end = start + len(request.pending)
                request.finish(receipts[start:end], None)
                start = end
        except BaseException as exc:  # e.g. KeyboardInterrupt: fail whoever is left waiting
            for request in batch:
                if not request.done:
                    request.finish(None, exc)
            raise

    def _commit_one(self, request: _Request) -> None:
        try:
            receipts = self._store.append(request.pending, request.fences)
        except Exception as exc:
            request.finish(None, exc)
        else:
            request.finish(receipts, None)
