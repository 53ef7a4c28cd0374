"""The witness's decisions: cosign a checkpoint only if it extends the last one it cosigned.

:meth:`Witness.add_checkpoint` implements ``POST /add-checkpoint`` of C2SP tlog-witness, as a
plain function from request bytes to a :class:`Reply` (the HTTP server is a thin shell around
it, :mod:`governance.witness.server`). The check of the previous size and the update of the
stored checkpoint happen under one lock, and the new state is on disk before the cosignature
is returned (see :mod:`governance.witness.store`).

Evidence is kept only for what proves that the log misbehaved: a checkpoint validly signed by
the log with the size of the one the witness last cosigned but another root -- two signed views
of one tree size, a fork -- is refused (422) and kept together with the checkpoint it
contradicts. Everything else a stranger can do with the log's *published* checkpoints is
refused but not kept: a smaller tree (409 with the cosigned size; it may be an old checkpoint
replayed) or a consistency proof that does not verify (422; the submitter, not the log,
supplies the proof). Otherwise anyone could manufacture "evidence" against an honest log.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.ledger.merkle import EMPTY_ROOT, verify_consistency
from governance.ledger.note import (
    CheckpointBody,
    NoteError,
    Signature,
    UnverifiedNoteError,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_note,
)
from governance.witness.protocol import (
    CONTENT_TYPE_SIZE,
    CONTENT_TYPE_TEXT,
    ProtocolError,
    parse_add_checkpoint,
)
from governance.witness.store import WitnessHome

__all__ = ["Reply", "Witness"]

REASON_FORK = (
    "fork: a checkpoint of size {size} with root {new} was submitted, but the witness "
    "cosigned root {old} for that size"
)
REASON_INCONSISTENT = (
    "inconsistent: the consistency proof from the cosigned size {old} to {size} does not verify"
)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer.

    Attributes
    ----------
    status
        HTTP status code.
    body
        Response body.
    content_type
        ``Content-Type`` header.
    """

    status: int
    body: str
    content_type: str = CONTENT_TYPE_TEXT


def _text(status: int, message: str) -> Reply:
    return Reply(status, message.rstrip("\n") + "\n")


class Witness:
    """A witness over its home directory.

    Parameters
    ----------
    home
        The witness home (:class:`~governance.witness.store.WitnessHome`).
    """

    def __init__(self, home: WitnessHome) -> None:
        self.home = home

    def add_checkpoint(self, body: bytes) -> Reply:
        """Handle an add-checkpoint request.

        Parameters
        ----------
        body
            The request body.

        Returns
        -------
        Reply
            200 with the cosignature line; 400 malformed; 403 bad or missing log signature;
            404 unknown log; 409 with the latest cosigned size; 422 bad consistency proof,
            wrong empty root, or a different root at the cosigned size.
        """
        try:
            request = parse_add_checkpoint(body)
            note = parse_note(request.checkpoint)
            checkpoint = parse_checkpoint(note.text)
        except (ProtocolError, ValueError) as exc:  # NoteError is a ValueError
            return _text(400, f"malformed request: {exc}")
        log = self.home.logs().get(checkpoint.origin)
        if log is None:
            return _text(404, f"unknown log {checkpoint.origin!r}")
        try:
            opened = open_note(request.checkpoint, [log])
        except UnverifiedNoteError:
            return _text(403, "the checkpoint carries no signature by the log's key")
        except NoteError as exc:
            return _text(403, f"bad log signature: {exc}")
        if request.old_size > checkpoint.size:
            return _text(400, "the old size is larger than the checkpoint's size")
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            return _text(422, "a checkpoint of size 0 must have the empty tree's root")
        with self.home.locked():
            return self._decide(
                opened.text, checkpoint, request.old_size, request.proof, opened.verified
            )

    def _decide(
        self,
        text: str,
        checkpoint: CheckpointBody,
        old_size: int,
        proof: tuple[bytes, ...],
        log_signatures: tuple[Signature, ...],
    ) -> Reply:
        """The checks against the stored state and the update (call with the lock held)."""
        origin = checkpoint.origin
        submitted = sign_note(text, [], keep=log_signatures)
        previous = self.home.latest(origin)
        latest = parse_checkpoint(parse_note(previous).text) if previous else None
        latest_size = latest.size if latest else 0
        if latest is not None and checkpoint.size == latest.size and checkpoint.root != latest.root:
            # Two checkpoints of one size, both signed by the log: proof of a fork, whoever sent it.
            reason = REASON_FORK.format(
                size=checkpoint.size, new=checkpoint.root.hex(), old=latest.root.hex()
            )
            self.home.keep_evidence(origin, previous, submitted, reason)
            return _text(422, reason)
        if old_size != latest_size:
            return Reply(409, f"{latest_size}\n", CONTENT_TYPE_SIZE)
        if old_size == 0:
            if proof:
                return _text(422, "no consistency proof is needed (or allowed) from size 0")
        elif latest is not None and not verify_consistency(
            old_size, checkpoint.size, latest.root, checkpoint.root, proof
        ):
            # Not evidence: the proof is the submitter's, and anyone can send a junk one.
            return _text(422, REASON_INCONSISTENT.format(old=old_size, size=checkpoint.size))
        cosigned = sign_note(text, [self.home.signer], keep=log_signatures)
        self.home.commit(origin, cosigned)  # durable before the cosignature leaves
        mine = parse_note(cosigned).signatures[-1]  # new signatures come last
        return Reply(200, mine.line())

    def checkpoint(self, digest: str) -> Reply:
        """Handle ``GET /<sha256(origin)>/checkpoint``: the latest cosigned checkpoint."""
        note = self.home.latest_by_hash(digest)
        if note is None:
            return _text(404, "this witness has cosigned no checkpoint for that log")
        return Reply(200, note)
