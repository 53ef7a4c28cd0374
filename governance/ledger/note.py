"""C2SP signed notes, checkpoints and cosignatures.

Three small specifications, implemented exactly:

* `signed-note <https://c2sp.org/signed-note>`_: a UTF-8 text ending in a newline, a blank line,
  then one or more signature lines ``— <key name> base64(4-byte key ID || signature)``. Keys are
  named by *verifier key* strings ``<name>+<hex key ID>+base64(<type byte> || public key)``. A
  verifier ignores signatures from keys it does not know, must verify those it knows (one bad
  signature from a known key rejects the whole note), and rejects a note with no verified
  signature.
* `tlog-checkpoint <https://c2sp.org/tlog-checkpoint>`_: the note text of a transparency log's
  tree head -- origin line, tree size (decimal), base64 RFC 6962/9162 root hash, then optional
  non-empty extension lines (:class:`CheckpointBody`).
* `tlog-cosignature <https://c2sp.org/tlog-cosignature>`_ v1 for Ed25519 (signature type
  ``0x04``): a witness signs ``"cosignature/v1\\ntime <t>\\n" || checkpoint text`` and the
  signature is ``u64 big-endian t || 64-byte Ed25519 signature``.

Two signature types are supported: ``0x01`` (plain Ed25519 over the note text, what logs sign
with) and ``0x04`` (timestamped Ed25519 cosignatures, what witnesses sign with). Key IDs are
``SHA-256(name || 0x0A || type || public key)[:4]`` for both.

Nothing here needs a secret except :class:`Signer`; verification takes :class:`Verifier` objects
built from public verifier key strings (:func:`parse_verifier_key`).

>>> signer = Signer.generate("example.com/log", ALG_ED25519)
>>> note = sign_note("hello\\n", [signer])
>>> open_note(note, [signer.verifier()]).text
'hello\\n'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "COSIGNATURE_HEADER",
    "ERR_AMBIGUOUS_KEY",
    "ERR_BAD_CHECKPOINT",
    "ERR_BAD_SIGNATURE",
    "ERR_BAD_SIGNER_KEY",
    "ERR_BAD_VERIFIER_KEY",
    "ERR_MALFORMED",
    "ERR_NO_VERIFIED_SIGNATURE",
    "MAX_SIGNATURES",
    "CheckpointBody",
    "NoteError",
    "OpenedNote",
    "Signature",
    "Signer",
    "UnverifiedNoteError",
    "Verifier",
    "cosignature_message",
    "cosignature_timestamp",
    "is_valid_key_name",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
]

ALG_ED25519 = 0x01
"""Signature type of plain Ed25519 note signatures (logs sign checkpoints with it)."""
ALG_COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature)."""
COSIGNATURE_HEADER = b"cosignature/v1\n"
"""First line of the message an Ed25519 cosigner signs (domain separation)."""
MAX_SIGNATURES = 100
"""More signature lines than this make a note malformed (the spec requires accepting 16)."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_ED25519_SIZE = 64
_KEY_SIZE = 32
_TIMESTAMP_SIZE = 8
_MAX_TIMESTAMP = 2**63 - 1
_ALGORITHMS = (ALG_ED25519, ALG_COSIGNATURE_V1)
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX8_RE = re.compile(r"[0-9a-f]{8}")
_FORBIDDEN_TEXT_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")

ERR_MALFORMED = "malformed note: {problem}"
ERR_BAD_SIGNATURE = "invalid signature for key {name}+{key_id:08x}"
ERR_AMBIGUOUS_KEY = "ambiguous key {name}+{key_id:08x}: trusted twice (name and key ID)"
ERR_NO_VERIFIED_SIGNATURE = "note has no verifiable signatures (no signature by a trusted key)"
ERR_BAD_VERIFIER_KEY = "invalid verifier key {vkey!r}: {problem}"
ERR_BAD_SIGNER_KEY = "invalid signer key: {problem}"
ERR_BAD_CHECKPOINT = "invalid checkpoint: {problem}"


class NoteError(ValueError):
    """A note is malformed, carries a bad signature, or has no trusted signature."""


class UnverifiedNoteError(NoteError):
    """A well-formed note with no signature from a trusted key.

    Attributes
    ----------
    note
        The parsed note (all its signatures are unverified).
    """

    def __init__(self, note: Note) -> None:
        super().__init__(ERR_NO_VERIFIED_SIGNATURE)
        self.note = note


# -- keys ---------------------------------------------------------------------------------


def is_valid_key_name(name: object) -> bool:
    """Whether ``name`` is a valid note key name: non-empty, no Unicode space, no ``+``."""
    if not isinstance(name, str) or not name or "+" in name:
        return False
    return not any(ch.isspace() or unicodedata.category(ch) == "Zs" for ch in name)


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """Return the C2SP key ID ``SHA-256(name || 0x0A || alg || public key)[:4]`` as a uint32.

    Parameters
    ----------
    name
        The key name.
    alg
        The signature type byte (:data:`ALG_ED25519` or :data:`ALG_COSIGNATURE_V1`).
    public_key
        The raw public key (32 bytes for Ed25519).

    Returns
    -------
    int
        The key ID, big-endian.
    """
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: checks note signatures made with one (name, key ID).

    Attributes
    ----------
    name
        Key name (a log's origin, or a witness's name).
    alg
        Signature type: :data:`ALG_ED25519` or :data:`ALG_COSIGNATURE_V1`.
    public_key
        The raw 32-byte Ed25519 public key.
    """

    name: str
    alg: int
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError(ERR_BAD_VERIFIER_KEY.format(vkey=self.name, problem="bad key name"))
        if self.alg not in _ALGORITHMS:
            raise ValueError(
                ERR_BAD_VERIFIER_KEY.format(vkey=self.name, problem=f"unknown type {self.alg}")
            )
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _KEY_SIZE:
            raise ValueError(
                ERR_BAD_VERIFIER_KEY.format(vkey=self.name, problem="not a 32-byte Ed25519 key")
            )
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @property
    def key_id(self) -> int:
        """The key ID (uint32)."""
        return key_id(self.name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string ``<name>+<hex key ID>+base64(alg || public key)``."""
        material = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Check ``signature`` (without the key ID) over the note text ``text``; never raises."""
        if self.alg == ALG_COSIGNATURE_V1:
            if len(signature) != _TIMESTAMP_SIZE + _ED25519_SIZE:
                return False
            timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            message = cosignature_message(text, timestamp)
            signature = signature[_TIMESTAMP_SIZE:]
        else:
            if len(signature) != _ED25519_SIZE:
                return False
            message = text
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier_key(vkey: str) -> Verifier:
    """Parse a verifier key string ``<name>+<hex key ID>+base64(type || public key)``.

    Parameters
    ----------
    vkey
        E.g. ``example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k``.

    Returns
    -------
    Verifier
        The verifier (type 0x01 or 0x04).

    Raises
    ------
    ValueError
        If the string is malformed, of an unsupported type, or its key ID does not match
        (:data:`ERR_BAD_VERIFIER_KEY`).
    """

    def bad(problem: str) -> ValueError:
        return ValueError(ERR_BAD_VERIFIER_KEY.format(vkey=vkey, problem=problem))

    if not isinstance(vkey, str):
        raise bad("not a string")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise bad("expected <name>+<key id>+<key>")
    name, id_hex, material = parts
    if not is_valid_key_name(name):
        raise bad("bad key name")
    if not _HEX8_RE.fullmatch(id_hex):
        raise bad("key id is not 8 lowercase hex digits")
    try:
        raw = base64.b64decode(material, validate=True)
    except (binascii.Error, ValueError):
        raise bad("key is not base64") from None
    if len(raw) != 1 + _KEY_SIZE or raw[0] not in _ALGORITHMS:
        raise bad("not an Ed25519 (0x01) or Ed25519 cosignature (0x04) key")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id != int(id_hex, 16):
        raise bad("key id does not match the key")
    return verifier


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under a name (type 0x01) or cosigns checkpoints (0x04).

    Attributes
    ----------
    name
        Key name.
    alg
        :data:`ALG_ED25519` or :data:`ALG_COSIGNATURE_V1`.
    private_key
        The Ed25519 private key.
    clock
        For cosigners: returns the POSIX time to put in the cosignature (default ``time.time``).
    """

    name: str
    alg: int
    private_key: Ed25519PrivateKey = field(repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError(ERR_BAD_SIGNER_KEY.format(problem=f"bad key name {self.name!r}"))
        if self.alg not in _ALGORITHMS:
            raise ValueError(ERR_BAD_SIGNER_KEY.format(problem=f"unknown type {self.alg}"))

    @classmethod
    def generate(cls, name: str, alg: int = ALG_ED25519) -> Signer:
        """Return a signer with a new random key."""
        return cls(name, alg, Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> int:
        """The key ID (uint32)."""
        return key_id(self.name, self.alg, self.public_key)

    def verifier(self) -> Verifier:
        """Return the matching :class:`Verifier` (public)."""
        return Verifier(self.name, self.alg, self.public_key)

    def sign(self, text: bytes) -> bytes:
        """Return the signature over the note text ``text`` (without the key ID)."""
        if self.alg == ALG_COSIGNATURE_V1:
            timestamp = int(self.clock())
            if not 0 < timestamp <= _MAX_TIMESTAMP:
                raise ValueError(ERR_BAD_SIGNER_KEY.format(problem="clock out of range"))
            signature = self.private_key.sign(cosignature_message(text, timestamp))
            return timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature
        return self.private_key.sign(text)


def parse_signer_key(skey: str) -> Signer:
    """Parse a Go ``golang.org/x/mod/sumdb/note`` private key string.

    The format is ``PRIVATE+KEY+<name>+<hex key ID>+base64(type || 32-byte seed)``.

    Raises
    ------
    ValueError
        If the string is malformed or its key ID does not match (:data:`ERR_BAD_SIGNER_KEY`).
    """
    parts = skey.split("+", 4) if isinstance(skey, str) else []
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise ValueError(ERR_BAD_SIGNER_KEY.format(problem="expected PRIVATE+KEY+name+id+key"))
    name, id_hex, material = parts[2:]
    if not _HEX8_RE.fullmatch(id_hex):
        raise ValueError(ERR_BAD_SIGNER_KEY.format(problem="key id is not 8 lowercase hex"))
    try:
        raw = base64.b64decode(material, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(ERR_BAD_SIGNER_KEY.format(problem="key is not base64")) from None
    if len(raw) != 1 + _KEY_SIZE or raw[0] not in _ALGORITHMS:
        raise ValueError(ERR_BAD_SIGNER_KEY.format(problem="not an Ed25519 seed"))
    signer = Signer(name, raw[0], Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.key_id != int(id_hex, 16):
        raise ValueError(ERR_BAD_SIGNER_KEY.format(problem="key id does not match the key"))
    return signer


# -- notes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line of a note.

    Attributes
    ----------
    name
        Key name.
    key_id
        Key ID (uint32).
    signature
        The signature bytes after the key ID (for 0x04: timestamp || Ed25519 signature).
    """

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """Return the signature line, ``— <name> base64(key ID || signature)\\n``."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True)
class Note:
    """A parsed (not yet verified) signed note.

    Attributes
    ----------
    text
        The note text, ending in a newline.
    signatures
        The signature lines, in order.
    """

    text: str
    signatures: tuple[Signature, ...]

    def render(self) -> str:
        """Return the note as text: the text, a blank line and the signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def _malformed(problem: str) -> NoteError:
    return NoteError(ERR_MALFORMED.format(problem=problem))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise _malformed("the text does not end with a newline")
    if _FORBIDDEN_TEXT_RE.search(text):
        raise _malformed("control characters in the text")


def _as_str(message: str | bytes) -> str:
    if isinstance(message, bytes | bytearray):
        try:
            return bytes(message).decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not valid UTF-8") from None
    if not isinstance(message, str):
        raise _malformed(f"expected text, got {type(message).__name__}")
    return message


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise _malformed(f"unexpected line {line[:40]!r} among the signatures")
    name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not is_valid_key_name(name) or not encoded:
        raise _malformed(f"bad signature line {line[:40]!r}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("a signature is not base64") from None
    if len(blob) < 5:
        raise _malformed("a signature is too short")
    return Signature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def parse_note(message: str | bytes) -> Note:
    """Split a signed note into text and signature lines (no signature is checked).

    Raises
    ------
    NoteError
        If the note is malformed (:data:`ERR_MALFORMED`): not UTF-8, control characters, no
        blank line before the signatures, a bad signature line, no signature, or more than
        :data:`MAX_SIGNATURES`.
    """
    message = _as_str(message)
    if _FORBIDDEN_TEXT_RE.search(message):
        raise _malformed("control characters in the note")
    split = message.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line between the text and the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _malformed("the signatures do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(f"more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(_parse_signature_line(line) for line in lines))


def sign_note(
    note: str | Note, signers: Sequence[Signer], *, keep: Iterable[Signature] = ()
) -> str:
    """Sign a note text (or add signatures to a note) and return the signed note.

    Parameters
    ----------
    note
        The text (ending in a newline) or a parsed :class:`Note` whose signatures are kept.
    signers
        Keys to sign with; an existing signature by the same (name, key ID) is replaced. New
        signatures come after the existing ones (as Go's ``note.Sign`` writes them).
    keep
        More signature lines to append after the existing ones (e.g. cosignatures).

    Returns
    -------
    str
        The signed note.

    Raises
    ------
    NoteError
        If the text is malformed or there would be no signature at all.
    """
    if isinstance(note, Note):
        text, existing = note.text, list(note.signatures)
    else:
        text, existing = _as_str(note), []
    _check_text(text)
    existing += list(keep)
    fresh: list[Signature] = []
    for signer in signers:
        fresh.append(Signature(signer.name, signer.key_id, signer.sign(text.encode())))
    replaced = {(s.name, s.key_id) for s in fresh}
    signatures = [s for s in existing if (s.name, s.key_id) not in replaced] + fresh
    if not signatures:
        raise _malformed("a note needs at least one signature")
    if len(signatures) > MAX_SIGNATURES:
        raise _malformed(f"more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures)).render()


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked against trusted keys.

    Attributes
    ----------
    text
        The note text.
    verified
        Signatures by trusted keys that verified (one per key).
    unverified
        Signatures by keys not in the trusted set (ignored, kept for relaying).
    """

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    def by(self, verifier: Verifier) -> Signature | None:
        """Return the verified signature of ``verifier``, or ``None``."""
        for sig in self.verified:
            if sig.name == verifier.name and sig.key_id == verifier.key_id:
                return sig
        return None


def open_note(message: str | bytes, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse a signed note and check its signatures against trusted keys.

    Parameters
    ----------
    message
        The signed note.
    verifiers
        The trusted keys. Signatures by other keys are ignored (returned as ``unverified``).

    Returns
    -------
    OpenedNote
        The text and the verified / unverified signatures.

    Raises
    ------
    NoteError
        If the note is malformed, a signature by a trusted key does not verify
        (:data:`ERR_BAD_SIGNATURE`), or two trusted keys share a name and key ID that a
        signature uses (:data:`ERR_AMBIGUOUS_KEY`).
    UnverifiedNoteError
        If no signature is by a trusted key.
    """
    note = parse_note(message)
    text = note.text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    for sig in note.signatures:
        matches = [v for v in verifiers if v.name == sig.name and v.key_id == sig.key_id]
        if not matches:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if len(matches) > 1:
            raise NoteError(ERR_AMBIGUOUS_KEY.format(name=sig.name, key_id=sig.key_id))
        if (sig.name, sig.key_id) in seen:
            continue  # one signature per key counts; repeats are dropped unchecked
        seen.add((sig.name, sig.key_id))
        if not matches[0].verify(text, sig.signature):
            raise NoteError(ERR_BAD_SIGNATURE.format(name=sig.name, key_id=sig.key_id))
        verified.append(sig)
    if not verified:
        raise UnverifiedNoteError(note)
    return OpenedNote(note.text, tuple(verified), tuple(unverified))


# -- cosignatures -------------------------------------------------------------------------


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """Return what an Ed25519 cosigner signs: ``cosignature/v1\\ntime <t>\\n`` + the text."""
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


def cosignature_timestamp(signature: Signature) -> int:
    """Return the POSIX time in a type-0x04 cosignature.

    Raises
    ------
    ValueError
        If the signature is not ``8 + 64`` bytes or the time exceeds ``2**63 - 1``.
    """
    if len(signature.signature) != _TIMESTAMP_SIZE + _ED25519_SIZE:
        raise ValueError("not an Ed25519 cosignature (expected 72 bytes after the key ID)")
    timestamp = int.from_bytes(signature.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise ValueError("cosignature timestamp out of range")
    return timestamp


# -- checkpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointBody:
    """The note text of a transparency log checkpoint (c2sp.org/tlog-checkpoint).

    Attributes
    ----------
    origin
        The log's identity (first line); non-empty.
    size
        Tree size.
    root
        The 32-byte Merkle root of the first ``size`` leaves.
    extensions
        Extension lines (each non-empty, without the newline).
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise ValueError(ERR_BAD_CHECKPOINT.format(problem="the origin must be one line"))
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ValueError(ERR_BAD_CHECKPOINT.format(problem="the size must be an int >= 0"))
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise ValueError(ERR_BAD_CHECKPOINT.format(problem="the root must be 32 bytes"))
        for line in self.extensions:
            if not isinstance(line, str) or not line or "\n" in line:
                raise ValueError(
                    ERR_BAD_CHECKPOINT.format(problem="extension lines must be non-empty lines")
                )

    def text(self) -> str:
        """Return the note text (each line ending in a newline)."""
        root = base64.b64encode(self.root).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str | bytes) -> CheckpointBody:
    """Parse a checkpoint note text (not the signatures: pass :attr:`OpenedNote.text`).

    Raises
    ------
    ValueError
        If the text is not a checkpoint (:data:`ERR_BAD_CHECKPOINT`).
    """
    try:
        text = _as_str(text)
    except NoteError as exc:
        raise ValueError(ERR_BAD_CHECKPOINT.format(problem=exc)) from None
    if not text.endswith("\n"):
        raise ValueError(ERR_BAD_CHECKPOINT.format(problem="no final newline"))
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError(ERR_BAD_CHECKPOINT.format(problem="fewer than three lines"))
    origin, size_text, root_text, *extensions = lines
    if not _SIZE_RE.fullmatch(size_text):
        raise ValueError(ERR_BAD_CHECKPOINT.format(problem=f"bad tree size {size_text[:30]!r}"))
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(ERR_BAD_CHECKPOINT.format(problem="the root is not base64")) from None
    if len(root) != 32 or base64.b64encode(root).decode("ascii") != root_text:
        raise ValueError(ERR_BAD_CHECKPOINT.format(problem="the root is not 32 bytes of base64"))
    return CheckpointBody(origin, int(size_text), root, tuple(extensions))
