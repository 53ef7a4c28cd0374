"""A witness's home directory: its key, the logs it witnesses, its state and its evidence.

Layout (created by :meth:`WitnessHome.init`)::

    witness.json                        {"format", "name"}
    key.pem                             Ed25519 private key, PKCS#8 PEM, mode 0600
    witness.vkey                        its verifier key (cosignature/v1, type 0x04), one line
    logs.json                           the logs it witnesses: [{"origin", "vkey"}], explicit
    state/<sha256(origin)>.note         the latest checkpoint it cosigned for that log (the
                                        log's signature and its cosignature)
    evidence/<sha256(origin)>/<sha256(submitted)>/
        previous.note  submitted.note  reason.txt      a fork: a checkpoint the log signed for
                                        the size the witness cosigned, with another root
    lock                                serialises writers across processes (flock)

Every file is replaced atomically (written to a temporary file, fsynced, renamed, directory
fsynced), so a witness killed at any moment leaves either the old or the new state, never a
torn one. The state is written *before* a cosignature leaves the process: a witness can never
have handed out a cosignature for a tree larger than its stored state, and therefore never
cosigns a smaller (rolled back) one after a restart.

Logs are configured explicitly (origin and the log's verifier key), never trusted on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.ledger.checkpoint import check_origin
from governance.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Signer,
    Verifier,
    is_valid_key_name,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)

__all__ = [
    "ERR_BAD_HOME",
    "ERR_EXISTS",
    "ERR_LOG_CONFLICT",
    "ERR_NOT_A_LOG_KEY",
    "HOME_FORMAT",
    "Evidence",
    "WitnessHome",
    "origin_hash",
]

HOME_FORMAT = "governance.witness/v1"
"""The ``format`` member of ``witness.json``."""

ERR_BAD_HOME = "{path} is not a witness home ({problem}); create one with `governance witness init`"
ERR_EXISTS = "{path} already holds a witness; refusing to replace its key"
ERR_NOT_A_LOG_KEY = "{vkey!r} is not a log's Ed25519 verifier key (type 0x01): {problem}"
ERR_LOG_CONFLICT = "this witness already trusts another key for origin {origin!r}"
ERR_BAD_NAME = "invalid witness name {name!r}: non-empty, no spaces, no '+'"


def origin_hash(origin: str) -> str:
    """Return the lowercase hex SHA-256 of an origin (the witness's path segment for a log)."""
    return hashlib.sha256(origin.encode()).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644, *, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` atomically and durably; with ``exclusive``, never replace.

    Returns ``False`` (writing nothing) if ``exclusive`` and the file exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp_name, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp_name, path)
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


@dataclass(frozen=True)
class Evidence:
    """A refused checkpoint the witness kept: proof that the log signed a fork.

    Attributes
    ----------
    origin
        The log.
    directory
        Where the files are.
    previous
        The latest checkpoint the witness had cosigned (signed note), or ``None``.
    submitted
        The refused checkpoint (signed note, as submitted).
    reason
        Why it was refused.
    """

    origin: str
    directory: Path
    previous: str | None
    submitted: str
    reason: str


class WitnessHome:
    """The witness's state directory (see the module docstring).

    Parameters
    ----------
    path
        An existing witness home (made by :meth:`init`).

    Raises
    ------
    ValueError
        If ``path`` is not a witness home (:data:`ERR_BAD_HOME`).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser().absolute()
        try:
            meta = json.loads((self.path / "witness.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(ERR_BAD_HOME.format(path=self.path, problem=exc)) from None
        if not isinstance(meta, dict) or meta.get("format") != HOME_FORMAT:
            raise ValueError(ERR_BAD_HOME.format(path=self.path, problem="unknown format"))
        self.name: str = meta.get("name", "")
        if not is_valid_key_name(self.name):
            raise ValueError(ERR_BAD_HOME.format(path=self.path, problem="bad witness name"))
        key_path = self.path / "key.pem"
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(ERR_BAD_HOME.format(path=self.path, problem=exc)) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(ERR_BAD_HOME.format(path=self.path, problem="key is not Ed25519"))
        self.signer = Signer(self.name, ALG_COSIGNATURE_V1, key)
        self._thread_lock = threading.Lock()

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def init(cls, path: Path | str, name: str | None = None) -> WitnessHome:
        """Create a witness home with a new Ed25519 key.

        Parameters
        ----------
        path
            The directory (created, mode 0700).
        name
            The witness's name (its cosignature key name); default
            ``governance-witness/<random>``.

        Raises
        ------
        ValueError
            If ``path`` already holds a witness (:data:`ERR_EXISTS`) or the name is invalid.
        """
        path = Path(path).expanduser().absolute()
        name = name or f"governance-witness/{uuid.uuid4().hex[:12]}"
        if not is_valid_key_name(name):
            raise ValueError(ERR_BAD_NAME.format(name=name))
        if (path / "witness.json").exists():
            raise ValueError(ERR_EXISTS.format(path=path))
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if not _write_atomic(path / "key.pem", pem, 0o600, exclusive=True):
            raise ValueError(ERR_EXISTS.format(path=path))
        vkey = Signer(name, ALG_COSIGNATURE_V1, key).verifier().vkey
        _write_atomic(path / "witness.vkey", (vkey + "\n").encode())
        _write_atomic(path / "logs.json", b'{"logs": []}\n')
        meta = {"format": HOME_FORMAT, "name": name}
        _write_atomic(path / "witness.json", (json.dumps(meta, indent=2) + "\n").encode())
        return cls(path)

    @property
    def verifier(self) -> Verifier:
        """The witness's public verifier (cosignature/v1)."""
        return self.signer.verifier()

    @property
    def vkey(self) -> str:
        """The witness's verifier key string."""
        return self.verifier.vkey

    # -- locking --------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the witness's write lock (threads of this process and other processes)."""
        with self._thread_lock:
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    # -- logs -----------------------------------------------------------------------------

    def logs(self) -> dict[str, Verifier]:
        """Return ``{origin: log verifier}`` for the logs this witness witnesses."""
        try:
            doc = json.loads((self.path / "logs.json").read_text(encoding="utf-8"))
            return {
                entry["origin"]: parse_verifier_key(entry["vkey"]) for entry in doc.get("logs", [])
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(ERR_BAD_HOME.format(path=self.path, problem=exc)) from None

    def add_log(self, vkey: str, origin: str | None = None) -> str:
        """Trust a log: its checkpoints under ``origin`` are signed by ``vkey``.

        Parameters
        ----------
        vkey
            The log's verifier key (Ed25519, type 0x01).
        origin
            The checkpoint origin; defaults to the key's name (for the ledger they are equal).

        Returns
        -------
        str
            The origin.

        Raises
        ------
        ValueError
            If ``vkey`` is not an Ed25519 log key (:data:`ERR_NOT_A_LOG_KEY`), ``origin`` cannot
            name a log (a space, ``+`` or a control character: ``ERR_BAD_ORIGIN``) or another
            key is already trusted for that origin (:data:`ERR_LOG_CONFLICT`).
        """
        try:
            verifier = parse_verifier_key(vkey)
        except ValueError as exc:
            raise ValueError(ERR_NOT_A_LOG_KEY.format(vkey=vkey, problem=exc)) from None
        if verifier.alg != ALG_ED25519:
            raise ValueError(ERR_NOT_A_LOG_KEY.format(vkey=vkey, problem="wrong signature type"))
        origin = check_origin(origin or verifier.name)
        with self.locked():
            logs = self.logs()
            if origin in logs:
                if logs[origin] != verifier:
                    raise ValueError(ERR_LOG_CONFLICT.format(origin=origin))
                return origin
            logs[origin] = verifier
            entries = [{"origin": o, "vkey": v.vkey} for o, v in sorted(logs.items())]
            data = json.dumps({"logs": entries}, indent=2) + "\n"
            _write_atomic(self.path / "logs.json", data.encode())
        return origin

    # -- state ----------------------------------------------------------------------------

    def _state_path(self, origin: str) -> Path:
        return self.path / "state" / f"{origin_hash(origin)}.note"

    def latest(self, origin: str) -> str | None:
        """Return the latest checkpoint cosigned for ``origin`` (a signed note), or ``None``."""
        try:
            return self._state_path(origin).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def latest_by_hash(self, digest: str) -> str | None:
        """Like :meth:`latest`, by the origin's SHA-256 (hex, lowercase)."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None
        try:
            return (self.path / "state" / f"{digest}.note").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def commit(self, origin: str, note: str) -> None:
        """Durably replace the latest cosigned checkpoint of ``origin`` (call while locked)."""
        _write_atomic(self._state_path(origin), note.encode())

    # -- evidence -------------------------------------------------------------------------

    def keep_evidence(self, origin: str, previous: str | None, submitted: str, reason: str) -> Path:
        """Keep a refused checkpoint with the one it conflicts with (idempotent).

        Only for what the log alone could have signed (a fork): anything a stranger can submit
        must not end up here.

        Returns
        -------
        Path
            The evidence directory (named by the submitted note's SHA-256).
        """
        digest = hashlib.sha256(submitted.encode()).hexdigest()
        directory = self.path / "evidence" / origin_hash(origin) / digest
        if (directory / "reason.txt").exists():
            return directory
        _write_atomic(directory / "submitted.note", submitted.encode())
        if previous is not None:
            _write_atomic(directory / "previous.note", previous.encode())
        _write_atomic(directory / "origin.txt", (origin + "\n").encode())
        _write_atomic(directory / "reason.txt", (reason + "\n").encode())
        return directory

    def evidence(self) -> list[Evidence]:
        """Return every refused checkpoint kept, oldest first."""
        root = self.path / "evidence"
        found: list[tuple[float, Evidence]] = []
        if not root.is_dir():
            return []
        for directory in root.glob("*/*"):
            reason = directory / "reason.txt"
            if not reason.exists():
                continue  # interrupted while being written: reason.txt comes last
            previous = directory / "previous.note"
            item = Evidence(
                origin=(directory / "origin.txt").read_text(encoding="utf-8").rstrip("\n"),
                directory=directory,
                previous=previous.read_text(encoding="utf-8") if previous.exists() else None,
                submitted=(directory / "submitted.note").read_text(encoding="utf-8"),
                reason=reason.read_text(encoding="utf-8").rstrip("\n"),
            )
            found.append((reason.stat().st_mtime, item))
        return [item for _, item in sorted(found, key=lambda pair: pair[0])]

    def proves_fork(self, item: Evidence) -> bool | None:
        """Whether ``item`` proves a fork: both notes signed by the log's trusted key, for one
        tree size, with two roots. ``None`` if the log is no longer trusted here (no key to
        check with).

        Everything kept since the witness kept forks only proves one. Evidence kept by an older
        witness, which also kept rollbacks and bad proofs, may not: anyone can submit those
        with the log's published checkpoints.
        """
        log = self.logs().get(item.origin)
        if log is None:
            return None
        if item.previous is None:
            return False
        try:
            kept = [
                parse_checkpoint(open_note(n, [log]).text) for n in (item.previous, item.submitted)
            ]
        except ValueError:  # NoteError and UnverifiedNoteError: not both signed by the log
            return False
        return kept[0].origin == kept[1].origin == item.origin and (
            kept[0].size == kept[1].size and kept[0].root != kept[1].root
        )

    def prune_evidence(self) -> list[Evidence]:
        """Remove the kept evidence that proves no fork (:meth:`proves_fork` is ``False``);
        return what was removed. Evidence of a log no longer trusted is kept."""
        removed = []
        with self.locked():
            for item in self.evidence():
                if self.proves_fork(item) is False:
                    (item.directory / "reason.txt").unlink()  # first: no longer listed
                    shutil.rmtree(item.directory)
                    removed.append(item)
        return removed
