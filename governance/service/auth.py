"""API keys for the HTTP service: who is calling, and in which role.

Keys live in one JSON file under the state directory, ``<home>/keys/api_keys.json`` (mode
0600), which stores for each key its name, role, creation time and the SHA-256 of the key,
never the key itself: the key is shown once, by :meth:`KeyStore.create`. A request presents
its key as ``Authorization: Bearer gov_...``; the key's *name* is what the ledger records as
the decision's caller. A key belongs to a named person or system (``person``): that person is
recorded as the approver of a promotion and as who recorded an outcome or a review.

Roles
-----
``scorer``
    The calling system: creates decisions (one, a batch, or MLflow ``/invocations``), records
    outcomes and files contests on behalf of applicants (GDPR art. 22(3)).
``auditor``
    Reads: a decision, its trace and inclusion proof, searches, ledger verification.
``approver``
    A human reviewer: records reviews and overrides (and contests).
``admin``
    Everything, including signing ledger checkpoints.

The file is re-read when it changes (new or revoked keys take effect on the next request,
without restarting the server). Writers hold an exclusive lock and replace the file
atomically, so concurrent ``create`` calls from several processes never lose a key.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

ROLES: tuple[str, ...] = ("scorer", "auditor", "approver", "admin")
KEY_PREFIX = "gov_"
FILE_FORMAT = "governance.api_keys/1"
KEYS_FILE = "api_keys.json"
MAX_TOKEN_LENGTH = 512

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}")

ERR_ROLE = "unknown role {role!r}: use one of {roles}"
ERR_NAME = (
    "invalid key name {name!r}: use 1-100 letters, digits and . _ @ : - (starting with a letter"
    " or digit)"
)
ERR_PERSON = "invalid person {person!r}: up to 200 printable characters (no control characters)"
ERR_DUPLICATE = "an API key named {name!r} already exists; revoke it first"
ERR_MALFORMED = "API key file {path} is malformed ({problem}); fix or remove it"


class KeyStoreError(ValueError):
    """The key file cannot be used (malformed), or a request to change it is invalid."""


class Principal(NamedTuple):
    """An authenticated caller: the key's name, its role and the person (or system) holding it.

    ``person`` is who a model-risk reviewer holds accountable: the approver of a promotion,
    the recorder of an outcome or review. It is the key's name when the key was created
    without one.
    """

    name: str
    role: str
    person: str = ""

    @property
    def who(self) -> str:
        """The person holding the key (its name if none was given)."""
        return self.person or self.name


@dataclass(frozen=True)
class ApiKey:
    """One stored key: never the key itself, only its SHA-256.

    Attributes
    ----------
    name
        Who holds the key (recorded in the ledger as caller / reviewer).
    role
        One of :data:`ROLES`.
    sha256
        Hex SHA-256 of the key string.
    created
        UTC creation time, ISO 8601 with ``Z``.
    person
        The named person or system holding it (``--person "J. Rivera"``); empty: the name.
    """

    name: str
    role: str
    sha256: str
    created: str
    person: str = ""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KeyStore:
    """API keys stored as SHA-256 hashes in a JSON file (mode 0600).

    Parameters
    ----------
    path
        The key file, normally ``<home>/keys/api_keys.json`` (see :meth:`for_home`). It need
        not exist: a missing file means no keys (every request is refused).

    Notes
    -----
    :meth:`authenticate` costs one ``stat`` and one SHA-256 per call; the parsed file is cached
    and re-read only when its inode, size or modification time changes.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: tuple[ApiKey, ...] = ()

    @classmethod
    def for_home(cls, home: Path | str) -> KeyStore:
        """Return the key store of a state directory (``<home>/keys/api_keys.json``)."""
        return cls(Path(home) / "keys" / KEYS_FILE)

    # -- reading ----------------------------------------------------------------------------

    def _parse(self, data: bytes) -> tuple[ApiKey, ...]:
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
                raise ValueError(f"expected a {FILE_FORMAT} document")
            keys = tuple(
                ApiKey(
                    str(k["name"]),
                    str(k["role"]),
                    str(k["sha256"]),
                    str(k["created"]),
                    str(k.get("person") or ""),
                )
                for k in doc["keys"]
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(ERR_MALFORMED.format(path=self.path, problem=exc)) from None
        for k in keys:
            if k.role not in ROLES or len(k.sha256) != 64:
                problem = f"key {k.name!r} has role {k.role!r} or a bad hash"
                raise KeyStoreError(ERR_MALFORMED.format(path=self.path, problem=problem))
        return keys

    def _current(self) -> tuple[ApiKey, ...]:
        """The keys, re-read if the file changed since last time."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            with self._lock:
                self._stamp, self._keys = None, ()
            return ()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return self._keys
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                self._stamp, self._keys = None, ()
                return ()
            with os.fdopen(fd, "rb") as handle:
                fst = os.fstat(handle.fileno())
                data = handle.read()
            self._keys = self._parse(data)
            self._stamp = (fst.st_ino, fst.st_size, fst.st_mtime_ns)
            return self._keys

    def entries(self) -> list[ApiKey]:
        """Return the stored keys (names, roles, hashes, creation times)."""
        return list(self._current())

    def authenticate(self, token: str | None) -> Principal | None:
        """Return the ``(name, role)`` of the key ``token``, or ``None`` if it is not valid.

        Every stored hash is compared in constant time (no early exit), so the time taken does
        not depend on which key, if any, matched.

        Raises
        ------
        KeyStoreError
            If the key file is malformed.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        digest = _digest(token)
        found: ApiKey | None = None
        for key in self._current():
            if hmac.compare_digest(key.sha256, digest):
                found = key
        return None if found is None else Principal(found.name, found.role, found.person)

    # -- writing ----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[list[ApiKey]]:
        """Hold the writer lock; yield the current keys; write them back atomically."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                keys: list[ApiKey] = []
            else:
                keys = list(self._parse(data))
            yield keys
            self._write(keys)
        finally:
            os.close(lock_fd)  # releases the flock

    def _write(self, keys: list[ApiKey]) -> None:
        doc: dict[str, Any] = {"format": FILE_FORMAT, "keys": [asdict(k) for k in keys]}
        data = (json.dumps(doc, indent=2) + "\n").encode()
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def create(self, name: str, role: str, *, person: str = "") -> str:
        """Create a key for ``name`` with ``role`` and return it (the only time it is shown).

        Parameters
        ----------
        name
            The key's name: recorded as the caller of its decisions. Unique in the store.
        role
            One of ``scorer``, ``auditor``, ``approver``, ``admin``.
        person
            The person or system holding it, in words (``"J. Rivera"``): recorded as the
            approver of its promotions and the recorder of its outcomes and reviews.

        Returns
        -------
        str
            The new key, ``gov_`` followed by 43 URL-safe characters (256 random bits).

        Raises
        ------
        KeyStoreError
            If the role is unknown, the name invalid or already taken.
        """
        if role not in ROLES:
            raise KeyStoreError(ERR_ROLE.format(role=role, roles=", ".join(ROLES)))
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise KeyStoreError(ERR_NAME.format(name=name))
        person = person.strip() if isinstance(person, str) else person
        if not isinstance(person, str) or len(person) > 200 or not person.isprintable():
            raise KeyStoreError(ERR_PERSON.format(person=person))
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._locked() as keys:
            if any(k.name == name for k in keys):
                raise KeyStoreError(ERR_DUPLICATE.format(name=name))
            keys.append(ApiKey(name, role, _digest(token), _utc_now(), person))
        return token

    def revoke(self, name: str) -> bool:
        """Remove the key named ``name``; return whether there was one."""
        with self._locked() as keys:
            before = len(keys)
            keys[:] = [k for k in keys if k.name != name]
            return len(keys) != before
