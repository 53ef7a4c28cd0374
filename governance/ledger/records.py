"""Ledger records: their canonical form, the hash chain and the event-type registry.

A record is the canonical JSON (:mod:`governance.ledger.canonical`) of::

    {"body": {...}, "id": "<uuid>", "idx": {...}, "prev": "<64 hex>", "seq": <int>,
     "ts": "<utc>", "type": "<event type>"}

(keys in canonical order). ``seq`` counts from 0 without gaps; ``prev`` is the hash of the record
before (64 zeros for seq 0); ``ts`` is assigned by the store while it holds the write lock, and
never decreases along the chain (so a time range is a seq range).

One hash per record serves both the chain and the Merkle tree: a record's hash is its RFC 9162
leaf hash, ``SHA-256(0x00 || canonical bytes)`` (:func:`governance.ledger.merkle.leaf_hash`). It is
stored with the row (32 bytes), so checkpoints over millions of records read only hashes, and
verification computes one SHA-256 per record.

Record formats (the ledger's metadata ``record_format``; not to be confused with its
*canonical JSON* format, metadata ``canonical``, which says how JSON values are spelled):

``governance.record/2`` (:data:`RECORD_FORMAT`, what new ledgers write)
    The record carries ``idx``: the values of the index columns the stores keep outside the
    record, ``{"model": name, "ref": decision id, "subject": subject key, "version": model
    version}`` (``null`` where absent). Every stored column is thus either hashed (``seq``,
    ``id``, ``type``, ``ts`` and ``idx``) or recomputed from hashed bytes (``subject_tag`` from
    the subject key, ``hash``), and verification compares each column with the record: an
    edited index column (hiding a subject's decisions from ``find``) is named as that record.
``governance.record/1`` (:data:`RECORD_FORMAT_V1`, ledgers created before format 2)
    No ``idx``. Verification re-derives the index columns from the body (:func:`index_columns`)
    and compares them, so these ledgers are covered too, at the cost of parsing every body.

Index columns (``subject_key``, ``model_name``, ``model_version``, ``ref``) are extracted from the
body when a record is appended (:func:`index_columns`); a deep verification re-derives them and
checks ``idx`` against the body.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from governance.ledger.canonical import CANONICAL_FORMAT, encoder_for, parse_json

__all__ = [
    "EVENT_TYPES",
    "GENESIS_HASH",
    "GENESIS_HEX",
    "INSERT_COLUMNS",
    "RECORD_FORMAT",
    "RECORD_FORMATS",
    "RECORD_FORMAT_V1",
    "ChainBreak",
    "ChainWalker",
    "Head",
    "PendingRecord",
    "Receipt",
    "Record",
    "chain_rows",
    "check_event_type",
    "checked_idx_bytes",
    "encode_record",
    "holds_nul",
    "idx_bytes",
    "index_columns",
    "is_record_id",
    "new_record_ids",
    "record_front",
    "record_hash",
    "register_event_type",
    "subject_tag",
]

GENESIS_HASH = bytes(32)
"""The ``prev`` of record 0 (as bytes)."""
GENESIS_HEX = GENESIS_HASH.hex()
"""The ``prev`` of record 0, as written in the record: 64 zeros."""

EVENT_TYPES: dict[str, str] = {
    "decision": "a model decision about a subject (inputs, outcome, score, explanation)",
    "outcome": "ground truth arriving later for a decision (body.decision_id)",
    "review": "a human review, override or contest of a decision (body.decision_id)",
    "promotion": "a model alias moved (e.g. champion), with approver and reason",
    "training": "a model was trained (lineage)",
    "validation": "a dataset was validated (GX result)",
    "registration": "a model version was registered",
    "erasure": "a subject's PII keys were destroyed (body.subject_key)",
    "evidence": "an evidence pack was built (body: the sha256 of its manifest)",
    "recourse": "the exact recourse of an adverse decision (body.decision_id, body.recourse)",
    "notice": "an adverse-action notice was issued for a decision (body.decision_id, sha256)",
    "legal_hold": "a subject's records are under a legal hold: forget is refused (subject_key)",
    "legal_hold_release": "a legal hold on a subject was released (body.subject_key)",
}
"""Known event types and what they mean; extend with :func:`register_event_type`."""

_REQUIRED: dict[str, tuple[str, ...]] = {
    "outcome": ("decision_id",),
    "review": ("decision_id",),
    "erasure": ("subject_key",),
    "recourse": ("decision_id", "recourse"),
    "notice": ("decision_id", "sha256"),
    "legal_hold": ("subject_key", "reason"),
    "legal_hold_release": ("subject_key", "reason"),
}
_REF_TYPES = frozenset({"outcome", "review", "recourse", "notice"})
_TYPE_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SUBJECT_KEY_RE = re.compile(r"[0-9a-f]{64}")

RECORD_FORMAT_V1 = "governance.record/1"
"""Records without ``idx`` (ledgers created before record format 2)."""
RECORD_FORMAT = "governance.record/2"
"""Records with ``idx``, the index columns inside the hashed bytes (what new ledgers write)."""
RECORD_FORMATS = (RECORD_FORMAT_V1, RECORD_FORMAT)

_RECORD_V1 = b'{"body":%b,"id":"%b","prev":"%b","seq":%d,"ts":"%b","type":"%b"}'
_RECORD_V2 = b'{"body":%b,"id":"%b","idx":%b,"prev":"%b","seq":%d,"ts":"%b","type":"%b"}'
_FRONT_V1 = b'{"body":%b,"id":"%b"'
_FRONT_V2 = b'{"body":%b,"id":"%b","idx":%b'
_TAIL_V1 = b',"id":"%b","prev":"%b","seq":%d,"ts":"%b","type":"%b"}'
# idx spelled out as the model's head (_model_text), ref, subject and the model's tail
_TAIL_V2 = b',"id":"%b","idx":%b%b,"subject":%b%b,"prev":"%b","seq":%d,"ts":"%b","type":"%b"}'
_TAIL_RE = re.compile(
    rb',"id":"([^"\\]*)"(?:,"idx":(\{.*\}))?,"prev":"([^"\\]*)","seq":(-?[0-9]+),'
    rb'"ts":"([^"\\]*)","type":"([^"\\]*)"\}'
)
_IDX_PARTS = b'%b%b,"subject":%b%b'  # _model_text's head, ref, subject, _model_text's tail
_PLAIN_RE = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': JSON as is
_NOT_JSON = b"\x00"  # never part of a record: a column that cannot be an index value
_TEXTS = (str, type(None))  # column types whose idx text may be cached
# _model_text's cache: (type and value of name, of version, encoder) -> idx head and tail
_MODEL_TEXT: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
# _model_columns's cache: (type and value of name, of version) -> index columns
_MODEL_COLUMNS: dict[tuple[object, ...], tuple[str | None, str | None]] = {}
_UNSET = object()  # equal to no column value
_KEYS_V1 = frozenset({"body", "id", "prev", "seq", "ts", "type"})
_KEYS_V2 = _KEYS_V1 | {"idx"}
_HEAD_PREFIX = b'{"body":{'
_LEAF_PREFIX = b"\x00"
_TAG_OF = struct.Struct(">q").unpack_from  # (subject tag,) of a subject key's 32 bytes

INSERT_COLUMNS = (
    "seq",
    "id",
    "type",
    "ts",
    "subject_key",
    "subject_tag",
    "model_name",
    "model_version",
    "ref",
    "data",
    "hash",
)
"""Column order of the row tuples built by :func:`chain_rows` (both stores use it)."""


def register_event_type(name: str, description: str = "", *, required: Sequence[str] = ()) -> None:
    """Add an event type to the registry (idempotent).

    Parameters
    ----------
    name
        Lowercase ``[a-z][a-z0-9_.-]{0,63}``.
    description
        What the event means.
    required
        Body members every event of this type must have.

    Raises
    ------
    ValueError
        If ``name`` is not a valid type name.
    """
    if not isinstance(name, str) or not _TYPE_RE.fullmatch(name):
        raise ValueError(f"invalid event type name {name!r}: expected [a-z][a-z0-9_.-]{{0,63}}")
    EVENT_TYPES.setdefault(name, description)
    if required:
        _REQUIRED[name] = tuple(required)


def check_event_type(name: object) -> str:
    """Return ``name`` if it is a registered event type, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"unknown event type {name!r}; known types: {known}")
    return name


