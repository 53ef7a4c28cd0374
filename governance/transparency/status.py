"""How the ledger's witnessing stands, for monitoring: read-only, from kept cosigned notes.

``/metrics`` and the integrity page show the age of the newest *witnessed* checkpoint (one a
quorum of the configured witnesses cosigned) and which witnesses answered. Both come from what
``governance audit checkpoint`` keeps in the checkpoint folder's ``cosigned/`` -- notes whose
signatures are checked here against the log's and the witnesses' public keys -- so a scrape
neither writes anything nor waits on a witness.

A witness *answered* when its cosignature is on the newest checkpoint the ledger signed: a
witness that was down (or refused) in the last round has none there, and its latest cosigned
size shows how far behind it is.

>>> monitor = WitnessMonitor.for_ledger(ledger)   # <home>/witnesses.json, its checkpoints
>>> status = monitor.status(ledger.checkpoint_dir.latest())
>>> status.witnessed_size, status.age_seconds(), [w.answered for w in status.witnesses]
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger.checkpoint import verifier_key
from governance.ledger.note import (
    NoteError,
    Verifier,
    cosignature_timestamp,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
)
from governance.transparency.config import WITNESSES_FILE, WitnessConfig
from governance.transparency.sources import COSIGNED_DIR, NOTE_RE

__all__ = ["WitnessMonitor", "WitnessState", "WitnessStatus", "seconds_since"]

_TIMESTAMP = "timestamp "


def seconds_since(timestamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``timestamp`` (ISO 8601 with a time zone) to ``now`` (default: now).

    ``None`` if there is no time or the text is not such a time: a checkpoint's ``timestamp``
    line is the log's own text, which a verifier reads from a bundle or a witness.
    """
    if timestamp is None:
        return None
    try:
        then = datetime.fromisoformat(timestamp)
        if then.tzinfo is None:
            return None
        return ((now or datetime.now(UTC)) - then).total_seconds()
    except (ValueError, OverflowError):
        return None


