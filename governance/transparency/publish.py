"""Publishing a checkpoint: sign it, write its tiles, have the witnesses cosign it.

Never on a decision's path: decisions are appended whatever the witnesses do; this runs from
``governance audit checkpoint``, once or every N seconds (:func:`keep_publishing`,
``governance audit checkpoint --every N``), in its own process. A checkpoint is *published*
once ``quorum`` witnesses cosigned it; the note with every cosignature received is kept in the
checkpoint folder's ``cosigned/`` (even below the quorum: a later round adds to it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from governance.ledger import Checkpoint, Ledger
from governance.transparency.config import WitnessConfig
from governance.transparency.sources import save_cosigned
from governance.witness.client import WitnessClient, gather

__all__ = ["Publication", "keep_publishing", "publish"]


@dataclass
class Publication:
    """The outcome of :func:`publish`.

    Attributes
    ----------
    checkpoint
        The signed checkpoint.
    cosignatures
        Names of the witnesses that cosigned it.
    errors
        ``{witness name: why it did not cosign}``.
    quorum
        Cosignatures needed.
    note_path
        Where the cosigned note is kept (``None`` when no witness cosigned).
    tiles_written
        Tile files written now.
    """

    checkpoint: Checkpoint
    cosignatures: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    quorum: int = 0
    note_path: Path | None = None
    tiles_written: int = 0

    @property
    def published(self) -> bool:
        """Whether ``quorum`` witnesses cosigned (always, with no witnesses configured)."""
        return len(self.cosignatures) >= self.quorum


def publish(
    ledger: Ledger,
    config: WitnessConfig,
    *,
    tiles_dir: Path | None = None,
    timeout: float = 30.0,
) -> Publication:
    """Sign a checkpoint of all records, write its tiles and gather cosignatures.

    Parameters
    ----------
    ledger
        The ledger (its signing key signs the checkpoint).
    config
        The witnesses and quorum.
    tiles_dir
        Where to write the C2SP tiles (``None``: no tiles).
    timeout
        Seconds to wait for all witnesses together.
    """
    previous = ledger.checkpoint_dir.latest()
    cp = ledger.checkpoint()
    written = 0
    if tiles_dir is not None:
        since = previous.size if previous is not None and previous.size <= cp.size else 0
        written = len(ledger.tree.write_tiles(tiles_dir, cp.size, since=since))
    result = Publication(cp, quorum=config.quorum, tiles_written=written)
    if not config.witnesses:
        return result
    clients = [WitnessClient(w.url, w.vkey, timeout=timeout) for w in config.witnesses]
    try:
        gathered = gather(
            clients,
            cp.to_note(),
            cp.size,
            lambda old: ledger.tree.consistency_hashes(old, cp.size),
            timeout=timeout,
        )
    finally:
        for client in clients:
            client.close()
    result.cosignatures = sorted(gathered.cosignatures)
    result.errors = dict(gathered.errors)
    if gathered.cosignatures:
        result.note_path = save_cosigned(
            ledger.checkpoint_dir.path, cp.to_note(), cp.size, list(gathered.cosignatures.values())
        )
    return result


def keep_publishing(
    ledger: Ledger,
    config: Callable[[], WitnessConfig],
    *,
    every: float,
    stop: threading.Event,
    tiles_dir: Path | None = None,
    timeout: float = 30.0,
    on_round: Callable[[Publication], None] = lambda _: None,
) -> int:
    """Publish a checkpoint every ``every`` seconds until ``stop`` is set; return the rounds.

    A round is skipped when the ledger has not grown since a checkpoint that was published
    (one that was not is offered to the witnesses again). The configuration is re-read every
    round, so ``governance witness add`` takes effect without a restart.

    Parameters
    ----------
    ledger
        The ledger.
    config
        Returns the current witness configuration (raise ``ValueError`` to fail the loop).
    every
        Seconds from the start of one round to the start of the next.
    stop
        Set it to end the loop (between rounds, or while waiting).
    tiles_dir, timeout
        As for :func:`publish`.
    on_round
        Called with each round's publication.
    """
    if every <= 0:
        raise ValueError(f"--every must be a positive number of seconds, not {every}")
    rounds = 0
    published_size: int | None = None
    while not stop.is_set():
        started = time.monotonic()
        if ledger.size() != published_size:
            result = publish(ledger, config(), tiles_dir=tiles_dir, timeout=timeout)
            published_size = result.checkpoint.size if result.published else None
            rounds += 1
            on_round(result)
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return rounds