def is_record_id(value: object) -> bool:
    """Whether ``value`` is a record id: a lowercase, hyphenated UUID string."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def new_record_ids(count: int) -> list[str]:
    """Return ``count`` new record ids (UUID version 7, RFC 9562).

    Version 7 UUIDs start with the millisecond time, so ids of consecutive records sit next to
    each other in the id index (cheap inserts at millions of records); 74 random bits follow.

    Parameters
    ----------
    count
        How many.

    Returns
    -------
    list[str]
        Lowercase hyphenated UUIDs.
    """
    if count <= 0:
        return []
    head = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76
    randomness = os.urandom(10 * count)
    ids: list[str] = []
    append = ids.append
    for offset in range(0, 10 * count, 10):
        r = int.from_bytes(randomness[offset : offset + 10], "big")
        h = "%032x" % (head | (r >> 68) << 64 | 0x8000000000000000 | (r & 0x3FFFFFFFFFFFFFFF))
        append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def record_hash(data: bytes) -> bytes:
    """Return a record's hash: its RFC 9162 leaf hash ``SHA-256(0x00 || data)``.

    Parameters
    ----------
    data
        The record's canonical bytes.

    Returns
    -------
    bytes
        32 bytes.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def encode_record(
    seq: int,
    record_id: str,
    type_: str,
    ts: str,
    prev: str,
    body: bytes,
    idx: bytes | None = None,
) -> bytes:
    """Return the canonical bytes of a record whose body is already canonical JSON.

    Equal to ``canonical_json({"body": ..., "id": ..., "idx": ..., "prev": ..., "seq": ...,
    "ts": ..., "type": ...})`` in either canonical format (the header holds no floats, so both
    formats write it alike), but built by formatting, as ``id``, ``prev``, ``ts`` and ``type``
    never need escaping (they are validated).

    Parameters
    ----------
    seq, record_id, type_, ts, prev
        Header fields (``prev`` as 64 hex digits).
    body
        The body's canonical JSON (in the ledger's format); must be an object.
    idx
        :func:`idx_bytes` for record format 2; ``None`` for format 1 (no ``idx``).

    Returns
    -------
    bytes
        The record.
    """
    if idx is None:
        return _RECORD_V1 % (
            body,
            record_id.encode(),
            prev.encode(),
            seq,
            ts.encode(),
            type_.encode(),
        )
    return _RECORD_V2 % (
        body,
        record_id.encode(),
        idx,
        prev.encode(),
        seq,
        ts.encode(),
        type_.encode(),
    )


