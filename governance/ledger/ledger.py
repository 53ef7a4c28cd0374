"""The decision ledger facade: append, query, verify, prove and forget.

>>> ledger = Ledger.open("sqlite:////var/lib/governance/ledger.db", home=Path("~/.governance"))
>>> receipt = ledger.append("decision", body, subject_id="applicant-42", pii={"name": "..."})
>>> ledger.decode(ledger.get(receipt.id))["body"]["pii"]
{'name': '...'}
>>> ledger.verify().ok
True

State outside the database lives under ``home``::

    keys/subject-hmac.key     HMAC key of subject keys            (0600)
    keys/pii-kek.key          wraps the per-subject data keys     (0600)
    keys/checkpoint.pem       Ed25519 checkpoint signing key      (0600)
    keys/checkpoint.pub       its public key, for auditors
    checkpoints/<ledger id>/  exported signed checkpoints, one JSON file each

Copy ``checkpoints/`` (and ``checkpoint.pub``) somewhere the database's administrators cannot
write: a later ledger must still contain every exported tree head, which is what makes
truncation or rewriting detectable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger._commit import EncodedBody, Entry, GroupCommit, prepare_entry
from governance.ledger._tree import TreeHeads
from governance.ledger._verify import VerifyResult, verify_store
from governance.ledger.canonical import (
    CANONICAL_FORMAT,
    CANONICAL_FORMATS,
    encoder_for,
    utc_now,
    utc_text,
)
from governance.ledger.checkpoint import (
    Checkpoint,
    CheckpointDirectory,
    load_or_create_signing_key,
    public_key_bytes,
)
from governance.ledger.errors import IntegrityError, LedgerError, NotCovered
from governance.ledger.holds import hold_in_force, refuse_if_held
from governance.ledger.privacy import (
    ERASED,
    PII_ALG,
    KeyRing,
    decrypt_pii,
    new_data_key,
)
from governance.ledger.records import (
    RECORD_FORMAT,
    RECORD_FORMAT_V1,
    RECORD_FORMATS,
    ChainWalker,
    Head,
    PendingRecord,
    Receipt,
    Record,
    check_event_type,
    new_record_ids,
    record_hash,
)
from governance.ledger.store import SCHEMA_VERSION, Fence, LedgerStore, Query, StoreError
from governance.ledger.urls import split_shards

__all__ = [
    "EncodedBody",
    "Entry",
    "IntegrityError",
    "Ledger",
    "LedgerError",
    "NotCovered",
    "VerifyResult",
    "open_store",
]

ERR_SHARDED_URL = (
    "the ledger URL names shards={k}: a sharded ledger, which this reads as one chain and cannot"
    " (open it with governance.ledger.shards.open_ledger; the `governance audit` commands,"
    " `serve`, `decide` and `score` do)"
)
_MAX_LIMIT = 10_000
_MAX_OFFSET = 2**63 - 1  # a 64-bit integer in both stores' SQL
_DEK_CACHE_MAX = 100_000


def _as_ts(value: str | datetime, name: str) -> str:
    """Normalise a time bound to the ledger's format (UTC, microseconds, ``Z``)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise LedgerError(f"{name}: {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise LedgerError(f"{name} must be an ISO 8601 string or a datetime")
    if value.tzinfo is None:
        raise LedgerError(f"{name} must have a time zone (e.g. a trailing Z for UTC)")
    try:
        return utc_text(value)
    except ValueError as exc:
        raise LedgerError(f"{name}: {value.isoformat()} {exc}") from None


