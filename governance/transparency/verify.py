"""Key-free verification: records, signed checkpoints, witness cosignatures and tiles.

Everything here reads public material only -- the records (from a store or a bundle), the log's
public key, checkpoints, cosigned checkpoint notes, the witnesses' verifier keys and tiles from
earlier publications. No secret key is needed or read.

The outcome (:class:`Report`) has an exit code: **0** verified, **1** an integrity failure
(``first_bad`` names the first record whose integrity fails), **2** could not check (missing
input, no witnessed checkpoint when witnesses are required, unreadable keys...).

A checkpoint note counts as *witnessed* once ``quorum`` distinct configured witnesses cosigned
the same tree head (size and root). The ledger must then hold at least that many records and
have that root; since witnesses refuse to cosign anything inconsistent with what they cosigned
before, an operator who rewrites or truncates history and re-signs cannot get it witnessed, and
the verifier finds the ledger contradicting the last witnessed tree head.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger.checkpoint import Checkpoint, verify_checkpoint
from governance.ledger.merkle import MerkleTree
from governance.ledger.note import (
    NoteError,
    Verifier,
    open_note,
    parse_checkpoint,
    parse_note,
)
from governance.ledger.records import ChainBreak
from governance.ledger.tiles import TileError, TileTree, first_difference
from governance.transparency.config import WitnessConfig

__all__ = [
    "EXIT_CANNOT_CHECK",
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "NoteSource",
    "Report",
    "Witnessed",
    "check",
    "merge_shards",
    "stray_shards",
]

EXIT_OK, EXIT_INTEGRITY, EXIT_CANNOT_CHECK = 0, 1, 2
_TIMESTAMP = "timestamp "


@dataclass
class Report:
    """What verification found (``to_dict`` for ``--json``).

    Attributes
    ----------
    ok
        Verified (``code == 0``).
    code
        0 verified, 1 integrity failure, 2 could not check.
    records
        Records that verified (the walk stops at the first bad one).
    first_bad
        The first record (seq) whose integrity fails, or ``None``.
    reason
        What is wrong or why nothing could be checked, in words.
    checkpoints
        Signed checkpoints checked (stored, exported or bundled; de-duplicated).
    witnessed_size, witnessed_root, witnessed_at
        The largest tree head cosigned by a quorum of witnesses, its root (hex) and the
        checkpoint's own timestamp; ``None`` if there is none.
    cosignatures
        Names of the witnesses whose cosignature of that tree head verified.
    quorum
        Cosignatures required.
    witnesses
        ``{witness name: "answered" or why not}`` for the witnesses asked this time.
    shard
        On a sharded ledger, the shard that failed (``reason`` names it too), else ``None``.
    shards
        On a sharded ledger, each shard checked, in order: ``shard``, ``schema``,
        ``ledger_id`` and its own report (the control shard, 0, carries the witnesses).

    ``to_dict`` adds ``answered``: the names of the witnesses that answered, sorted.
    """

    ok: bool
    code: int
    records: int = 0
    first_bad: int | None = None
    reason: str | None = None
    checkpoints: int = 0
    witnessed_size: int | None = None
    witnessed_root: str | None = None
    witnessed_at: str | None = None
    cosignatures: list[str] = field(default_factory=list)
    quorum: int = 0
    witnesses: dict[str, str] = field(default_factory=dict)
    shard: int | None = None
    shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def answered(self) -> list[str]:
        """Names of the witnesses asked this time that answered with their latest checkpoint."""
        return sorted(name for name, why in self.witnesses.items() if why == "answered")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "answered": self.answered}


@dataclass(frozen=True)
class NoteSource:
    """A cosigned checkpoint note and where it came from (a file, a witness...)."""

    where: str
    text: str


@dataclass
class Witnessed:
    """One tree head and the configured witnesses that cosigned it."""

    size: int
    root: bytes
    timestamp: str | None
    cosigners: set[str] = field(default_factory=set)
    where: list[str] = field(default_factory=list)


class _Failed(Exception):
    def __init__(self, code: int, reason: str, first_bad: int | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.first_bad = code, reason, first_bad


def _timestamp(extensions: Sequence[str]) -> str | None:
    for line in extensions:
        if line.startswith(_TIMESTAMP):
            return line[len(_TIMESTAMP) :]
    return None


def read_notes(
    notes: Iterable[NoteSource], origin: str, log: Verifier, witnesses: Sequence[Verifier]
) -> dict[tuple[int, bytes], Witnessed]:
    """Group cosigned notes by tree head, with the witnesses whose cosignature verified.

    Raises
    ------
    _Failed
        Code 1 if a note of this log is not signed by the log key or carries a bad signature
        by a known key; code 2 if a note is malformed or of another log.
    """
    heads: dict[tuple[int, bytes], Witnessed] = {}
    names = {w.name for w in witnesses}
    for note in notes:
        try:
            body = parse_checkpoint(parse_note(note.text).text)
        except ValueError as exc:
            problem = f"{note.where}: not a checkpoint note: {exc}"
            raise _Failed(EXIT_CANNOT_CHECK, problem) from None
        if body.origin != origin:
            raise _Failed(
                EXIT_CANNOT_CHECK,
                f"{note.where}: a checkpoint of another log ({body.origin!r}, not {origin!r})",
            )
        try:
            opened = open_note(note.text, [log, *witnesses])
        except NoteError as exc:
            raise _Failed(EXIT_INTEGRITY, f"{note.where}: {exc}") from None
        if opened.by(log) is None:
            raise _Failed(
                EXIT_INTEGRITY,
                f"{note.where}: the checkpoint of size {body.size} is not signed by the trusted"
                " log key (cosigned for another key: the log key was replaced?)",
            )
        head = heads.setdefault(
            (body.size, body.root), Witnessed(body.size, body.root, _timestamp(body.extensions))
        )
        head.cosigners |= {s.name for s in opened.verified if s.name in names}
        head.where.append(note.where)
    return heads


@dataclass(frozen=True)
class _Trust:
    """What names a changed record: trusted tree heads and tiles of earlier publications.

    With witnesses configured only witnessed heads are trusted (the operator holds the log key
    and could sign anything); without, every head signed by the log key.
    """

    heads: list[tuple[int, bytes]]
    tile_dirs: Sequence[Path]

    def first_changed(self, tree: MerkleTree) -> int | None:
        """The first leaf differing from tiles that match a trusted head, if any."""
        found: list[int] = []
        for directory in self.tile_dirs:
            for size, root in self.heads:
                tiles = TileTree(directory, size)
                try:
                    if size == 0 or tiles.root() != root:
                        continue
                    first = first_difference(tiles, tree, size)
                except (TileError, ValueError, OSError):  # unreadable tiles name nothing
                    continue
                if first is not None:
                    found.append(first)
        return min(found, default=None)


def _check_head(
    what: str, size: int, root: bytes, tree: MerkleTree, records: int, trust: _Trust
) -> None:
    """Raise ``_Failed`` unless the walked ledger has ``root`` at ``size``."""
    if size <= records and tree.root(size) == root:
        return
    named = trust.first_changed(tree)
    if size > records:
        first = records if named is None else min(named, records)
        raise _Failed(
            EXIT_INTEGRITY,
            f"TRUNCATION: {what} covers {size} records but the ledger holds only {records}"
            + (
                f"; record seq {named} differs from the published tiles"
                if named is not None and named < records
                else ""
            ),
            first,
        )
    if named is not None:
        raise _Failed(
            EXIT_INTEGRITY,
            f"record seq {named} differs from what {what} commits to (its leaf hash differs"
            " from the tiles published with a trusted checkpoint): the record was rewritten and"
            " the chain recomputed",
            named,
        )
    lower = max(
        (s for s, r in trust.heads if s <= size and s <= records and tree.root(s) == r),
        default=0,
    )
    raise _Failed(
        EXIT_INTEGRITY,
        f"{what}: Merkle root mismatch: a record in seq {lower}..{size - 1} was rewritten after"
        " it was signed (the chain was recomputed); tiles from an earlier publication"
        " (--tiles, with its checkpoint) name the record",
        lower,
    )


def check(
    *,
    walk: Callable[[int], tuple[MerkleTree, int]],
    origin: str,
    log_key: Ed25519PublicKey,
    log_verifier: Verifier,
    checkpoints: Sequence[tuple[str, Checkpoint]],
    notes: Sequence[NoteSource],
    config: WitnessConfig,
    answers: dict[str, str] | None = None,
    tile_dirs: Sequence[Path] = (),
) -> Report:
    """Verify a ledger's records against signed checkpoints and witnessed tree heads.

    Parameters
    ----------
    walk
        ``walk(target)`` walks every record (raising
        :class:`~governance.ledger.records.ChainBreak` at the first bad one) and returns the
        Merkle tree of the first ``target`` records (or all, if fewer) and the record count.
    origin, log_key, log_verifier
        The log's origin and trusted public key (raw and as a note verifier).
    checkpoints
        ``[(where, checkpoint)]`` signed by the log (local, exported, bundled, committed to by a
        control shard), in any order; one found in several places counts once.
    notes
        Cosigned checkpoint notes (from witnesses, files, a bundle).
    config
        The trusted witnesses and the quorum.
    answers
        ``{witness name: "answered" or error}`` of witnesses asked for their latest note.
    tile_dirs
        Tiles of earlier publications, to name the first changed record.
    """
    report = Report(ok=False, code=EXIT_CANNOT_CHECK, quorum=config.quorum)
    report.witnesses = dict(answers or {})
    unique = {(cp.size, cp.root, cp.timestamp, cp.signature): (w, cp) for w, cp in checkpoints}
    checkpoints = sorted(unique.values(), key=lambda item: item[1].size)
    try:
        heads = read_notes(notes, origin, log_verifier, config.verifiers)
        witnessed = sorted(
            (h for h in heads.values() if config.quorum and len(h.cosigners) >= config.quorum),
            key=lambda h: h.size,
        )
        for a, b in itertools.pairwise(witnessed):
            if a.size == b.size:
                raise _Failed(
                    EXIT_INTEGRITY,
                    f"FORK: witnesses cosigned two different trees of size {a.size}"
                    f" ({a.root.hex()} and {b.root.hex()})",
                )
        for where, cp in checkpoints:
            if cp.origin != origin:
                raise _Failed(EXIT_INTEGRITY, f"{where}: a checkpoint of another ledger")
            if not verify_checkpoint(cp, log_key):
                raise _Failed(
                    EXIT_INTEGRITY,
                    f"{where}: the checkpoint of size {cp.size} has an invalid signature",
                )
        sizes = [cp.size for _, cp in checkpoints] + [h.size for h in heads.values()]
        try:
            tree, records = walk(max(sizes, default=0))
        except ChainBreak as brk:
            report.records = brk.seq
            raise _Failed(EXIT_INTEGRITY, f"record seq {brk.seq}: {brk.reason}", brk.seq) from None
        report.records = records
        heads_in_order = sorted(
            [
                (
                    cp.size,
                    0,
                    f"the checkpoint of size {cp.size} signed at {cp.timestamp} ({w})",
                    cp.root,
                )
                for w, cp in checkpoints
            ]
            + [(h.size, 1, _head_text(h, config.quorum), h.root) for h in heads.values()],
            key=lambda item: (item[0], item[1]),
        )
        if config.quorum:
            trusted = [(h.size, h.root) for h in witnessed]
        else:
            trusted = [(cp.size, cp.root) for _, cp in checkpoints]
            trusted += [(h.size, h.root) for h in heads.values()]
        trust = _Trust(sorted(set(trusted)), tile_dirs)
        for size, _, what, root in heads_in_order:
            _check_head(what, size, root, tree, records, trust)
        report.checkpoints = len(checkpoints)
        if witnessed:
            top = witnessed[-1]
            report.witnessed_size = top.size
            report.witnessed_root = top.root.hex()
            report.witnessed_at = top.timestamp
            report.cosignatures = sorted(top.cosigners)
        elif config.quorum:
            best = max((len(h.cosigners) for h in heads.values()), default=0)
            raise _Failed(
                EXIT_CANNOT_CHECK,
                f"no checkpoint cosigned by {config.quorum} of the configured witnesses was"
                f" found (at most {best}); the ledger cannot be checked against them"
                + _answers_text(report.witnesses),
            )
    except _Failed as failed:
        report.code, report.reason, report.first_bad = failed.code, failed.reason, failed.first_bad
        return report
    report.ok, report.code = True, EXIT_OK
    return report


def _head_text(head: Witnessed, quorum: int) -> str:
    signers = ", ".join(sorted(head.cosigners)) or "no configured witness"
    kind = "witnessed checkpoint" if quorum and len(head.cosigners) >= quorum else "checkpoint"
    return f"the {kind} of size {head.size} ({head.where[0]}; cosigned by {signers})"


def _answers_text(answers: dict[str, str]) -> str:
    failed = {name: why for name, why in answers.items() if why != "answered"}
    if not failed:
        return ""
    return " (" + "; ".join(f"{name}: {why}" for name, why in sorted(failed.items())) + ")"


def stray_shards(
    report: Report, committed: dict[int, list[tuple[str, Checkpoint]]], k: int
) -> Report:
    """``report``, failed if the control's records commit to shards outside ``1..k-1``.

    The shard count lives in metadata outside the chain; an insider who lowers or removes it
    would have the control shard checked alone, but its verified ``shard_heads`` records
    still name every shard.
    """
    stray = sorted(i for i in committed if not 1 <= i < k)
    if not stray or not report.ok:
        return report
    why = (
        f"the ledger's records commit to shard(s) {', '.join(map(str, stray))}, but its"
        f" metadata says it has {k} shard(s)"
    )
    return replace(report, ok=False, code=EXIT_INTEGRITY, reason=why)


def merge_shards(report: Report, parts: Sequence[tuple[int, str, str, Report]]) -> Report:
    """One report over a sharded ledger from each shard's, in order (``(shard, where,
    ledger id, report)``; shard 0, the control, is ``report``, carrying the witnesses).

    Records and checkpoints add up, ``shards`` lists each shard's outcome, and the first that
    failed is the result's: ``shard``, ``first_bad``, code and a reason ``shard i (where): ``.
    """
    merged = replace(
        report,
        records=sum(r.records for *_, r in parts),
        checkpoints=sum(r.checkpoints for *_, r in parts),
        shards=[
            {**r.to_dict(), "shard": i, "schema": where, "ledger_id": lid, "shards": None}
            for i, where, lid, r in parts
        ],
    )
    i, where, _, last = parts[-1]
    if not last.ok:
        merged.ok, merged.code, merged.first_bad, merged.shard = False, last.code, last.first_bad, i
        merged.reason = f"shard {i} ({where}): {last.reason}"
    return merged
