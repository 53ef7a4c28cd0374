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

import os
import pickle
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger.canonical import (
    CANONICAL_FORMAT,
    CANONICAL_FORMATS,
    encoder_for,
    utc_now,
)
from governance.ledger.checkpoint import (
    Checkpoint,
    CheckpointDirectory,
    load_or_create_signing_key,
    public_key_bytes,
    sign_checkpoint,
    verify_checkpoint,
)
from governance.ledger.merkle import MerkleTree, verify_consistency, verify_inclusion
from governance.ledger.privacy import (
    ERASED,
    PII_ALG,
    KeyRing,
    decrypt_pii,
    encrypt_pii,
    new_data_key,
)
from governance.ledger.records import (
    ChainBreak,
    ChainWalker,
    Head,
    PendingRecord,
    Receipt,
    Record,
    check_event_type,
    index_columns,
    is_record_id,
    new_record_ids,
    record_hash,
    subject_tag,
)
from governance.ledger.store import SCHEMA_VERSION, ChainSource, LedgerStore, Query

__all__ = [
    "Entry",
    "IntegrityError",
    "Ledger",
    "LedgerError",
    "VerifyResult",
    "open_store",
]

_MAX_LIMIT = 10_000
_PARALLEL_MIN = 200_000
_DEK_CACHE_MAX = 100_000


class _Request:
    """One caller's records waiting in the group commit queue."""

    __slots__ = ("done", "error", "pending", "receipts")

    def __init__(self, pending: list[PendingRecord]) -> None:
        self.pending = pending
        self.receipts: list[Receipt] = []
        self.error: BaseException | None = None
        self.done = False


class _GroupCommit:
    """Merge concurrent appends from several threads into one transaction (group commit).

    A durable commit costs one fsync (about 1.5 ms on this class of disk) whatever it holds.
    The first caller becomes the leader and commits its records; callers arriving meanwhile
    queue up, and the next leader commits all of them together, so N concurrent callers share
    one fsync. Each caller's records stay contiguous and all-or-nothing; if a combined commit
    fails, each caller's records are retried alone so one bad batch cannot fail the others.
    """

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._busy = False

    def append(self, pending: list[PendingRecord]) -> list[Receipt]:
        request = _Request(pending)
        with self._cond:
            self._queue.append(request)
            while self._busy and not request.done:
                self._cond.wait()
            if not request.done:
                self._busy = True
                batch, self._queue = self._queue, []
        if not request.done:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
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
                receipts = self._store.append(combined)
            except Exception:
                for request in batch:
                    self._commit_one(request)
                return
            start = 0
            for request in batch:
                request.receipts = receipts[start : start + len(request.pending)]
                request.done = True
                start += len(request.pending)
        except BaseException as exc:  # e.g. KeyboardInterrupt: fail whoever is left waiting
            for request in batch:
                if not request.done:
                    request.error, request.done = exc, True
            raise

    def _commit_one(self, request: _Request) -> None:
        try:
            request.receipts = self._store.append(request.pending)
        except Exception as exc:
            request.error = exc
        request.done = True