def _json_text(value: object, encode: Callable[[object], bytes]) -> bytes:
    """Return the canonical JSON of an index value (a string or ``None``)."""
    if value is None:
        return b"null"
    if type(value) is not str:
        return _NOT_JSON  # e.g. an integer written into a text column: cannot match
    if _PLAIN_RE.fullmatch(value):
        return b'"%b"' % value.encode()
    return encode(value)


def _subject_text(subject_key: object, tag: object) -> bytes:
    """The ``subject`` member of ``idx`` that the subject key and tag columns stand for.

    A key is written as is only if it is 64 hex digits (no quote or backslash) and the tag
    column is its tag; anything else gets bytes no record holds.
    """
    if type(subject_key) is str and len(subject_key) == 64:
        try:
            raw = bytes.fromhex(subject_key)
        except ValueError:
            return _NOT_JSON
        if len(raw) == 32 and (tag,) == _TAG_OF(raw):
            return b'"%b"' % subject_key.encode()
        return _NOT_JSON
    if subject_key is None and tag is None:
        return b"null"
    return _NOT_JSON


def idx_bytes(
    subject_key: object,
    model_name: object,
    model_version: object,
    ref: object,
    encode: Callable[[object], bytes] = encoder_for(CANONICAL_FORMAT),
) -> bytes:
    """Return the canonical JSON of a record's ``idx`` member from its index column values.

    ``{"model": model_name, "ref": ref, "subject": subject_key, "version": model_version}``
    with ``null`` for ``None``. A value that is not a string or ``None`` (only possible in an
    altered column) gives bytes that no record contains.
    """
    head, tail = _model_text(model_name, model_version, encode)
    return _IDX_PARTS % (head, _json_text(ref, encode), _json_text(subject_key, encode), tail)


