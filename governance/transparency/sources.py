"""Where verification material comes from: exported checkpoint folders, cosigned notes, witnesses.

Layout of a ledger's exported checkpoints (``<home>/checkpoints/<ledger id>/``)::

    000000001024.json             a signed checkpoint (governance.checkpoint/v1)
    cosigned/000000001024-<h>.note  the same tree head as a C2SP signed note with the witnesses'
                                  cosignatures (<h>: 16 hex digits of the note text's SHA-256)

``--checkpoints DIR`` accepts either the ``checkpoints/`` folder (as the README says to copy it,
one subfolder per ledger id) or the ledger's own subfolder. An empty, missing or foreign folder
is an error (exit 2): verifying against nothing is never reported as verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from governance.ledger.checkpoint import Checkpoint, CheckpointDirectory
from governance.ledger.note import NoteError, Signature, parse_note, sign_note
from governance.transparency.config import WitnessConfig, WitnessEntry
from governance.transparency.verify import NoteSource
from governance.witness.client import WitnessClient, WitnessError

__all__ = [
    "COSIGNED_DIR",
    "NOTE_RE",
    "CannotCheck",
    "fetch_witness_notes",
    "load_folder",
    "local_notes",
    "resolve_folder",
    "save_cosigned",
]

COSIGNED_DIR = "cosigned"
_CHECKPOINT_RE = re.compile(r"\d{12,}\.json")
NOTE_RE = re.compile(r"\d{12,}-[0-9a-f]{16}\.note")
_LEDGER_ID_RE = re.compile(r"[0-9a-f]{32}")


class CannotCheck(ValueError):
    """Verification input is missing, empty, foreign or unreadable (exit code 2)."""


def _has_checkpoints(path: Path) -> bool:
    return path.is_dir() and any(_CHECKPOINT_RE.fullmatch(p.name) for p in path.iterdir())


def resolve_folder(path: Path, ledger_id: str) -> Path:
    """Return the folder holding this ledger's exported checkpoints inside ``path``.

    Raises
    ------
    CannotCheck
        If ``path`` is missing, not a folder, empty, or holds only other ledgers' checkpoints.
    """
    path = Path(path)
    if not path.exists():
        raise CannotCheck(f"--checkpoints {path}: no such folder")
    if not path.is_dir():
        raise CannotCheck(f"--checkpoints {path}: not a folder")
    if (path / ledger_id).is_dir():
        path = path / ledger_id
    if _has_checkpoints(path):
        if path.name != ledger_id and _LEDGER_ID_RE.fullmatch(path.name):
            raise CannotCheck(
                f"--checkpoints {path}: checkpoints of ledger {path.name}, not {ledger_id}"
            )
        return path
    others = sorted(p.name for p in path.iterdir() if _LEDGER_ID_RE.fullmatch(p.name))
    if others:
        raise CannotCheck(
            f"--checkpoints {path}: holds checkpoints of other ledgers ({', '.join(others)}),"
            f" none of ledger {ledger_id}"
        )
    raise CannotCheck(
        f"--checkpoints {path}: no exported checkpoints (files like 000000001024.json) in it"
    )


def local_notes(folder: Path) -> list[NoteSource]:
    """The cosigned notes kept in a checkpoint folder's ``cosigned/`` (none if absent).

    Raises
    ------
    CannotCheck
        If a note cannot be read as UTF-8 text.
    """
    directory = Path(folder) / COSIGNED_DIR
    if not directory.is_dir():
        return []
    notes = []
    for p in sorted(directory.iterdir()):
        if NOTE_RE.fullmatch(p.name):
            try:
                notes.append(NoteSource(str(p), p.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise CannotCheck(f"{p}: unreadable note: {exc}") from None
    return notes


def load_folder(folder: Path, origin: str) -> tuple[list[tuple[str, Checkpoint]], list[NoteSource]]:
    """Read a ledger's checkpoint folder: its signed checkpoints and cosigned notes.

    Raises
    ------
    CannotCheck
        If a file is malformed or the checkpoints are of another origin.
    """
    try:
        checkpoints = CheckpointDirectory(folder).all()
    except ValueError as exc:
        raise CannotCheck(f"{folder}: {exc}") from None
    foreign = sorted({cp.origin for cp in checkpoints if cp.origin != origin})
    if foreign:
        raise CannotCheck(f"{folder}: checkpoints of another ledger ({', '.join(foreign)})")
    return [(f"exported to {folder}", cp) for cp in checkpoints], local_notes(folder)


def save_cosigned(folder: Path, note: str, size: int, cosignatures: Sequence[Signature]) -> Path:
    """Keep a checkpoint note with its cosignatures (merged with any kept before); return it.

    The file is written atomically; signatures already in a kept file are preserved.
    """
    parsed = parse_note(note)
    digest = hashlib.sha256(parsed.text.encode()).hexdigest()[:16]
    directory = Path(folder) / COSIGNED_DIR
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{size:012d}-{digest}.note"
    keep = list(parsed.signatures)
    if target.exists():
        with contextlib.suppress(NoteError):  # a damaged earlier copy is replaced
            keep += parse_note(target.read_text(encoding="utf-8")).signatures
    keep += cosignatures
    unique: dict[str, Signature] = {s.line(): s for s in keep}
    text = sign_note(parsed.text, [], keep=tuple(unique.values()))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".note-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def fetch_witness_notes(
    config: WitnessConfig, origin: str, *, timeout: float = 10.0
) -> tuple[list[NoteSource], dict[str, str]]:
    """Ask every configured witness for the latest checkpoint it cosigned for ``origin``.

    Returns
    -------
    tuple
        The notes served (unverified; :func:`~governance.transparency.verify.check` verifies
        them) and ``{witness name: "answered" or why not}``.
    """
    if not config.witnesses:
        return [], {}

    def ask(entry: WitnessEntry) -> tuple[str, str | None, str]:
        client = WitnessClient(entry.url, entry.vkey, timeout=timeout)
        try:
            note = client.latest(origin)
        except WitnessError as exc:
            return client.name, None, str(exc)
        finally:
            client.close()
        if note is None:
            return client.name, None, "has cosigned no checkpoint of this ledger"
        return client.name, note, "answered"

    with ThreadPoolExecutor(max_workers=len(config.witnesses)) as pool:
        results = list(pool.map(ask, config.witnesses))
    notes = [NoteSource(f"witness {name}", note) for name, note, _ in results if note]
    return notes, {name: why for name, _, why in results}
