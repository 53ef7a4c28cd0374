"""An audit bundle's ``records.jsonl`` as chain rows, from any line, in any process.

:func:`bundle_row` turns one bundled record into the row the
:class:`~governance.ledger.records.ChainWalker` checks (its columns as the record itself states
them); :class:`BundleRows` streams them from a known line on, so that a helper process
(:class:`~governance.ledger._verify._VerifyHelper`) can walk the second half of a bundle while
this one walks the first; :func:`split_point` finds where that half starts.

It lives in the ledger package (not ``governance.transparency``) so that a helper process imports
only the ledger's modules.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from governance.ledger.canonical import parse_json
from governance.ledger.records import index_columns, record_hash, subject_tag
from governance.ledger.store import ChainSource

__all__ = ["BundleRows", "Split", "bundle_row", "split_point"]

_BATCH = 4096
_TEXT_OR_NULL = (str, type(None))


def _parsed_row(data: bytes, v1: bool) -> tuple[Any, ...]:
    """``(id, type, ts, subject_key, tag, name, version, ref)`` with the standard library's parser.

    The reference: whatever the fast path in :func:`bundle_row` cannot vouch for comes here.
    """
    try:
        value = parse_json(data)
        rid, rtype, rts = (str(value[k]).encode() for k in ("id", "type", "ts"))
        if v1:
            sk, name, version, ref = index_columns(str(value["type"]), value["body"])
        else:
            idx = value["idx"]
            sk, name, version, ref = (idx.get(k) for k in ("subject", "model", "version", "ref"))
        tag = subject_tag(sk) if isinstance(sk, str) else None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return (b"", b"", b"", None, None, None, None, None)  # not a record: the walker says so
    return (rid, rtype, rts, sk, tag, name, version, ref)


def bundle_row(seq: int, data: bytes, stored: bytes | None, v1: bool) -> tuple[Any, ...]:
    """A chain row for a bundled record: its columns as the record itself states them.

    Parameters
    ----------
    seq
        The record's line number in ``records.jsonl`` (its position in the chain).
    data
        The line without its newline.
    stored
        The leaf hash published for it (tiles), or ``None`` to use the record's own hash.
    v1
        Record format 1 (index columns re-derived from the body).

    Returns
    -------
    tuple
        ``(seq, data, hash, id, type, ts, subject_key, subject_tag, model_name, model_version,
        ref)``; a line that is not a record gets empty id/type/ts, which the walker reports.

    Notes
    -----
    Format 2 records are parsed with orjson (about 5x faster than ``json``). Its results are
    used only when the parse succeeded and every value taken from the record (id, type, ts and
    the four ``idx`` members) is a string or null: orjson accepts a subset of what ``json``
    accepts (strict RFC 8259, no lone surrogates, no byte-order mark, no overflowing numbers)
    and both keep the last of duplicate keys, so for such values the two agree exactly. Anything
    else (integers beyond 64 bits, which orjson turns into floats, a parse error, another type)
    is parsed again with the standard library, the reference.
    """
    columns: tuple[Any, ...] | None = None
    if not v1:
        try:
            value = orjson.loads(data)
            rid, rtype, rts, idx = value["id"], value["type"], value["ts"], value["idx"]
            sk, name = idx.get("subject"), idx.get("model")
            version, ref = idx.get("version"), idx.get("ref")
            texts = _TEXT_OR_NULL
            if (
                type(rid) in texts
                and type(rtype) in texts
                and type(rts) in texts
                and type(sk) in texts
                and type(name) in texts
                and type(version) in texts
                and type(ref) in texts
            ):
                tag = subject_tag(sk) if sk is not None else None
                columns = (
                    str(rid).encode(),
                    str(rtype).encode(),
                    str(rts).encode(),
                    sk,
                    tag,
                    name,
                    version,
                    ref,
                )
        except (ValueError, TypeError, KeyError, AttributeError):
            columns = None  # orjson.JSONDecodeError is a ValueError
    if columns is None:
        columns = _parsed_row(data, v1)
    return (seq, data, record_hash(data) if stored is None else stored, *columns)


class Split(NamedTuple):
    """Where a bundle's second half starts: seq ``seq`` at byte ``offset``.

    ``before`` is the line of record ``seq - 1`` (without its newline).
    """

    seq: int
    offset: int
    before: bytes


def split_point(path: Path) -> Split | None:
    """The first line starting at or after the middle byte of ``path`` (``None``: no such line).

    Its seq is the number of newlines before it (counted in C, at the speed of reading).
    """
    with Path(path).open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 2:
            return None
        fh.seek(size // 2)
        fh.readline()  # the rest of the line the middle falls in
        offset = fh.tell()
        if offset >= size:
            return None
        fh.seek(0)
        seq, left = 0, offset
        while left:
            chunk = fh.read(min(left, 1 << 24))
            if not chunk:
                return None
            seq += chunk.count(b"\n")
            left -= len(chunk)
        if seq == 0:
            return None
        window = 4096
        while True:  # the line before: back from its newline (at offset - 1) to the one before
            begin = max(0, offset - 1 - window)
            fh.seek(begin)
            tail = fh.read(offset - 1 - begin)
            cut = tail.rfind(b"\n")
            if cut >= 0 or begin == 0:
                return Split(seq, offset, tail[cut + 1 :])
            window *= 4


def _lines(path: Path, offset: int, block: int = 1 << 22) -> Iterator[bytes]:
    """The lines of ``path`` from byte ``offset``, without their newlines (read in blocks)."""
    with Path(path).open("rb") as fh:
        fh.seek(offset)
        rest = b""
        while True:
            chunk = fh.read(block)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


class BundleRows(ChainSource):
    """A picklable source of chain rows of a bundle's ``records.jsonl``.

    Parameters
    ----------
    path
        The ``records.jsonl`` file.
    v1
        Record format 1.
    starts
        ``{seq: byte offset}`` of the lines rows may start at (seq 0 is at offset 0).
    leaves
        Published leaf hashes (32 bytes each, packed) of records ``leaves_from`` onwards, used as
        the stored hashes; records past them are checked against their own hash.
    leaves_from
        The seq of the first of ``leaves``.
    """

    def __init__(
        self,
        path: Path,
        v1: bool,
        starts: dict[int, int] | None = None,
        leaves: bytes | None = None,
        leaves_from: int = 0,
    ) -> None:
        self.path = Path(path)
        self.v1 = v1
        self.starts = {0: 0, **(starts or {})}
        self.leaves = leaves
        self.leaves_from = leaves_from

    def rows(
        self, start: int = 0, stop: int | None = None, *, deep: bool = False, batch: int = _BATCH
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield rows of records ``[start, stop)`` (to the end if ``stop`` is ``None``).

        Raises
        ------
        ValueError
            If ``start`` is not one of ``starts``.
        """
        if start not in self.starts:
            raise ValueError(f"no known line offset for seq {start}")
        v1, row_of = self.v1, bundle_row
        leaves, first = self.leaves, self.leaves_from
        have = 0 if leaves is None else len(leaves) // 32 + first
        out: list[tuple[Any, ...]] = []
        seq = start
        for data in _lines(self.path, self.starts[start]):
            if stop is not None and seq >= stop:
                break
            if leaves is not None and first <= seq < have:
                at = (seq - first) * 32
                stored: bytes | None = leaves[at : at + 32]
            else:
                stored = None
            out.append(row_of(seq, data, stored, v1))
            seq += 1
            if len(out) >= batch:
                yield out
                out = []
        if out:
            yield out

    def hashes(
        self, start: int = 0, stop: int | None = None, *, batch: int = 65536
    ) -> Iterator[list[bytes]]:
        """Yield the records' own hashes (``SHA-256(0x00 || line)``) in seq order."""
        for rows in self.rows(start, stop, batch=batch):
            yield [record_hash(row[1]) for row in rows]