def _model_text(
    name: object, version: object, encode: Callable[[object], bytes]
) -> tuple[bytes, bytes]:
    """The ``idx`` bytes before ``ref`` and after ``subject``, for a model name and version.

    ``{"model":<name>,"ref":`` and ``,"version":<version>}`` (see :func:`idx_bytes`), kept in a
    bounded cache when both are strings or ``None``: every record of a model has the same. The
    cache is keyed by types too: a value equal to a string but of another type (an altered
    column's) gets its own bytes, which no record holds.
    """
    key = (type(name), name, type(version), version, encode)
    try:
        return _MODEL_TEXT[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value in an altered column
        text = (
            b'{"model":%b,"ref":' % _json_text(name, encode),
            b',"version":%b}' % _json_text(version, encode),
        )
        if len(_MODEL_TEXT) < 4096 and type(name) in _TEXTS and type(version) in _TEXTS:
            _MODEL_TEXT[key] = text
        return text


def checked_idx_bytes(
    subject_key: str | None,
    model_name: str | None,
    model_version: str | None,
    ref: str | None,
    encode: Callable[[object], bytes],
) -> bytes:
    """:func:`idx_bytes` of index columns that :func:`index_columns` returned (checked).

    Their subject key (64 hex digits) and ref (a record id) are JSON as they are.
    """
    head, tail = _model_text(model_name, model_version, encode)
    return _IDX_PARTS % (
        head,
        b"null" if ref is None else b'"%b"' % ref.encode(),
        b"null" if subject_key is None else b'"%b"' % subject_key.encode(),
        tail,
    )


def holds_nul(*values: object) -> bool:
    """Whether any of ``values`` is text holding a NUL (U+0000), which PostgreSQL's text cannot
    hold: both stores refuse it in a model's name or version at append, and on PostgreSQL it
    matches no row on lookup."""
    return any(isinstance(v, str) and "\x00" in v for v in values)


def subject_tag(subject_key: str | None) -> int | None:
    """Return the 64-bit index tag of a subject key (its first 8 bytes, signed), or ``None``.

    The subject index stores this integer instead of the 64-character key: a quarter of the
    size, so inserting millions of random keys dirties far fewer index pages.
    """
    if subject_key is None:
        return None
    return int.from_bytes(bytes.fromhex(subject_key[:16]), "big", signed=True)


def index_columns(
    type_: str, body: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None, str | None]:
    """Extract the index columns of a record from its body, checking their types.

    Parameters
    ----------
    type_
        The event type.
    body
        The record body.

    Returns
    -------
    tuple
        ``(subject_key, model_name, model_version, ref)``; ``ref`` is ``body["decision_id"]`` for
        ``outcome`` and ``review`` events (any event type may carry a ``decision_id``).

    Raises
    ------
    ValueError
        If a required member is missing or an index member has the wrong form.
    """
    for member in _REQUIRED.get(type_, ()):
        if member not in body:
            raise ValueError(f"a {type_!r} event needs body.{member}")
    subject_key = body.get("subject_key")
    if subject_key is not None and (
        not isinstance(subject_key, str) or not _SUBJECT_KEY_RE.fullmatch(subject_key)
    ):
        raise ValueError("body.subject_key must be 64 lowercase hex digits (an HMAC)")
    model_name, model_version = _model_columns(body.get("model"))
    ref = body.get("decision_id")
    if ref is not None and not is_record_id(ref):
        raise ValueError(f"body.decision_id must be a record id (a UUID), got {ref!r}")
    if type_ in _REF_TYPES and ref is None:
        raise ValueError(f"a {type_!r} event needs body.decision_id")
    return subject_key, model_name, model_version, ref


def _model_columns(model: object) -> tuple[str | None, str | None]:
    """The model name and version columns of a body's ``model`` member (checked).

    Cached by the name's and version's types and values, so a batch of one model's records
    checks them once.
    """
    if model is None:
        return None, None
    if type(model) is not dict and not isinstance(model, Mapping):
        raise ValueError("body.model must be an object with name and version")
    name, version = model.get("name"), model.get("version")
    key = (type(name), name, type(version), version)
    try:
        return _MODEL_COLUMNS[key]
    except (KeyError, TypeError):  # TypeError: an unhashable name or version (an error below)
        pass
    model_name: str | None = None
    model_version: str | None = None
    if name is not None:
        if not isinstance(name, str) or not name:
            raise ValueError("body.model.name must be a non-empty string")
        model_name = name
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, str | int):
            raise ValueError("body.model.version must be a string or an integer")
        model_version = str(version)
    if len(_MODEL_COLUMNS) < 4096 and type(name) in _TEXTS and type(version) in (*_TEXTS, int):
        _MODEL_COLUMNS[key] = model_name, model_version
    return model_name, model_version


