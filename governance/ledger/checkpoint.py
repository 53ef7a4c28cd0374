"""Signed checkpoints of the ledger's Merkle tree (Ed25519, C2SP tlog-checkpoint body).

A checkpoint commits the ledger to its first ``size`` records: it signs the RFC 9162 root hash
of their leaf hashes. The signed bytes (:meth:`Checkpoint.body`) are a C2SP ``tlog-checkpoint``
note text (https://c2sp.org/tlog-checkpoint) with one extension line carrying the time::

    governance/ledger/<ledger id>\\n            origin
    1024\\n                                     tree size, decimal, no leading zeros
    3q2+7w...base64 root hash...=\\n            standard base64 (RFC 4648 §4)
    timestamp 2026-07-30T12:34:56.123456Z\\n    extension line: UTC, ISO 8601, 'Z'

Because the timestamp is part of the body, it is covered by the signature exactly like the size
and root. The signature is Ed25519 (RFC 8032) over those bytes, and :meth:`Checkpoint.to_note`
renders a complete C2SP signed note (https://c2sp.org/signed-note), so standard transparency-log
tooling (e.g. Go's ``golang.org/x/mod/sumdb/note`` with :func:`verifier_key`) can verify it too.

Key identifiers
    ``key_id`` is the C2SP signed-note key ID with the origin as key name, in lowercase hex::

        key_id = hex(SHA-256(origin || 0x0A || 0x01 || 32-byte raw public key)[:4])

    It depends on the origin, so one key used for two ledgers has two key IDs.

Key files
    The signing key is an unencrypted PKCS#8 PEM file created with mode 0600
    (:func:`load_or_create_signing_key`). Its public key is written next to it, at
    :func:`public_key_path` (``<stem>.pub``), as a SubjectPublicKeyInfo PEM (``BEGIN PUBLIC
    KEY``) that auditors can load offline with :func:`load_public_key`, ``cryptography`` or
    ``openssl pkey -pubin``.

Checkpoint files
    :class:`CheckpointDirectory` keeps one JSON file per checkpoint outside the database. A copy
    of that directory kept elsewhere is what makes truncation or rewriting of the ledger
    detectable: a later ledger must still contain every exported checkpoint's tree head.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from governance.ledger.merkle import HASH_SIZE

__all__ = [
    "CHECKPOINT_FORMAT",
    "ERR_BAD_FIELD",
    "ERR_BAD_JSON",
    "ERR_BAD_KEY",
    "ERR_BAD_NOTE",
    "ERR_BAD_ORIGIN",
    "ERR_BAD_TIMESTAMP",
    "ERR_FILE_MISMATCH",
    "ERR_FORK",
    "ERR_ORIGIN_CONFLICT",
    "ERR_PUBLIC_KEY_MISMATCH",
    "Checkpoint",
    "CheckpointDirectory",
    "check_origin",
    "key_id_for",
    "load_or_create_signing_key",
    "load_public_key",
    "note_signature_line",
    "public_key_bytes",
    "public_key_path",
    "sign_checkpoint",
    "verifier_key",
    "verify_checkpoint",
]

CHECKPOINT_FORMAT = "governance.checkpoint/v1"
"""Value of the ``format`` member of :meth:`Checkpoint.to_json`."""

TIMESTAMP_PREFIX = "timestamp "
"""Start of the body's extension line that carries the checkpoint time."""

SIGNATURE_SIZE = 64
ED25519_SIGNATURE_TYPE = b"\x01"  # C2SP signed-note signature type identifier for Ed25519
_EM_DASH = "\u2014"

ERR_BAD_ORIGIN = (
    "invalid origin {origin!r}: it must be non-empty and contain no spaces, '+' or control "
    "characters (it is also the C2SP key name)"
)
ERR_BAD_TIMESTAMP = (
    "invalid timestamp {timestamp!r}: expected UTC ISO 8601 with 'Z', "
    "e.g. 2026-07-30T12:34:56.123456Z"
)
ERR_BAD_FIELD = "invalid checkpoint field {name}: {problem}"
ERR_BAD_JSON = "invalid checkpoint JSON: {problem}"
ERR_BAD_NOTE = "invalid checkpoint note: {problem}"
ERR_BAD_KEY = "{path}: {problem}"
ERR_PUBLIC_KEY_MISMATCH = (
    "public key file {path} does not match the signing key next to it; refusing to continue"
)
ERR_FORK = (
    "{path} already holds a checkpoint of size {size} with root {existing}, not {new}: "
    "two different trees of the same size is evidence of a fork; refusing to overwrite"
)
ERR_ORIGIN_CONFLICT = "{path} holds a checkpoint for origin {existing!r}, not {new!r}"
ERR_FILE_MISMATCH = "{path}: the file name says size {named} but the checkpoint has size {size}"

