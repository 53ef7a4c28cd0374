"""The C2SP tlog-witness wire format, shared by the witness and its clients.

``POST <prefix>/add-checkpoint`` carries (https://c2sp.org/tlog-witness)::

    old <previous size>\\n
    <base64 consistency proof hash>\\n      zero to 63 lines
    \\n
    <checkpoint signed note>

and is answered with ``200`` and cosignature lines, or ``409`` with the witness's latest size
(``text/x.tlog.size``), ``422`` (bad consistency proof / fork), ``404`` (unknown log), ``403``
(bad log signature) or ``400`` (malformed). ``GET <prefix>/<sha256(origin)>/checkpoint`` returns
the latest cosigned checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ADD_CHECKPOINT_PATH",
    "CONTENT_TYPE_SIZE",
    "CONTENT_TYPE_TEXT",
    "MAX_BODY",
    "MAX_PROOF_LINES",
    "AddCheckpointRequest",
    "ProtocolError",
    "format_add_checkpoint",
    "parse_add_checkpoint",
]

ADD_CHECKPOINT_PATH = "/add-checkpoint"
CONTENT_TYPE_SIZE = "text/x.tlog.size"
CONTENT_TYPE_TEXT = "text/plain; charset=utf-8"
MAX_PROOF_LINES = 63
MAX_BODY = 64 * 1024
"""Largest request body a witness reads (a checkpoint with 100 signatures fits easily)."""

_OLD_RE = re.compile(r"old (0|[1-9][0-9]*)")


class ProtocolError(ValueError):
    """A malformed add-checkpoint request (answered with 400)."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint request.

    Attributes
    ----------
    old_size
        The size of the checkpoint the client believes the witness last cosigned.
    proof
        Consistency proof from ``old_size`` to the checkpoint's size.
    checkpoint
        The checkpoint, a signed note (not yet verified).
    """

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    """Return the request body of an add-checkpoint call."""
    if len(proof) > MAX_PROOF_LINES:
        raise ProtocolError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes")
    lines = [f"old {int(old_size)}\n", *(base64.b64encode(h).decode() + "\n" for h in proof)]
    return ("".join(lines) + "\n" + checkpoint).encode()


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body.

    Raises
    ------
    ProtocolError
        If the body is not ``old N``, proof lines, a blank line and a note.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the request is not UTF-8") from None
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise ProtocolError("no blank line before the checkpoint")
    lines = head.split("\n")
    match = _OLD_RE.fullmatch(lines[0])
    if match is None:
        raise ProtocolError("the first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ProtocolError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("a consistency proof line is not base64") from None
        if len(value) != 32:
            raise ProtocolError("a consistency proof line is not a 32-byte hash")
        proof.append(value)
    return AddCheckpointRequest(int(match.group(1)), tuple(proof), checkpoint)