class Receipt(NamedTuple):
    """Proof of acknowledgement: the record is committed at ``seq`` with this ``hash``.

    Attributes
    ----------
    seq
        Position in the ledger (0-based).
    id
        Record id (a decision's id).
    hash
        Record hash, 64 hex digits.
    ts
        Record timestamp (UTC, ISO 8601 with ``Z``).
    shard
        In a sharded ledger, the shard whose chain ``seq`` counts in; ``None`` otherwise.
    """

    seq: int
    id: str
    hash: str
    ts: str
    shard: int | None = None

    def ref(self) -> dict[str, Any]:
        """Where the record sits: ``{"seq", "hash"}``, and ``"shard"`` in a sharded ledger."""
        where: dict[str, Any] = {"seq": self.seq, "hash": self.hash}
        if self.shard is not None:
            where["shard"] = self.shard
        return where


@dataclass(frozen=True, slots=True)
class Head:
    """The chain head.

    Attributes
    ----------
    size
        Number of records.
    hash
        Hash of the last record (hex); :data:`GENESIS_HEX` when empty.
    ts
        Timestamp of the last record, or ``None`` when empty.
    """

    size: int
    hash: str
    ts: str | None


class PendingRecord(NamedTuple):
    """A record the facade hands to a store; the store assigns seq, ts and prev.

    Attributes
    ----------
    id, type
        Record id and event type (validated).
    body
        The body's canonical JSON bytes.
    subject_key, subject_tag, model_name, model_version, ref
        Index columns (from :func:`index_columns` and :func:`subject_tag`).
    idx
        Their :func:`idx_bytes` for record format 2, ``None`` for format 1.
    """

    id: str
    type: str
    body: bytes
    subject_key: str | None = None
    subject_tag: int | None = None
    model_name: str | None = None
    model_version: str | None = None
    ref: str | None = None
    idx: bytes | None = None


def record_front(pending: PendingRecord) -> bytes:
    """The bytes of ``pending``'s record before ``,"prev":``, which do not depend on the head.

    A store that chains in the database (PostgreSQL's ``append_records`` function) sends these
    and appends ``,"prev":"<hex>","seq":<n>,"ts":"<ts>","type":"<type>"}`` under the chain's
    lock; :func:`chain_rows` builds the same bytes in one go.
    """
    rid = pending.id.encode()
    if pending.idx is None:
        return _FRONT_V1 % (pending.body, rid)
    return _FRONT_V2 % (pending.body, rid, pending.idx)