_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_KEY_ID_RE = re.compile(r"[0-9a-f]{8}")
_HEX_RE = re.compile(r"(?:[0-9a-f]{2})*")
_CHECKPOINT_FILE_RE = re.compile(r"(\d{12,})\.json")
_ORIGIN_FORBIDDEN_RE = re.compile(r"[\s+\x00-\x1f\x7f-\x9f\ud800-\udfff]")


# -- validation helpers -------------------------------------------------------------------


def check_origin(origin: object) -> str:
    """``origin`` if it may name a log (:data:`ERR_BAD_ORIGIN`), else :class:`ValueError`."""
    if not isinstance(origin, str) or not origin or _ORIGIN_FORBIDDEN_RE.search(origin):
        raise ValueError(ERR_BAD_ORIGIN.format(origin=origin))
    return origin


def _check_timestamp(timestamp: object) -> str:
    if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
        raise ValueError(ERR_BAD_TIMESTAMP.format(timestamp=timestamp))
    try:
        datetime.fromisoformat(timestamp)
    except ValueError:
        raise ValueError(ERR_BAD_TIMESTAMP.format(timestamp=timestamp)) from None
    return timestamp


def _check_size(size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(ERR_BAD_FIELD.format(name="size", problem=f"{size!r} is not an int >= 0"))
    return size


def _check_bytes(name: str, value: object, length: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise ValueError(ERR_BAD_FIELD.format(name=name, problem=f"expected {length} bytes"))
    return value


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise ValueError(ERR_BAD_FIELD.format(name="key_id", problem="expected 8 lowercase hex"))
    return key_id


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _body(origin: str, size: int, root: bytes, timestamp: str) -> bytes:
    root_b64 = base64.b64encode(root).decode("ascii")
    return f"{origin}\n{size}\n{root_b64}\n{TIMESTAMP_PREFIX}{timestamp}\n".encode()


# -- keys ---------------------------------------------------------------------------------


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """Return the raw 32-byte Ed25519 public key (RFC 8032 encoding).

    Parameters
    ----------
    key
        A private key (its public half is used) or a public key.

    Returns
    -------
    bytes
        The 32-byte public key.
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    if not isinstance(public, Ed25519PublicKey):
        raise TypeError(f"expected an Ed25519 key, got {type(key).__name__}")
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _as_public_key(public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> Ed25519PublicKey:
    if isinstance(public_key, Ed25519PublicKey):
        return public_key
    if isinstance(public_key, Ed25519PrivateKey):
        return public_key.public_key()
    if isinstance(public_key, bytes | bytearray):
        if len(public_key) != 32:
            raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
        return Ed25519PublicKey.from_public_bytes(bytes(public_key))
    raise TypeError(f"expected an Ed25519 public key or 32 bytes, got {type(public_key).__name__}")


def key_id_for(origin: str, public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """Return the C2SP signed-note key ID of ``public_key`` under key name ``origin``.

    Parameters
    ----------
    origin
        The checkpoint origin, used as the note key name.
    public_key
        The Ed25519 key (object or raw 32 bytes).

    Returns
    -------
    str
        ``SHA-256(origin || 0x0A || 0x01 || public key)[:4]`` as 8 lowercase hex digits.
    """
    raw = public_key_bytes(_as_public_key(public_key))
    digest = hashlib.sha256(origin.encode() + b"\n" + ED25519_SIGNATURE_TYPE + raw).digest()
    return digest[:4].hex()


def verifier_key(origin: str, public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """Return the signed-note verifier key string ``<name>+<key id>+<base64(0x01 || key)>``.

    This is the form Go's ``golang.org/x/mod/sumdb/note.NewVerifier`` and other C2SP tools take
    to verify :meth:`Checkpoint.to_note` output.
    """
    check_origin(origin)
    raw = public_key_bytes(_as_public_key(public_key))
    encoded = base64.b64encode(ED25519_SIGNATURE_TYPE + raw).decode("ascii")
    return f"{origin}+{key_id_for(origin, raw)}+{encoded}"


def note_signature_line(key_name: str, key_id: str, signature: bytes) -> str:
    """Return a C2SP signed-note signature line, ``— <name> base64(key ID || signature)\\n``."""
    blob = base64.b64encode(bytes.fromhex(key_id) + signature).decode("ascii")
    return f"{_EM_DASH} {key_name} {blob}\n"


def public_key_path(key_path: Path) -> Path:
    """Return where the public key of the signing key at ``key_path`` is written.

    It is the same directory and stem with suffix ``.pub`` (``keys/ledger.pem`` ->
    ``keys/ledger.pub``).
    """
    key_path = Path(key_path)
    if key_path.suffix == ".pub":
        raise ValueError(ERR_BAD_KEY.format(path=key_path, problem="a signing key named *.pub"))
    return key_path.with_suffix(".pub")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # Not every platform/filesystem lets a directory sync.
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Atomically create ``path`` with ``data`` and permissions ``mode``; never overwrite.

    The data is written and synced to a temporary file first, then hard-linked into place, so
    a crash leaves either no file or the complete file. Returns ``False`` if ``path`` exists.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:  # Filesystems without hard links: check, then rename.
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            if path.exists():
                return False
            os.replace(tmp, path)
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(ERR_BAD_KEY.format(path=path, problem=exc)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(ERR_BAD_KEY.format(path=path, problem="not an Ed25519 private key"))
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a SubjectPublicKeyInfo PEM file (the ``.pub`` file).

    Parameters
    ----------
    path
        The ``.pub`` file written by :func:`load_or_create_signing_key`.

    Returns
    -------
    Ed25519PublicKey
        The key, for :func:`verify_checkpoint`.

    Raises
    ------
    ValueError
        If the file is not a PEM Ed25519 public key.
    """
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError) as exc:
        raise ValueError(ERR_BAD_KEY.format(path=path, problem=exc)) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(ERR_BAD_KEY.format(path=path, problem="not an Ed25519 public key"))
    return key


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the ledger's Ed25519 signing key, creating it on first use.

    A new key is written as unencrypted PKCS#8 PEM with mode 0600 (parent directories are
    created, mode 0700). An existing key file is never overwritten, also when two processes
    race to create it: the loser loads the winner's key. The public key is written (or
    checked, if present) at :func:`public_key_path`, mode 0644.

    Parameters
    ----------
    path
        The private key file.

    Returns
    -------
    Ed25519PrivateKey
        The signing key.

    Raises
    ------
    ValueError
        If the existing file is not an Ed25519 private key, or the ``.pub`` file next to it
        holds a different public key (:data:`ERR_PUBLIC_KEY_MISMATCH`).
    """
    path = Path(path)
    pub_path = public_key_path(path)
    if path.exists():
        key = _load_private_key(path)
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if not _create_exclusive(path, pem, 0o600):
            key = _load_private_key(path)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not _create_exclusive(pub_path, public_pem, 0o644) and public_key_bytes(
        load_public_key(pub_path)
    ) != public_key_bytes(key):
        raise ValueError(ERR_PUBLIC_KEY_MISMATCH.format(path=pub_path))
    return key


# -- checkpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the ledger's first ``size`` records have Merkle root ``root``.

    Attributes
    ----------
    origin
        Identity of the ledger, e.g. ``"governance/ledger/<ledger id>"``; also the note key
        name, so it must not contain spaces or ``+``.
    size
        Tree size (number of leaves).
    root
        RFC 9162 root hash of the first ``size`` leaves (32 bytes).
    timestamp
        UTC signing time, ISO 8601 with ``Z``; signed as the body's extension line.
    key_id
        C2SP key ID of the signing key under ``origin`` (see :func:`key_id_for`).
    signature
        64-byte Ed25519 signature over :meth:`body`.

    Raises
    ------
    ValueError
        On construction, if a field is malformed (the signature is *not* checked here; use
        :func:`verify_checkpoint`).
    """

    origin: str
    size: int
    root: bytes
    timestamp: str
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        check_origin(self.origin)
        _check_size(self.size)
        _check_bytes("root", self.root, HASH_SIZE)
        _check_timestamp(self.timestamp)
        _check_key_id(self.key_id)
        _check_bytes("signature", self.signature, SIGNATURE_SIZE)

    def body(self) -> bytes:
        """Return the signed bytes: the C2SP checkpoint note text (see the module docstring)."""
        return _body(self.origin, self.size, self.root, self.timestamp)

    def to_note(self) -> str:
        """Return the checkpoint as a C2SP signed note (body, blank line, signature line)."""
        return (
            self.body().decode()
            + "\n"
            + note_signature_line(self.origin, self.key_id, self.signature)
        )

    @classmethod
    def from_note(cls, note: str) -> Checkpoint:
        """Parse :meth:`to_note` output; the signature is taken from the origin's line.

        Raises
        ------
        ValueError
            If the note is malformed (:data:`ERR_BAD_NOTE`). The signature is not verified.
        """
        if not isinstance(note, str) or "\n\n" not in note or not note.endswith("\n"):
            raise ValueError(ERR_BAD_NOTE.format(problem="no blank line before signatures"))
        text, _, signatures = note.rpartition("\n\n")
        lines = text.split("\n")
        if len(lines) != 4 or not lines[3].startswith(TIMESTAMP_PREFIX):
            raise ValueError(
                ERR_BAD_NOTE.format(problem="expected origin, size, root, timestamp lines")
            )
        origin, size_text, root_b64, timestamp_line = lines
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise ValueError(ERR_BAD_NOTE.format(problem=f"bad tree size {size_text!r}"))
        try:
            root = base64.b64decode(root_b64, validate=True)
        except binascii.Error:
            raise ValueError(ERR_BAD_NOTE.format(problem="root is not base64")) from None
        for line in signatures[:-1].split("\n"):
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _EM_DASH:
                raise ValueError(ERR_BAD_NOTE.format(problem=f"bad signature line {line!r}"))
            if parts[1] != origin:
                continue  # e.g. a witness cosignature
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except binascii.Error:
                raise ValueError(ERR_BAD_NOTE.format(problem="signature is not base64")) from None
            return cls(
                origin=origin,
                size=int(size_text),
                root=root,
                timestamp=timestamp_line[len(TIMESTAMP_PREFIX) :],
                key_id=blob[:4].hex(),
                signature=blob[4:],
            )
        raise ValueError(ERR_BAD_NOTE.format(problem=f"no signature by {origin!r}"))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; binary fields are lowercase hex.

        Returns
        -------
        dict
            ``{"format", "origin", "size", "root", "timestamp", "key_id", "signature"}``.
        """
        return {
            "format": CHECKPOINT_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Checkpoint:
        """Rebuild a checkpoint from :meth:`to_json` output.

        Raises
        ------
        ValueError
            If a member is missing, of the wrong type or malformed. The signature is not
            verified here.
        """
        if not isinstance(d, dict):
            raise ValueError(ERR_BAD_JSON.format(problem=f"expected an object, got {type(d)}"))
        if d.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(ERR_BAD_JSON.format(problem=f"format is not {CHECKPOINT_FORMAT!r}"))
        missing = {"origin", "size", "root", "timestamp", "key_id", "signature"} - d.keys()
        if missing:
            raise ValueError(ERR_BAD_JSON.format(problem=f"missing {sorted(missing)}"))
        binary: dict[str, bytes] = {}
        for name in ("root", "signature"):
            value = d[name]
            if not isinstance(value, str) or not _HEX_RE.fullmatch(value):
                raise ValueError(ERR_BAD_JSON.format(problem=f"{name} is not lowercase hex"))
            binary[name] = bytes.fromhex(value)
        return cls(
            origin=d["origin"],
            size=d["size"],
            root=binary["root"],
            timestamp=d["timestamp"],
            key_id=d["key_id"],
            signature=binary["signature"],
        )


def sign_checkpoint(
    key: Ed25519PrivateKey,
    *,
    origin: str,
    size: int,
    root: bytes,
    timestamp: str | None = None,
) -> Checkpoint:
    """Sign a tree head.

    Parameters
    ----------
    key
        The ledger's signing key.
    origin
        The ledger identity, e.g. ``"governance/ledger/<ledger id>"``.
    size
        Tree size.
    root
        Root hash of the first ``size`` leaves.
    timestamp
        UTC ISO 8601 time with ``Z``; defaults to now (microsecond precision).

    Returns
    -------
    Checkpoint
        The signed checkpoint.

    Raises
    ------
    ValueError
        If a field is malformed.
    """
    if timestamp is None:
        timestamp = _utc_now()
    check_origin(origin)
    _check_size(size)
    _check_bytes("root", root, HASH_SIZE)
    _check_timestamp(timestamp)
    return Checkpoint(
        origin=origin,
        size=size,
        root=root,
        timestamp=timestamp,
        key_id=key_id_for(origin, key),
        signature=key.sign(_body(origin, size, root, timestamp)),
    )


def verify_checkpoint(
    cp: Checkpoint, public_key: Ed25519PublicKey | Ed25519PrivateKey | bytes
) -> bool:
    """Check a checkpoint's key ID and Ed25519 signature.

    Parameters
    ----------
    cp
        The checkpoint.
    public_key
        The trusted public key (object or raw 32 bytes), e.g. from :func:`load_public_key`.

    Returns
    -------
    bool
        ``True`` only if ``cp`` was signed by that key exactly as it is (origin, size, root and
        timestamp). Never raises for a bad checkpoint.

    Raises
    ------
    TypeError, ValueError
        If ``public_key`` itself is not an Ed25519 public key (a configuration error).
    """
    trusted = _as_public_key(public_key)
    if not isinstance(cp, Checkpoint):
        return False
    try:
        if cp.key_id != key_id_for(cp.origin, trusted):
            return False
        trusted.verify(cp.signature, cp.body())
    except (InvalidSignature, ValueError, TypeError, AttributeError):
        return False
    return True


class CheckpointDirectory:
    """Checkpoints exported outside the database: one JSON file per checkpoint.

    Files are named by zero-padded size, e.g. ``000000001024.json``; copying the directory
    elsewhere is how truncation of the ledger becomes detectable.

    Parameters
    ----------
    path
        The directory; created on the first :meth:`write`.

    Notes
    -----
    A file is never modified once written. Writing a checkpoint whose size already has a file
    is a no-op when the tree head (origin, size, root) is the same, even if it was signed at
    another time: the first attestation of a tree head is kept. A different root for the same
    size raises :data:`ERR_FORK`. The directory does not check signatures or consistency
    between sizes; the ledger's ``verify`` does, with :func:`verify_checkpoint` and
    consistency proofs.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def path_for(self, size: int) -> Path:
        """Return the file that holds (or would hold) the checkpoint of tree size ``size``."""
        return self.path / f"{_check_size(size):012d}.json"

    @staticmethod
    def _read(path: Path) -> Checkpoint:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
            raise ValueError(ERR_BAD_JSON.format(problem=f"{path}: {exc}")) from exc
        cp = Checkpoint.from_json(data)
        match = _CHECKPOINT_FILE_RE.fullmatch(path.name)
        if match is None or int(match.group(1)) != cp.size:
            named = match.group(1) if match else path.name
            raise ValueError(ERR_FILE_MISMATCH.format(path=path, named=named, size=cp.size))
        return cp

    def _check_existing(self, path: Path, cp: Checkpoint) -> Path:
        existing = self._read(path)
        if existing.origin != cp.origin:
            raise ValueError(
                ERR_ORIGIN_CONFLICT.format(path=path, existing=existing.origin, new=cp.origin)
            )
        if existing.root != cp.root:
            raise ValueError(
                ERR_FORK.format(
                    path=path, size=cp.size, existing=existing.root.hex(), new=cp.root.hex()
                )
            )
        return path

    def write(self, cp: Checkpoint) -> Path:
        """Export a checkpoint, atomically and without ever overwriting a file.

        Parameters
        ----------
        cp
            The checkpoint (normally verified by the caller just after signing).

        Returns
        -------
        Path
            The checkpoint's file.

        Raises
        ------
        ValueError
            If a file of the same size holds a different root (:data:`ERR_FORK`), another
            origin (:data:`ERR_ORIGIN_CONFLICT`) or is unreadable.
        """
        target = self.path_for(cp.size)
        if target.exists():
            return self._check_existing(target, cp)
        self.path.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(cp.to_json(), indent=2, sort_keys=True) + "\n").encode()
        if not _create_exclusive(target, data, 0o644):  # Lost a race with another writer.
            return self._check_existing(target, cp)
        return target

    def all(self) -> list[Checkpoint]:
        """Return every exported checkpoint, ordered by size.

        Raises
        ------
        ValueError
            If a checkpoint file is malformed or its name does not match its size.
        """
        if not self.path.is_dir():
            return []
        files = [p for p in self.path.iterdir() if _CHECKPOINT_FILE_RE.fullmatch(p.name)]
        return sorted((self._read(p) for p in files), key=lambda cp: cp.size)

    def latest(self) -> Checkpoint | None:
        """Return the checkpoint with the largest size, or ``None`` if there is none."""
        if not self.path.is_dir():
            return None
        files = [p for p in self.path.iterdir() if _CHECKPOINT_FILE_RE.fullmatch(p.name)]
        if not files:
            return None
        return self._read(max(files, key=lambda p: int(p.name.split(".", 1)[0])))