def open_store(url: str | PathLike[str], *, create: bool = True) -> LedgerStore:
    """Open the store a URL names.

    Parameters
    ----------
    url
        ``sqlite:///abs/path.db`` (everything after ``sqlite://`` is the path, so three slashes
        give an absolute path; options ``?synchronous=normal|full|extra`` and ``timeout=``
        seconds), a plain filesystem path (SQLite), or ``postgresql://...`` /
        ``postgres://...`` with an optional ``schema=NAME`` query parameter (default
        ``governance_ledger``).
    create
        Create the schema if missing (default); with ``False`` a missing ledger raises
        :class:`~governance.ledger.store.StoreError` and nothing is created (for readers).

    Returns
    -------
    LedgerStore
        The store, with its schema created if missing.
    """
    text, shards = split_shards(str(url))  # shards=1: one chain, as open_ledger reads it
    if shards > 1:
        raise LedgerError(ERR_SHARDED_URL.format(k=shards))
    if text.startswith(("postgresql://", "postgres://")):
        from governance.ledger.postgres_store import PostgresStore

        return PostgresStore(text, create=create)
    from governance.ledger.sqlite_store import SQLiteStore

    options: dict[str, str] = {}
    if text.startswith("sqlite://"):
        text, _, query = text[len("sqlite://") :].partition("?")
        if text.startswith("//"):  # sqlite:////abs/path: one leading slash is enough
            text = "/" + text.lstrip("/")
        if not text:
            raise LedgerError("sqlite URL without a path; use sqlite:///absolute/path.db")
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = options.keys() - {"synchronous", "timeout"}
        if unknown:
            raise LedgerError(f"unknown sqlite URL option(s): {', '.join(sorted(unknown))}")
    elif "://" in text:
        raise LedgerError(f"unsupported ledger URL {text!r}: use sqlite:/// or postgresql://")
    return SQLiteStore(
        Path(text),
        synchronous=options.get("synchronous", "FULL"),
        timeout=float(options.get("timeout", 60.0)),
        create=create,
    )