def _walk_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Walk the chain from ``job["start"]`` (in a helper process); return the state or a break."""
    walker = ChainWalker(
        job["start"], job["prev"], job["prev_ts"], deep=job["deep"], canonical=job["canonical"]
    )
    leaves: list[bytes] = []
    wanted = job["leaves"]
    try:
        for rows in job["source"].rows(job["start"], deep=job["deep"]):
            walker.feed(rows, leaves if walker.next_seq < wanted else None)
    except ChainBreak as brk:
        return {"break": (brk.seq, brk.reason), "next_seq": walker.next_seq}
    return {
        "break": None,
        "next_seq": walker.next_seq,
        "leaves": b"".join(leaves[: max(0, wanted - job["start"])]),
    }


def verify_helper_main() -> None:
    """Entry point of a verification helper process: a pickled job on stdin, result on stdout."""
    job = pickle.load(sys.stdin.buffer)
    result = _walk_job(job)
    pickle.dump(result, sys.stdout.buffer)
    sys.stdout.flush()


class _VerifyHelper:
    """A helper process walking ``[start, end)`` of the chain while this one walks the rest.

    It starts from the stored hash and timestamp of record ``start - 1``; the first half's walk
    must end exactly there (same hash), which ties the halves into one verified chain.
    """

    def __init__(
        self,
        source: ChainSource,
        start: int,
        prev: bytes,
        prev_ts: bytes,
        deep: bool,
        target: int,
        canonical: str,
    ) -> None:
        self.start = start
        self.prev, self.prev_ts = prev, prev_ts
        self._job: dict[str, Any] = {
            "source": source,
            "start": start,
            "prev": prev,
            "prev_ts": prev_ts,
            "deep": deep,
            "leaves": target,
            "canonical": canonical,
        }
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from governance.ledger.ledger import verify_helper_main; verify_helper_main()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        stdin = self._proc.stdin
        assert stdin is not None
        self._proc.stdin = None  # the job is small (well under a pipe buffer): send it now
        try:
            pickle.dump(self._job, stdin)
            stdin.close()
        except OSError:
            self.close()
            raise

    def finish(self, walker: ChainWalker, tree: MerkleTree, target: int) -> ChainWalker:
        """Join the helper's half to ``walker`` (which has walked ``[0, start)``)."""
        if walker.prev != self.prev or walker.prev_ts != self.prev_ts:
            raise ChainBreak(self.start - 1, "inconsistent record (changed during verification)")
        out, err = self._proc.communicate()
        try:
            if self._proc.returncode != 0:
                raise ValueError(err.decode(errors="replace")[-500:])
            result = pickle.loads(out)
        except Exception:  # the helper failed: walk its half here instead
            rest = ChainWalker(
                self.start, self.prev, self.prev_ts, deep=walker.deep, canonical=walker.canonical
            )
            leaves: list[bytes] = []
            for rows in self._job["source"].rows(self.start, deep=walker.deep):
                leaves.clear()
                rest.feed(rows, leaves if rest.next_seq < target else None)
                tree.extend(leaves[: max(0, target - tree.size)])
            return rest
        if result["break"] is not None:
            seq, reason = result["break"]
            walker.next_seq = result["next_seq"]
            raise ChainBreak(seq, reason)
        blob: bytes = result["leaves"]
        tree.extend([blob[i : i + 32] for i in range(0, len(blob), 32)])
        return ChainWalker(result["next_seq"], deep=walker.deep, canonical=walker.canonical)

    def close(self) -> None:
        """Stop the helper if it still runs."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


class LedgerError(Exception):
    """The ledger cannot do what was asked (wrong keys, unknown record, bad arguments...)."""


class IntegrityError(LedgerError):
    """Stored data does not verify (tampering or corruption); the message says where."""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`Ledger.verify`.

    Attributes
    ----------
    ok
        Whether every check passed.
    records
        Number of records that verified (all of them when ``ok``).
    first_bad
        The first seq whose integrity cannot be established, or ``None``: for a changed record
        its seq, for deleted records the first missing seq, for a truncation the first seq a
        checkpoint covers but the ledger lacks, for a rewritten prefix the end of the last
        checkpoint that still matches (or 0). ``None`` for a bad checkpoint signature.
    reason
        What is wrong, in words (starts with ``TRUNCATION`` for a truncated ledger).
    checkpoints
        Number of checkpoints (stored and exported, de-duplicated) checked.
    """

    ok: bool
    records: int
    first_bad: int | None = None
    reason: str | None = None
    checkpoints: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Entry:
    """One record for :meth:`Ledger.append_many`.

    Attributes
    ----------
    type
        A registered event type (``decision``, ``outcome``, ...).
    body
        The event body (a JSON object).
    subject_id
        The subject's identifier; stored only as its HMAC subject key.
    pii
        Personal data to store encrypted under the subject's key (needs ``subject_id``).
    id
        A record id to use instead of a new one (a lowercase UUID).
    """

    type: str
    body: Mapping[str, Any]
    subject_id: str | None = None
    pii: Mapping[str, Any] | None = None
    id: str | None = None


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
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def open_store(url: str | PathLike[str]) -> LedgerStore:
    """Open the store a URL names.

    Parameters
    ----------
    url
        ``sqlite:///abs/path.db`` (everything after ``sqlite://`` is the path, so three slashes
        give an absolute path; options ``?synchronous=normal|full|extra`` and ``timeout=``
        seconds), a plain filesystem path (SQLite), or ``postgresql://...`` /
        ``postgres://...`` with an optional ``schema=NAME`` query parameter (default
        ``governance_ledger``).

    Returns
    -------
    LedgerStore
        The store, with its schema created if missing.
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        from governance.ledger.postgres_store import PostgresStore

        return PostgresStore(text)
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
        self.origin = f"governance/ledger/{self.ledger_id}"
        self.public_key: Ed25519PublicKey = self._signing_key.public_key()
        self.checkpoint_dir = CheckpointDirectory(self.home / "checkpoints" / self.ledger_id)
        self._tree = MerkleTree()
        self._walker = ChainWalker()
        self._tree_lock = threading.Lock()
        self._dek_cache: dict[str, bytes] = {}
        self._writer = _GroupCommit(store)

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
    def open(cls, url: str | PathLike[str], *, home: Path | str) -> Ledger:
        """Open (creating if needed) the ledger at ``url`` with state in ``home``.

        Parameters
        ----------
        url
            See :func:`open_store`.
        home
            State directory (keys and exported checkpoints); created if missing. Opening an
            existing ledger requires the keys it was created with.

        Raises
        ------
        LedgerError
            If ``home`` holds other keys than the ledger was created with.
        """
        store = open_store(url)
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

    def append_many(self, items: Iterable[Entry | Mapping[str, Any]]) -> list[Receipt]:
        """Append records atomically (one transaction) and durably, in order.

        Parameters
        ----------
        items
            :class:`Entry` objects or mappings with the same keys.

        Returns
        -------
        list[Receipt]
            One per item, in order; all or nothing is written.
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
                pending.append(self._prepare(entry, fresh, data_keys, seen_ids))
            except (ValueError, TypeError) as exc:
                if len(entries) > 1:
                    exc.add_note(f"in item {n} of the batch; nothing was written")
                raise
        return self._writer.append(pending)

    def _prepare(
        self,
        entry: Entry,
        fresh: Iterator[str],
        data_keys: Mapping[str, tuple[str, bytes]],
        seen_ids: set[str],
    ) -> PendingRecord:
        type_ = check_event_type(entry.type)
        body = entry.body
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
            sk = self._keys.subject_key(entry.subject_id)
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
        data = self._encode(body)
        subject_key, model_name, model_version, ref = index_columns(type_, body)
        return PendingRecord(
            rid,
            type_,
            data,
            subject_key,
            subject_tag(subject_key),
            model_name,
            model_version,
            ref,
        )

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

    def forget(self, subject_id: str, *, reason: str | None = None) -> Receipt:
        """Erase a subject's PII (GDPR art. 17) by destroying their data keys.

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
        """
        if version is not None and model is None:
            raise LedgerError("a version filter needs the model name")
        if not 0 < limit <= _MAX_LIMIT or offset < 0:
            raise LedgerError(f"limit must be in 1..{_MAX_LIMIT} and offset >= 0")
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

    def _gather_checkpoints(
        self, directory: CheckpointDirectory | None
    ) -> tuple[list[tuple[str, Checkpoint]], str | None]:
        """Return ``[(source, checkpoint)]`` sorted by size, de-duplicated; or a problem."""
        found: list[tuple[str, Checkpoint]] = []
        try:
            found += [("stored", cp) for cp in self.store.checkpoints()]
        except ValueError as exc:
            return [], f"a checkpoint stored in the database is malformed: {exc}"
        if directory is not None:
            try:
                found += [(f"exported to {directory.path}", cp) for cp in directory.all()]
            except ValueError as exc:
                return [], f"an exported checkpoint is malformed: {exc}"
        unique: dict[tuple[Any, ...], tuple[str, Checkpoint]] = {}
        for source, cp in found:
            unique.setdefault(
                (cp.origin, cp.size, cp.root, cp.timestamp, cp.signature), (source, cp)
            )
        return sorted(unique.values(), key=lambda item: (item[1].size, item[1].timestamp)), None

    def verify(
        self,
        *,
        checkpoints: CheckpointDirectory | None = None,
        public_key: Ed25519PublicKey | bytes | None = None,
        deep: bool = False,
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
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

        Returns
        -------
        VerifyResult
            ``ok`` and, if not, the first bad seq and the reason.
        """
        directory = self.checkpoint_dir if checkpoints is None else checkpoints
        key = self.public_key if public_key is None else public_key
        cps, problem = self._gather_checkpoints(directory)
        if problem is not None:
            return VerifyResult(False, 0, None, problem, 0)
        target = max((cp.size for _, cp in cps), default=0)
        total = self.store.head().size
        tree = MerkleTree()
        helper = self._start_helper(total, deep, target, workers)
        walker = ChainWalker(deep=deep, canonical=self.canonical_format)
        try:
            self._walk(
                walker, tree, target, deep, None if helper is None else helper.start, progress
            )
            if helper is not None:
                walker = helper.finish(walker, tree, target)
                if progress is not None:
                    progress(walker.next_seq, max(total, walker.next_seq))
        except ChainBreak as brk:
            return VerifyResult(False, walker.next_seq, brk.seq, brk.reason, 0)
        finally:
            if helper is not None:
                helper.close()
        records = walker.next_seq
        good: list[int] = [0]
        for source, cp in cps:
            what = f"checkpoint of size {cp.size} signed at {cp.timestamp} ({source})"
            if cp.origin != self.origin:
                return VerifyResult(
                    False, records, None, f"{what} belongs to another ledger ({cp.origin})", 0
                )
            if not verify_checkpoint(cp, key):
                return VerifyResult(
                    False, records, None, f"{what} has an invalid signature for this key", 0
                )
            if cp.size > records:
                missing = cp.size - records
                return VerifyResult(
                    False,
                    records,
                    records,
                    f"TRUNCATION: {what} covers {cp.size} records but the ledger holds only"
                    f" {records}: seq {records}..{cp.size - 1} ({missing} records) were removed",
                    0,
                )
            if tree.root(cp.size) != cp.root:
                lower = max(size for size in good if size <= cp.size)
                return VerifyResult(
                    False,
                    records,
                    lower,
                    f"{what}: Merkle root mismatch: records in seq {lower}..{cp.size - 1} were"
                    " rewritten after it was signed (the hash chain was recomputed)",
                    0,
                )
            good.append(cp.size)
        return VerifyResult(True, records, None, None, len(cps))

    def _walk(
        self,
        walker: ChainWalker,
        tree: MerkleTree,
        target: int,
        deep: bool,
        stop: int | None,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Walk ``[walker.next_seq, stop)``, growing ``tree`` up to ``target`` leaves."""
        leaves: list[bytes] = []
        total = self.store.head().size if progress is not None else 0
        for rows in self.store.iter_chain(walker.next_seq, stop, deep=deep):
            if tree.size < target:
                leaves.clear()
                walker.feed(rows, leaves)
                tree.extend(leaves[: target - tree.size])
            else:
                walker.feed(rows)
            if progress is not None:
                progress(walker.next_seq, max(total, walker.next_seq))
        if stop is not None and walker.next_seq < stop:
            raise ChainBreak(
                walker.next_seq, f"record seq {walker.next_seq} is missing (records deleted)"
            )

    def _start_helper(
        self, total: int, deep: bool, target: int, workers: int | None
    ) -> _VerifyHelper | None:
        """Start a helper process on the second half of the chain, if worth it."""
        if workers is None:
            workers = 2 if (os.cpu_count() or 1) >= 2 and total >= _PARALLEL_MIN else 1
        if workers < 2 or total < 2:
            return None
        start = total // 2
        boundary = self.store.get_by_seq(start - 1)
        boundary_ts = self.store.ts_from(start - 1)
        if boundary is None or boundary_ts is None:
            return None  # a record is missing there: the sequential walk will say which
        try:
            return _VerifyHelper(
                self.store.chain_source(),
                start,
                bytes(boundary[1]),
                boundary_ts.encode(),
                deep,
                target,
                self.canonical_format,
            )
        except OSError:
            return None

    # -- checkpoints and proofs -----------------------------------------------------------

    def _sync_tree(self) -> MerkleTree:
        """Extend the cached Merkle tree over new records, verifying them; return it.

        Call with ``_tree_lock`` held.

        Raises
        ------
        IntegrityError
            If a record does not verify.
        """
        tree, walker = self._tree, self._walker
        leaves: list[bytes] = []
        try:
            for rows in self.store.iter_chain(start=tree.size):
                leaves.clear()
                walker.feed(rows, leaves)
                tree.extend(leaves)
        except ChainBreak as brk:
            raise IntegrityError(f"seq {brk.seq}: {brk.reason}") from None
        return tree

    def checkpoint(self) -> Checkpoint:
        """Sign the Merkle root of all records, store it, and export it to the directory.

        New records since the last checkpoint made by this object are verified first, and the
        tree must agree with every earlier checkpoint (stored and exported): a checkpoint never
        vouches for a broken chain or a fork.

        Returns
        -------
        Checkpoint
            The signed tree head.

        Raises
        ------
        IntegrityError
            If the chain does not verify or contradicts an earlier checkpoint.
        """
        with self._tree_lock:
            tree = self._sync_tree()
            self._check_extends(tree)
            cp = sign_checkpoint(
                self._signing_key, origin=self.origin, size=tree.size, root=tree.root()
            )
        self.checkpoint_dir.write(cp)  # the copy outside the database first
        self.store.add_checkpoint(cp)
        return cp

    def _check_extends(self, tree: MerkleTree) -> None:
        """Raise unless the tree agrees with every earlier checkpoint (never sign a fork)."""
        try:
            earlier = self.store.checkpoints() + self.checkpoint_dir.all()
        except ValueError as exc:
            raise IntegrityError(f"refusing to sign: a checkpoint is malformed: {exc}") from exc
        for cp in earlier:
            if cp.origin != self.origin or not verify_checkpoint(cp, self.public_key):
                raise IntegrityError(
                    f"refusing to sign: the checkpoint of size {cp.size} at {cp.timestamp}"
                    " is not a valid checkpoint of this ledger; run verify"
                )
            if cp.size > tree.size:
                raise IntegrityError(
                    f"refusing to sign: TRUNCATION: a checkpoint covers {cp.size} records but"
                    f" the ledger holds {tree.size}; run verify"
                )
            if tree.root(cp.size) != cp.root:
                raise IntegrityError(
                    f"refusing to sign: the ledger no longer matches its checkpoint of size"
                    f" {cp.size} (records before it were rewritten); run verify"
                )

    def checkpoints(self) -> list[Checkpoint]:
        """Return the checkpoints stored in the database, oldest first."""
        return self.store.checkpoints()

    def _checkpoint_covering(self, seq: int) -> Checkpoint:
        for cp in reversed(self.store.checkpoints()):
            if (
                cp.size > seq
                and cp.origin == self.origin
                and verify_checkpoint(cp, self.public_key)
            ):
                return cp
        return self.checkpoint()

    def inclusion_proof(self, record_id: str) -> dict[str, Any]:
        """Prove that a record is in the ledger under a signed checkpoint (RFC 9162).

        Uses the latest stored checkpoint that covers the record, making a new checkpoint if
        none does.

        Returns
        -------
        dict
            ``id``, ``seq`` (= ``leaf_index``), ``leaf_hash``, ``record`` (the canonical record
            text, whose leaf hash is ``leaf_hash``), ``tree_size``, ``root``, ``proof`` (hex
            list), ``checkpoint`` (its JSON) and ``verified`` (the proof checks against the
            checkpoint root and the checkpoint's signature against this ledger's key).

        Raises
        ------
        LedgerError
            If there is no such record.
        IntegrityError
            If the ledger does not match the checkpoint.
        """
        record = self.get(record_id)
        if record is None:
            raise LedgerError(f"no record with id {record_id}")
        cp = self._checkpoint_covering(record.seq)
        with self._tree_lock:
            tree = self._sync_tree()
            if tree.root(cp.size) != cp.root:
                raise IntegrityError(
                    f"the ledger no longer matches its checkpoint of size {cp.size}; run verify"
                )
            proof = tree.inclusion_proof(record.seq, cp.size)
        leaf = bytes.fromhex(record.hash)
        verified = verify_inclusion(leaf, record.seq, cp.size, proof, cp.root) and (
            verify_checkpoint(cp, self.public_key)
        )
        return {
            "id": record.id,
            "seq": record.seq,
            "leaf_index": record.seq,
            "leaf_hash": record.hash,
            "record": record.data.decode("utf-8"),
            "tree_size": cp.size,
            "root": cp.root.hex(),
            "proof": [p.hex() for p in proof],
            "checkpoint": cp.to_json(),
            "verified": verified,
        }

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> dict[str, Any]:
        """Prove that the ledger at ``new_size`` extends the ledger at ``old_size`` (RFC 9162).

        Parameters
        ----------
        old_size
            The earlier size, ``1 <= old_size <= new_size``.
        new_size
            The later size; defaults to the current size.

        Returns
        -------
        dict
            ``old_size``, ``new_size``, ``old_root``, ``new_root``, ``proof`` (hex list),
            ``old_checkpoint`` / ``new_checkpoint`` (stored checkpoints of exactly those sizes,
            or ``None``) and ``verified``.

        Raises
        ------
        LedgerError
            If the sizes are out of range.
        IntegrityError
            If the chain does not verify or contradicts an earlier checkpoint.
        """
        with self._tree_lock:
            tree = self._sync_tree()
            size = tree.size
            new = size if new_size is None else new_size
            if not 1 <= old_size <= new <= size:
                raise LedgerError(
                    f"need 1 <= old_size <= new_size <= {size}, got {old_size} and {new}"
                )
            proof = tree.consistency_proof(old_size, new)
            old_root, new_root = tree.root(old_size), tree.root(new)
        stored = {(cp.size, cp.root): cp for cp in self.store.checkpoints()}
        old_cp, new_cp = stored.get((old_size, old_root)), stored.get((new, new_root))
        return {
            "old_size": old_size,
            "new_size": new,
            "old_root": old_root.hex(),
            "new_root": new_root.hex(),
            "proof": [p.hex() for p in proof],
            "old_checkpoint": None if old_cp is None else old_cp.to_json(),
            "new_checkpoint": None if new_cp is None else new_cp.to_json(),
            "verified": verify_consistency(old_size, new, old_root, new_root, proof),
        }