class _Head(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def root(self) -> bytes: ...


@dataclass(frozen=True)
class WitnessState:
    """One configured witness, as the kept notes show it.

    Attributes
    ----------
    name, url
        The witness.
    answered
        Its cosignature is on the newest checkpoint the ledger signed.
    cosigned_size
        The largest tree size it cosigned (``None``: none kept).
    cosigned_at
        When it cosigned that one (its cosignature's time, UTC ISO 8601), or ``None``.
    """

    name: str
    url: str
    answered: bool
    cosigned_size: int | None
    cosigned_at: str | None


@dataclass(frozen=True)
class WitnessStatus:
    """The witnessing of one ledger.

    Attributes
    ----------
    quorum
        Cosignatures that publish a checkpoint (0: no witnesses configured).
    witnesses
        Every configured witness, in configuration order.
    newest_size
        Size of the newest checkpoint the ledger signed (``None``: none yet).
    witnessed_size, witnessed_at
        The newest checkpoint a quorum cosigned: its size and its own signing time (``None``
        when there is none, or no quorum is configured).
    witnessed_by
        Names of the witnesses whose cosignature of it verified.
    """

    quorum: int
    witnesses: list[WitnessState] = field(default_factory=list)
    newest_size: int | None = None
    witnessed_size: int | None = None
    witnessed_at: str | None = None
    witnessed_by: list[str] = field(default_factory=list)

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the newest witnessed checkpoint was signed (``None``: there is none,
        or its time is not one: see :func:`seconds_since`)."""
        age = seconds_since(self.witnessed_at, now)
        return None if age is None else max(0.0, age)

    @property
    def answered(self) -> list[str]:
        """Names of the witnesses that cosigned the newest checkpoint."""
        return [w.name for w in self.witnesses if w.answered]


@dataclass(frozen=True)
class _Note:
    size: int
    root: bytes
    timestamp: str | None
    cosigners: dict[str, str]  # witness name -> cosignature time (ISO)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WitnessMonitor:
    """Reads the witness configuration and the kept cosigned notes of one ledger.

    Parameters
    ----------
    config_path
        The ledger's ``witnesses.json`` (re-read at every call: ``witness add`` takes effect).
    folder
        The ledger's checkpoint folder (``<home>/checkpoints/<ledger id>``).
    origin
        The log's origin.
    log_key
        The log's public key: notes not signed by it are ignored.

    Notes are parsed and their signatures checked once per file version (name, size, mtime)
    and remembered; the folder is read newest first and only as far as needed.
    """

    def __init__(
        self, config_path: Path, folder: Path, origin: str, log_key: Ed25519PublicKey
    ) -> None:
        self.config_path = Path(config_path)
        self.folder = Path(folder)
        self.origin = origin
        self.log = parse_verifier_key(verifier_key(origin, log_key))
        self._lock = threading.Lock()
        self._notes: dict[tuple[str, int, int, tuple[str, ...]], _Note | None] = {}

    @classmethod
    def for_ledger(cls, ledger: Any) -> WitnessMonitor:
        """The monitor of a :class:`~governance.ledger.Ledger` (its home's witnesses.json)."""
        folder = ledger.checkpoint_dir.path
        return cls(ledger.home / WITNESSES_FILE, folder, ledger.origin, ledger.public_key)

    def _read(self, path: Path, witnesses: list[Verifier]) -> _Note | None:
        """The note at ``path`` with its verified cosigners; ``None`` if unusable."""
        try:
            st = path.stat()
        except OSError:
            return None
        key = (path.name, st.st_size, st.st_mtime_ns, tuple(w.vkey for w in witnesses))
        with self._lock:
            if key in self._notes:
                return self._notes[key]
        note: _Note | None = None
        try:
            opened = open_note(path.read_text(encoding="utf-8"), [self.log, *witnesses])
            body = parse_checkpoint(opened.text)
        except (OSError, UnicodeDecodeError, NoteError, ValueError):
            opened = None
        if opened is not None and body.origin == self.origin and opened.by(self.log) is not None:
            names = {w.name for w in witnesses}
            stamp = next(
                (x[len(_TIMESTAMP) :] for x in body.extensions if x.startswith(_TIMESTAMP)), None
            )
            cosigners = {
                s.name: _iso(cosignature_timestamp(s)) for s in opened.verified if s.name in names
            }
            note = _Note(body.size, body.root, stamp, cosigners)
        with self._lock:
            if len(self._notes) > 4096:
                self._notes.clear()
            self._notes[key] = note
        return note

    def status(self, newest: _Head | None) -> WitnessStatus:
        """How witnessing stands, given the newest checkpoint the ledger signed.

        Raises
        ------
        ValueError
            If ``witnesses.json`` is malformed.
        """
        config = WitnessConfig.load(self.config_path)
        witnesses = [w.verifier for w in config.witnesses]
        directory = self.folder / COSIGNED_DIR
        try:
            names = sorted((n for n in os.listdir(directory) if NOTE_RE.fullmatch(n)), reverse=True)
        except FileNotFoundError:
            names = []
        latest: dict[str, tuple[_Note, str]] = {}  # witness -> its largest cosigned note
        answered: set[str] = set()
        witnessed: _Note | None = None
        for name in names:
            note = self._read(directory / name, witnesses)
            if note is None:
                continue
            if newest is not None and (note.size, note.root) == (newest.size, newest.root):
                answered |= set(note.cosigners)
            for who, at in note.cosigners.items():
                latest.setdefault(who, (note, at))
            if witnessed is None and config.quorum and len(note.cosigners) >= config.quorum:
                witnessed = note
            below_newest = newest is None or note.size < newest.size
            if below_newest and len(latest) == len(witnesses) and witnessed is not None:
                break  # older notes cannot change the answer
        states = [
            WitnessState(
                w.name,
                w.url,
                w.name in answered,
                latest[w.name][0].size if w.name in latest else None,
                latest[w.name][1] if w.name in latest else None,
            )
            for w in config.witnesses
        ]
        return WitnessStatus(
            quorum=config.quorum,
            witnesses=states,
            newest_size=None if newest is None else newest.size,
            witnessed_size=None if witnessed is None else witnessed.size,
            witnessed_at=None if witnessed is None else witnessed.timestamp,
            witnessed_by=[] if witnessed is None else sorted(witnessed.cosigners),
        )