def chain_rows(
    size: int, prev: bytes, last_ts: str | None, pending: Sequence[PendingRecord], now: str
) -> tuple[list[tuple[Any, ...]], list[Receipt]]:
    """Build the rows for ``pending`` on top of a chain head (call while holding the lock).

    Parameters
    ----------
    size
        Current number of records (the first new seq).
    prev
        Hash of the last record (:data:`GENESIS_HASH` when empty).
    last_ts
        Timestamp of the last record, or ``None``.
    pending
        The records to add, in order.
    now
        :func:`~governance.ledger.canonical.utc_now`; raised to ``last_ts`` if the clock went
        back, so timestamps never decrease along the chain.

    Returns
    -------
    tuple
        Row tuples in :data:`INSERT_COLUMNS` order, and one receipt per record.
    """
    ts = now if last_ts is None or now > last_ts else last_ts
    ts_b = ts.encode()
    rows: list[tuple[Any, ...]] = []
    receipts: list[Receipt] = []
    add_row, add_receipt = rows.append, receipts.append
    sha256, v1, v2, leaf = hashlib.sha256, _RECORD_V1, _RECORD_V2, _LEAF_PREFIX
    prev_hex = prev.hex()
    seq = size
    for rid, type_, body, sk, tag, model_name, model_version, ref, idx in pending:
        if idx is None:
            data = v1 % (body, rid.encode(), prev_hex.encode(), seq, ts_b, type_.encode())
        else:
            data = v2 % (body, rid.encode(), idx, prev_hex.encode(), seq, ts_b, type_.encode())
        digest = sha256(leaf + data).digest()
        add_row((seq, rid, type_, ts, sk, tag, model_name, model_version, ref, data, digest))
        prev_hex = digest.hex()
        add_receipt(Receipt(seq, rid, prev_hex, ts))
        seq += 1
    return rows, receipts


