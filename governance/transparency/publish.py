"""Publishing a checkpoint: sign it, write its tiles, have the witnesses cosign it.

Never on a decision's path: decisions are appended whatever the witnesses do; this runs from
``governance audit checkpoint`` (or a schedule). A checkpoint is *published* once ``quorum``
witnesses cosigned it; the note with every cosignature received is kept in the checkpoint
folder's ``cosigned/`` (even below the quorum: a later round adds to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from governance.ledger import Checkpoint, Ledger
from governance.transparency.config import WitnessConfig
from governance.transparency.sources import save_cosigned
from governance.witness.client import WitnessClient, gather

__all__ = ["Publication", "publish"]


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