class Ledger:
    """An append-only, tamper-evident, privacy-preserving event ledger.

    Use :meth:`open`. Instances are thread-safe; any number of processes may append to the same
    ledger at once.

    Parameters
    ----------
    store
        The storage.
    home
        State directory holding ``keys/`` and ``checkpoints/``.
    """

    def __init__(self, store: LedgerStore, home: Path | str) -> None:
        self.store = store
        self.home = Path(home).expanduser().absolute()
        keys_dir = self.home / "keys"
        meta = store.meta()
        self._keys = KeyRing.load(keys_dir, create=not meta)
        signing_path = keys_dir / "checkpoint.pem"
        if meta and not signing_path.exists():
            raise FileNotFoundError(
                f"{signing_path} is missing: this ledger's keys are not in this home directory"
            )
        self._signing_key = load_or_create_signing_key(signing_path)
        public_hex = public_key_bytes(self._signing_key).hex()
        if not meta:
            meta = store.init_meta(
                {
                    "ledger_id": uuid.uuid4().hex,
                    "schema_version": SCHEMA_VERSION,
                    "canonical": CANONICAL_FORMAT,
                    "record_format": RECORD_FORMAT,
                    "created": utc_now(),
                    "hmac_key_id": self._keys.hmac_key_id,
                    "kek_id": self._keys.kek_id,
                    "checkpoint_public_key": public_hex,
                }
            )
        self._check_meta(meta, public_hex)
        self.ledger_id = meta["ledger_id"]
        # The canonical JSON format this ledger was created with; it writes it for its whole life.
        self.canonical_format: str = meta["canonical"]
        self._encode = encoder_for(self.canonical_format)
        # The record format (records before format 2 carry no idx and their ledgers say nothing).
        self.record_format: str = meta.get("record_format", RECORD_FORMAT_V1)
        self.origin = f"governance/ledger/{self.ledger_id}"
        self.public_key: Ed25519PublicKey = self._signing_key.public_key()
        self.checkpoint_dir = CheckpointDirectory(self.home / "checkpoints" / self.ledger_id)
        self.tree = TreeHeads(
            store,
            self.origin,
            self._signing_key,
            self.checkpoint_dir,
            ChainWalker(canonical=self.canonical_format, record_format=self.record_format),
        )
        self._dek_cache: dict[str, bytes] = {}
        self._writer = GroupCommit(store)

    def _check_meta(self, meta: Mapping[str, str], public_hex: str) -> None:
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise LedgerError(
                f"{self.store.location}: ledger schema version {meta.get('schema_version')!r},"
                f" this code reads version {SCHEMA_VERSION}"
            )
        if meta.get("canonical") not in CANONICAL_FORMATS:
            raise LedgerError(
                f"{self.store.location}: records in canonical format {meta.get('canonical')!r},"
                f" this code reads and writes {', '.join(CANONICAL_FORMATS)}"
            )
        if meta.get("record_format", RECORD_FORMAT_V1) not in RECORD_FORMATS:
            raise LedgerError(
                f"{self.store.location}: records in record format {meta.get('record_format')!r},"
                f" this code reads and writes {', '.join(RECORD_FORMATS)}"
            )
        for name, have in (
            ("hmac_key_id", self._keys.hmac_key_id),
            ("kek_id", self._keys.kek_id),
            ("checkpoint_public_key", public_hex),
        ):
            if meta.get(name) != have:
                raise LedgerError(
                    f"{self.home / 'keys'} does not hold the keys of the ledger at"
                    f" {self.store.location} ({name} is {meta.get(name)}, these keys give {have})"
                )

    @classmethod
    def open(cls, url: str | PathLike[str], *, home: Path | str, create: bool = True) -> Ledger:
        """Open (creating if needed) the ledger at ``url`` with state in ``home``.

        Parameters
        ----------
        url
            See :func:`open_store`.
        home
            State directory (keys and exported checkpoints); created if missing. Opening an
            existing ledger requires the keys it was created with.
        create
            Create the ledger if there is none (default); with ``False`` a missing ledger is a
            :class:`LedgerError` and nothing is created (for commands that only read).

        Raises
        ------
        LedgerError
            If ``home`` holds other keys than the ledger was created with.
        """
        try:
            store = open_store(url, create=create)
        except StoreError as exc:
            raise LedgerError(str(exc)) from exc
        try:
            return cls(store, home)
        except FileNotFoundError as exc:
            store.close()
            raise LedgerError(str(exc)) from exc
        except BaseException:
            store.close()
            raise

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store (idempotent)."""
        self.store.close()
        self._dek_cache.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.store.location!r}, id={self.ledger_id})"

    # -- writing --------------------------------------------------------------------------

    def subject_key(self, subject_id: str) -> str:
        """Return the pseudonymous subject key (HMAC-SHA256 hex) of ``subject_id``."""
        return self._keys.subject_key(subject_id)

    def append(
        self,
        type: str,
        body: Mapping[str, Any],
        *,
        subject_id: str | None = None,
        pii: Mapping[str, Any] | None = None,
        record_id: str | None = None,
    ) -> Receipt:
        """Append one record durably.

        Parameters
        ----------
        type
            A registered event type.
        body
            The event body, a JSON object. ``subject_key`` is added from ``subject_id``;
            ``pii`` is reserved for the encrypted PII. ``model.name``/``model.version``,
            ``decision_id`` and ``subject_key`` become index columns.
        subject_id
            The subject's identifier (never stored; its HMAC is).
        pii
            Personal data, stored encrypted under the subject's data key.
        record_id
            Use this id (a lowercase UUID) instead of a new one.

        Returns
        -------
        Receipt
            ``seq``, ``id``, ``hash``, ``ts``; returned only once the record is committed.

        Raises
        ------
        ValueError, TypeError
            For an unknown type, a body that is not canonical JSON, or inconsistent arguments;
            nothing is written.
        """
        return self.append_many([Entry(type, body, subject_id, pii, record_id)])[0]

    def append_many(
        self, items: Iterable[Entry | Mapping[str, Any]], *, fence: Fence | None = None
    ) -> list[Receipt]:
        """Append records atomically (one transaction) and durably, in order.

        Parameters
        ----------
        items
            :class:`Entry` objects or mappings with the same keys.
        fence
            Checked in the same transaction: :class:`~governance.ledger.store.FenceError`
            (nothing written) if an alias-moving event of ``fence.model`` was recorded at seq
            ``fence.since`` or later.

        Returns
        -------
        list[Receipt]
            One per item, in order; all or nothing is written.
        """
        pending = self.prepare(items)
        if not pending:
            return []
        return self._writer.append(pending, () if fence is None else (fence,))

    def prepare(self, items: Iterable[Entry | Mapping[str, Any]]) -> list[PendingRecord]:
        """Encode entries into records ready for the store, as :meth:`append_many` does.

        Assigns ids, index columns and encrypts PII (creating data keys for new subjects).

        Raises
        ------
        ValueError, TypeError
            If an entry is malformed (nothing is written).
        """
        entries = [item if isinstance(item, Entry) else Entry(**item) for item in items]
        if not entries:
            return []
        fresh = iter(new_record_ids(sum(1 for e in entries if e.id is None)))
        pii_subjects = {
            self._keys.subject_key(e.subject_id)
            for e in entries
            if e.pii is not None and isinstance(e.subject_id, str) and e.subject_id
        }
        data_keys = self._data_keys_for(pii_subjects) if pii_subjects else {}
        pending: list[PendingRecord] = []
        seen_ids: set[str] = set()
        for n, entry in enumerate(entries):
            try:
                pending.append(
                    prepare_entry(
                        entry,
                        keys=self._keys,
                        encode=self._encode,
                        fresh=fresh,
                        data_keys=data_keys,
                        seen_ids=seen_ids,
                        with_idx=self.record_format == RECORD_FORMAT,
                    )
                )
            except (ValueError, TypeError) as exc:
                if len(entries) > 1:
                    exc.add_note(f"in item {n} of the batch; nothing was written")
                raise
        return pending

    def _data_keys_for(self, subject_keys: set[str]) -> dict[str, tuple[str, bytes]]:
        """Return ``{subject_key: (kid, data_key)}``, creating keys for new subjects."""
        found = self.store.current_data_keys(subject_keys)
        result: dict[str, tuple[str, bytes]] = {}
        for sk, (kid, wrapped) in found.items():
            result[sk] = (kid, self._unwrap(kid, sk, wrapped))
        created: list[tuple[str, str, bytes, str]] = []
        now = utc_now()
        for sk in subject_keys - found.keys():
            kid, data_key, wrapped = new_data_key(self._keys, sk)
            created.append((kid, sk, wrapped, now))
            result[sk] = (kid, data_key)
        self.store.add_data_keys(created)
        return result

    def _unwrap(self, kid: str, subject_key: str, wrapped: bytes) -> bytes:
        data_key = self._dek_cache.get(kid)
        if data_key is None:
            data_key = self._keys.unwrap(kid, subject_key, wrapped)
            if len(self._dek_cache) >= _DEK_CACHE_MAX:
                self._dek_cache.clear()
            self._dek_cache[kid] = data_key
        return data_key

    def legal_hold(
        self, subject_id: str | None = None, *, subject_key: str | None = None
    ) -> Record | None:
        """The ``legal_hold`` event in force for a subject (not released since), or None."""
        return hold_in_force(self.find, subject_key or self._keys.subject_key(str(subject_id)))

    def forget(self, subject_id: str, *, reason: str | None = None) -> Receipt:
        """Erase a subject's PII (GDPR art. 17) by destroying their data keys.

        Refused (:class:`LedgerError`) while the subject is under a legal hold
        (:meth:`legal_hold`): records that a court or regulator asked to be kept are kept.

        The key rows are deleted, the deletion is pushed out of the database's logs where the
        backend allows (SQLite: ``secure_delete`` + WAL truncation; PostgreSQL: ``VACUUM`` of
        the key table, see :mod:`governance.ledger.postgres_store`), and an ``erasure`` event
        carrying the subject key (never the identifier) is appended. Records, hashes and
        checkpoints are untouched, so the ledger still verifies; :meth:`decode` shows the PII as
        ``"[erased]"``.

        Parameters
        ----------
        subject_id
            The subject's identifier.
        reason
            Recorded in the erasure event (e.g. a request reference); no personal data.

        Returns
        -------
        Receipt
            Of the erasure event.
        """
        sk = self._keys.subject_key(subject_id)
        refuse_if_held(self.find, sk)
        destroyed = self.store.delete_data_keys(sk)
        self._dek_cache.clear()
        body: dict[str, Any] = {"subject_key": sk, "keys_destroyed": destroyed}
        if reason is not None:
            body["reason"] = reason
        receipt = self.append("erasure", body)
        self.store.purge()
        return receipt

    # -- reading --------------------------------------------------------------------------

    @staticmethod
    def _record(found: tuple[bytes, bytes] | None) -> Record | None:
        if found is None:
            return None
        data, stored = bytes(found[0]), bytes(found[1])
        if record_hash(data) != stored:
            raise IntegrityError("a stored record does not match its hash; run verify")
        try:
            return Record.from_bytes(data)
        except ValueError as exc:
            raise IntegrityError(f"a stored record does not parse ({exc}); run verify") from exc

    def get(self, record_id: str) -> Record | None:
        """Return the record with this id (a decision id), or ``None``.

        Raises
        ------
        IntegrityError
            If the stored bytes do not match their hash.
        """
        return self._record(self.store.get_by_id(record_id))

    def get_seq(self, seq: int) -> Record | None:
        """Return the record at ``seq``, or ``None``."""
        return self._record(self.store.get_by_seq(seq))

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
    ) -> list[Record]:
        """Return records matching all given filters, in seq order.

        Parameters
        ----------
        subject_id
            Records about this subject (looked up by its HMAC subject key).
        model, version
            Records made by this model (and version; a version needs the model).
        since, until
            Time range ``[since, until)``: ISO 8601 strings with a zone, or aware datetimes.
        type
            Event type.
        ref
            Events that refer to this decision id (outcomes, reviews).
        limit, offset
            Paging (``limit`` at most 10,000).
        subject_key
            Like ``subject_id`` but with the subject key itself (for auditors without ids).
        after
            Keyset paging: only records with a larger seq (pass the last seq of the previous
            page); as fast a million records in as at the start. A deep ``offset`` is nearly
            as fast once the store has walked the filter's index (the first such page) and kept
            a mark at every 4,096th match (:mod:`~governance.ledger.offset_marks`).
        """
        if version is not None and model is None:
            raise LedgerError("a version filter needs the model name")
        if not 0 < limit <= _MAX_LIMIT or not 0 <= offset <= _MAX_OFFSET:
            raise LedgerError(f"limit must be in 1..{_MAX_LIMIT} and offset in 0..{_MAX_OFFSET}")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise LedgerError(f"after must be a seq (an integer), got {after!r}")
        if subject_id is not None:
            sk = self._keys.subject_key(subject_id)
            if subject_key is not None and subject_key != sk:
                return []
            subject_key = sk
        if type is not None:
            check_event_type(type)
        query = Query(
            subject_key=subject_key,
            model_name=model,
            model_version=None if version is None else str(version),
            type=type,
            ref=ref,
            since=None if since is None else _as_ts(since, "since"),
            until=None if until is None else _as_ts(until, "until"),
            limit=limit,
            offset=offset,
            after=after,
        )
        records = []
        for data in self.store.find(query):
            record = Record.from_bytes(bytes(data))
            records.append(record)
        return records

    def events_for(self, decision_id: str) -> list[Record]:
        """Return the events that refer to a decision (outcomes, reviews...), in seq order."""
        return self.find(ref=decision_id, limit=_MAX_LIMIT)

    def iter_records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        """Yield records in seq order (for exports), from one consistent snapshot."""
        for rows in self.store.iter_chain(start, stop):
            for row in rows:
                yield Record.from_bytes(bytes(row[1]))

    def size(self) -> int:
        """Return the number of records."""
        return self.store.head().size

    def head(self) -> Head:
        """Return the chain head (size, last hash, last timestamp)."""
        return self.store.head()

    def decode(self, record: Record) -> dict[str, Any]:
        """Return a record as a dict with its PII decrypted, or ``"[erased]"`` if forgotten.

        Parameters
        ----------
        record
            From :meth:`get`, :meth:`find` ...

        Returns
        -------
        dict
            ``{"seq", "id", "type", "ts", "prev", "hash", "body"}``; ``body["pii"]`` is the
            decrypted object, or ``"[erased]"`` once the subject's keys are destroyed.

        Raises
        ------
        governance.ledger.privacy.PiiError
            If a key exists but the PII does not decrypt (altered data or wrong keys).
        """
        result = record.to_dict()
        body = dict(record.body)
        envelope = body.get("pii")
        if isinstance(envelope, dict) and envelope.get("alg") == PII_ALG:
            kid = envelope.get("kid")
            sk = body.get("subject_key")
            found = self.store.data_keys([kid]) if isinstance(kid, str) else {}
            if kid not in found or not isinstance(sk, str) or found[kid][0] != sk:
                body["pii"] = ERASED
            else:
                data_key = self._unwrap(kid, sk, found[kid][1])
                body["pii"] = decrypt_pii(data_key, envelope, record.id, sk)
        result["body"] = body
        return result

    # -- verification ---------------------------------------------------------------------

    def verify(
        self,
        *,
        checkpoints: CheckpointDirectory | None = None,
        public_key: Ed25519PublicKey | bytes | None = None,
        deep: bool = False,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
        also: Sequence[tuple[str, Checkpoint]] = (),
    ) -> VerifyResult:
        """Verify the whole ledger: chain, hashes and every checkpoint.

        Records are streamed in seq order; each must sit at the next seq, hash to its stored
        hash, say that seq, link ``prev`` to the previous record's hash, match its id/type/ts
        columns and not go back in time. Then every checkpoint stored in the database and every
        one exported to ``checkpoints`` must carry a valid signature of this ledger's key, cover
        no more records than exist (else TRUNCATION) and have the Merkle root of that prefix.

        Parameters
        ----------
        checkpoints
            Exported checkpoints to check against; defaults to this ledger's export directory
            (``<home>/checkpoints/<ledger id>``). Point it at an independent copy to detect a
            truncation that also removed the local files.
        public_key
            The trusted checkpoint key; defaults to ``<home>/keys/checkpoint.pem``'s.
        deep
            Also parse every record, require canonical bytes (in the ledger's own canonical
            format) and re-derive the index columns (about 10x slower).
        progress
            Called as ``progress(done, total)`` after each batch.
        workers
            Processes walking the chain: 1, or 2 to have a helper process walk the second half
            (each half is checked from the stored hash at its start, and the halves must meet).
            By default 2 from 200,000 records on a machine with two or more cores.
        also
            More checkpoints of this ledger to check, each with where it came from (a sharded
            ledger's control shard commits to its shards' checkpoints).

        Returns
        -------
        VerifyResult
            ``ok`` and, if not, the first bad seq and the reason.
        """
        return verify_store(
            self.store,
            origin=self.origin,
            canonical=self.canonical_format,
            record_format=self.record_format,
            directory=self.checkpoint_dir if checkpoints is None else checkpoints,
            public_key=self.public_key if public_key is None else public_key,
            deep=deep,
            progress=progress,
            workers=workers,
            also=also,
        )

    def fenced_through(self, receipts: Sequence[Receipt]) -> int | None:
        """The ledger size up to which an append under a fence proved no alias moved.

        Here the last record the append wrote: the fence and the append share one chain.
        """
        return receipts[-1].seq if receipts else None

    # -- checkpoints and proofs -----------------------------------------------------------

    def checkpoint(self, *, reuse: bool = False) -> Checkpoint:
        """Sign the Merkle root of all records, store it, and export it to the directory.

        New records since the last checkpoint made by this object are verified first, and the
        tree must agree with every earlier checkpoint (stored and exported): a checkpoint never
        vouches for a broken chain or a fork. With ``reuse``, a ledger with no record added
        since its last checkpoint returns that checkpoint instead of signing the same tree
        again. See :meth:`TreeHeads.checkpoint`.

        Raises
        ------
        IntegrityError
            If the chain does not verify or contradicts an earlier checkpoint.
        """
        return self.tree.checkpoint(reuse=reuse)

    def checkpoints(self) -> list[Checkpoint]:
        """Return the checkpoints stored in the database, oldest first."""
        return self.store.checkpoints()

    def inclusion_proof(self, record_id: str, *, checkpoint: bool = True) -> dict[str, Any]:
        """Prove that a record is in the ledger under a signed checkpoint (RFC 9162).

        Uses the latest stored checkpoint covering the record; if none does, signs one when
        ``checkpoint`` is true (the default, for services building evidence) and otherwise
        raises :class:`~governance.ledger.errors.NotCovered` (``governance audit prove``).
        See :meth:`TreeHeads.inclusion_proof` for the result's members.

        Raises
        ------
        LedgerError
            If there is no such record (``NotCovered`` if no checkpoint covers it).
        IntegrityError
            If the ledger does not match the checkpoint.
        """
        record = self.get(record_id)
        if record is None:
            raise LedgerError(f"no record with id {record_id}")
        return self.tree.inclusion_proof(record, checkpoint=checkpoint)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> dict[str, Any]:
        """Prove that the ledger at ``new_size`` extends the ledger at ``old_size`` (RFC 9162).

        See :meth:`TreeHeads.consistency_proof`.
        """
        return self.tree.consistency_proof(old_size, new_size)