@dataclass(frozen=True)
class Record:
    """One stored ledger record, parsed.

    Attributes
    ----------
    seq, id, type, ts, prev
        Header fields as written in the record.
    hash
        The record hash (hex), as recomputed from ``data``.
    body
        The event body as stored (PII still encrypted; see ``Ledger.decode``).
    data
        The canonical bytes exactly as hashed.
    idx
        The record's ``idx`` (index column values, record format 2), or ``None``.
    """

    seq: int
    id: str
    type: str
    ts: str
    prev: str
    hash: str
    body: dict[str, Any] = field(repr=False)
    data: bytes = field(repr=False)
    idx: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        """Parse stored record bytes.

        Raises
        ------
        ValueError
            If ``data`` is not a ledger record.
        """
        value = parse_json(data)
        if not isinstance(value, dict) or value.keys() not in (_KEYS_V1, _KEYS_V2):
            raise ValueError("not a ledger record")
        idx = value.get("idx")
        if idx is not None and not isinstance(idx, dict):
            raise ValueError("the record's idx is not an object")
        return cls(
            seq=value["seq"],
            id=value["id"],
            type=value["type"],
            ts=value["ts"],
            prev=value["prev"],
            hash=record_hash(data).hex(),
            body=value["body"],
            data=data,
            idx=idx,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"seq", "id", "type", "ts", "prev", "hash", "body"}`` (body not copied)."""
        return {
            "seq": self.seq,
            "id": self.id,
            "type": self.type,
            "ts": self.ts,
            "prev": self.prev,
            "hash": self.hash,
            "body": self.body,
        }


class ChainBreak(Exception):
    """Verification found a bad record.

    Attributes
    ----------
    seq
        The first seq whose integrity cannot be established.
    reason
        What is wrong, in words.
    """

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class ChainWalker:
    """Check records in seq order, carrying the chain state across batches.

    Rows are ``(seq, data, hash, id, type, ts, subject_key, subject_tag, model_name,
    model_version, ref)`` with ``id``, ``type`` and ``ts`` as UTF-8 bytes (stores select them so).

    Each record must: sit at the next seq; hash (``SHA-256(0x00 || data)``) to its stored hash;
    be a record whose header says that seq, links ``prev`` to the previous record's hash and
    matches the id/type/ts columns; not go back in time; and match the index columns -- in
    record format 2 they must equal its ``idx`` (a byte comparison) and ``subject_tag`` must be
    the subject key's tag; in format 1 they are re-derived from the parsed body. Deep mode also
    requires canonical bytes (in the ledger's canonical format) and, in format 2, an ``idx``
    that agrees with the body.

    The columns are compared by formatting the record's tail (``,"id":...}``) from them and
    testing that the record ends with it. Every part of that text either is JSON (a string ends
    at its first unescaped quote), has a fixed length, or is computed here; the id, type and ts
    columns are copied in as they are, so they must hold no ``"``. Otherwise a column could take
    in text of the body: an id column holding ``y"},"id":"<real id>`` matches a record whose body
    has ``"id":"y"}`` and hides the record from lookup by its id.

    Parameters
    ----------
    start, prev, prev_ts
        Where the walk starts: the seq, the hash of the record before it and its timestamp.
    deep
        Also check canonical form and the body's index members (about 10x slower).
    canonical
        The ledger's canonical JSON format (its metadata's ``canonical``).
    record_format
        The ledger's record format (its metadata's ``record_format``).
    """

    def __init__(
        self,
        start: int = 0,
        prev: bytes = GENESIS_HASH,
        prev_ts: bytes = b"",
        *,
        deep: bool = False,
        canonical: str = CANONICAL_FORMAT,
        record_format: str = RECORD_FORMAT,
    ) -> None:
        if record_format not in RECORD_FORMATS:
            raise ValueError(f"unknown record format {record_format!r}; known: {RECORD_FORMATS}")
        self.next_seq = start
        self.prev = prev
        self.prev_ts = prev_ts
        self.deep = deep
        self.canonical = canonical
        self.record_format = record_format
        self._encode = encoder_for(canonical)

    def _idx(self, row: Sequence[Any]) -> bytes:
        """The ``idx`` bytes the row's index columns stand for (what :meth:`feed` compares).

        A subject key is written as is only if it is 64 hex digits whose tag matches the tag
        column (otherwise bytes no record holds), so an edited column can never format into a
        record's ``idx``.
        """
        sk, tag, name, version, ref = row[6:11]
        head, tail = _model_text(name, version, self._encode)
        ref_text = b"null" if ref is None else _json_text(ref, self._encode)
        return _IDX_PARTS % (head, ref_text, _subject_text(sk, tag), tail)

    def feed(self, rows: Iterable[Sequence[Any]], leaves: list[bytes] | None = None) -> None:
        """Check the next rows; append their hashes to ``leaves`` when given.

        Raises
        ------
        ChainBreak
            At the first bad record (state is left at the last good record).
        """
        head, hexlify = _HEAD_PREFIX, binascii.hexlify
        leaf_hash = hashlib.sha256(_LEAF_PREFIX)  # copied per record: cheaper than a new hash
        v2 = self.record_format == RECORD_FORMAT
        expected, prev, prev_ts = self.next_seq, self.prev, self.prev_ts
        prev_hex = hexlify(prev)
        add_leaf = leaves.append if leaves is not None else None
        deep, encode = self.deep, self._encode
        # The model's idx text, kept while consecutive rows name the same model: equal column
        # values always format alike (_json_text gives any non-string the same bytes).
        name_of: object = _UNSET
        version_of: object = _UNSET
        model_head = model_tail = b""
        try:
            for row in rows:
                seq, data, stored, rid, rtype, rts, sk, tag, name, version, ref = row
                hasher = leaf_hash.copy()
                hasher.update(data)
                digest = hasher.digest()
                if v2:
                    if name != name_of or version != version_of:
                        model_head, model_tail = _model_text(name, version, encode)
                        name_of, version_of = name, version
                    tail = _TAIL_V2 % (
                        rid,
                        model_head,
                        b"null" if ref is None else _json_text(ref, encode),
                        _subject_text(sk, tag),
                        model_tail,
                        prev_hex,
                        seq,
                        rts,
                        rtype,
                    )
                else:
                    tail = _TAIL_V1 % (rid, prev_hex, seq, rts, rtype)
                if (
                    seq != expected
                    or digest != stored
                    or not data.endswith(tail)
                    or not data.startswith(head)
                    or rts < prev_ts
                    or b'"' in rid
                    or b'"' in rts
                    or b'"' in rtype
                ):
                    raise self._diagnose(expected, row, prev, prev_ts, v2)
                if deep or not v2:
                    self._check_body(row, deep)
                if add_leaf is not None:
                    add_leaf(digest)
                expected += 1
                prev, prev_ts = digest, rts
                prev_hex = hexlify(digest)
        finally:
            self.next_seq, self.prev, self.prev_ts = expected, prev, prev_ts

    def _diagnose(
        self, expected: int, row: Sequence[Any], prev: bytes, prev_ts: bytes, v2: bool
    ) -> ChainBreak:
        seq, data, stored, rid, rtype, rts = row[:6]
        if seq != expected:
            if seq > expected:
                missing = seq - expected
                return ChainBreak(
                    expected,
                    f"{_plural(missing, 'record')} missing: seq {expected}"
                    + (f"..{seq - 1}" if missing > 1 else "")
                    + f" absent, the next stored record is seq {seq} (records deleted)",
                )
            return ChainBreak(seq, f"seq {seq} stored out of order after seq {expected - 1}")
        if record_hash(data) != stored:
            return ChainBreak(seq, "the record bytes do not match their stored hash (altered)")
        match = _TAIL_RE.search(data, max(0, len(data) - 4096))
        if (
            match is None
            or not data.startswith(_HEAD_PREFIX)
            or match.end() != len(data)
            or (match.group(2) is not None) != v2
        ):
            return ChainBreak(seq, "the stored bytes are not a well-formed ledger record")
        claimed = int(match.group(4))
        if claimed != seq:
            return ChainBreak(
                min(seq, claimed),
                f"the record stored at seq {seq} says it is seq {claimed} "
                "(records deleted, reordered or inserted)",
            )
        if match.group(3) != prev.hex().encode():
            return ChainBreak(
                seq,
                f"prev does not link to the hash of seq {seq - 1} "
                "(a record was inserted, replaced or removed here)"
                if seq
                else "prev of seq 0 is not the genesis value (records removed before it)",
            )
        for name, index, column in (("id", 1, rid), ("type", 6, rtype), ("ts", 5, rts)):
            if match.group(index) != column:
                return ChainBreak(seq, f"the {name} column does not match the record")
        if rts < prev_ts:
            return ChainBreak(seq, "the timestamp is earlier than the previous record's")
        if v2 and match.group(2) != self._idx(row):
            return ChainBreak(
                seq,
                "the index columns (subject key, subject tag, model name, model version, ref)"
                " do not match the record's idx (altered after it was written)",
            )
        return ChainBreak(seq, "inconsistent record")

    def _check_body(self, row: Sequence[Any], deep: bool) -> None:
        """Parse the record; check the columns (format 1) or idx (format 2) against its body."""
        seq, data = row[0], row[1]
        try:
            record = Record.from_bytes(data)
            canonical = not deep or _is_canonical_record(record, self._encode)
        except ValueError as exc:
            raise ChainBreak(seq, f"the record does not parse: {exc}") from None
        if not canonical:
            raise ChainBreak(seq, "the record bytes are not in canonical form")
        if not isinstance(record.body, dict):
            raise ChainBreak(seq, "the record body is not an object")
        try:
            sk, model_name, model_version, ref = index_columns(record.type, record.body)
        except ValueError as exc:
            raise ChainBreak(seq, f"invalid body: {exc}") from None
        if record.idx is not None:
            if idx_bytes(sk, model_name, model_version, ref, self._encode) != self._encode(
                record.idx
            ):
                raise ChainBreak(seq, "the record's idx does not match its body")
            return
        if tuple(row[6:11]) != (sk, subject_tag(sk), model_name, model_version, ref):
            raise ChainBreak(
                seq,
                "the index columns (subject key, subject tag, model name, model version, ref)"
                " do not match the record body (altered after it was written)",
            )


def _tag_of(subject_key: object) -> object:
    """The subject tag of a subject key column; a value no tag equals if it is not a key."""
    if type(subject_key) is not str or not _SUBJECT_KEY_RE.fullmatch(subject_key):
        return _NOT_JSON
    return subject_tag(subject_key)


def _is_canonical_record(record: Record, encode: Callable[[object], bytes]) -> bool:
    value: dict[str, Any] = {
        "body": record.body,
        "id": record.id,
        "prev": record.prev,
        "seq": record.seq,
        "ts": record.ts,
        "type": record.type,
    }
    if record.idx is not None:
        value["idx"] = record.idx
    return encode(value) == record.data
