"""C2SP tlog-tiles: the Merkle tree as static files anyone can copy, host and check.

A *tile* (https://c2sp.org/tlog-tiles) is a run of up to 256 consecutive hashes at one tile
level: at level ``L`` the ``i``-th hash of tile ``N`` is the RFC 9162 hash of the complete
subtree of leaves ``[(N*256 + i) * 256**L, (N*256 + i + 1) * 256**L)``. Level 0 tiles hold leaf
hashes (for the ledger: record hashes). A full tile is 8,192 bytes; the rightmost tile of a
level is *partial* (``.p/<width>``) until it fills up. Paths::

    tile/<L>/<N>[.p/<W>]        N as 3-digit groups, all but the last prefixed with x:
    tile/0/x001/x234/067        (tile 1,234,067 of level 0)
    tile/1/005.p/17             (tile 5 of level 1, 17 hashes so far)

A tree of any size is fully described by its tiles, so a copy of the tile directory taken at
one publication lets a verifier later find *which* leaf changed: :func:`first_difference`
walks down from the roots of the tree's complete subtrees to the first leaf whose hash differs,
reading ``O(log n)`` hashes.

Entry bundles (``tile/entries/...``) are not written: the records are exported separately (they
carry pseudonymous subject keys and encrypted PII, so publishing them is the operator's
decision, and the spec's 16-bit length prefix cannot hold every record). Tiles hold only
hashes.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from governance.ledger.merkle import EMPTY_ROOT, HASH_SIZE, MerkleTree, node_hash

__all__ = [
    "ENTRIES_LEVEL",
    "ERR_BAD_TILE",
    "ERR_BAD_TILE_PATH",
    "ERR_TILE_CONFLICT",
    "ERR_TILE_MISSING",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "SubtreeHashes",
    "Tile",
    "TileError",
    "TileTree",
    "changed_tiles",
    "first_difference",
    "new_tiles",
    "parse_tile_path",
    "root_of",
    "tile_data",
    "tiles_for_size",
    "write_tiles",
]

TILE_HEIGHT = 8
"""Tree levels per tile level (C2SP: 8)."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile (256)."""
ENTRIES_LEVEL = -1
"""The :attr:`Tile.level` of an entry bundle (``tile/entries/...``)."""

ERR_BAD_TILE_PATH = "invalid tile path {path!r}"
ERR_BAD_TILE = "{path}: a tile of width {width} must be {expected} bytes, found {found}"
ERR_TILE_MISSING = "tile {path} is missing from {directory}"
ERR_TILE_CONFLICT = (
    "{path} already exists with other contents: a published tile never changes, so the tree "
    "it describes is not the tree being written (history was rewritten, or another log's tiles "
    "are in this directory); refusing to overwrite"
)

_LEVEL_RE = re.compile(r"0|[1-9][0-9]?")
_WIDTH_RE = re.compile(r"[1-9][0-9]{0,2}")


class TileError(ValueError):
    """A tile is missing, malformed or conflicts with a published one."""


def _encode_index(index: int) -> str:
    digits = f"{index:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


@dataclass(frozen=True, order=True)
class Tile:
    """One tile: ``width`` hashes at tile level ``level``, tile number ``index``.

    Attributes
    ----------
    level
        Tile level (0 for leaf hashes), or :data:`ENTRIES_LEVEL` for an entry bundle.
    index
        Tile number within the level.
    width
        Number of hashes, 1..256 (256 for a full tile).
    """

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= 63 or self.index < 0:
            raise ValueError(ERR_BAD_TILE_PATH.format(path=(self.level, self.index)))
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(ERR_BAD_TILE_PATH.format(path=(self.level, self.index, self.width)))

    @property
    def full(self) -> bool:
        """Whether the tile is full (256 hashes)."""
        return self.width == TILE_WIDTH

    def path(self) -> str:
        """Return the tile's path, e.g. ``tile/0/x001/x234/067.p/5``."""
        level = "entries" if self.level == ENTRIES_LEVEL else str(self.level)
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{_encode_index(self.index)}{suffix}"


def parse_tile_path(path: str) -> Tile:
    """Parse a tile path (the inverse of :meth:`Tile.path`; only canonical paths).

    Raises
    ------
    TileError
        If ``path`` is not a canonical tile path (:data:`ERR_BAD_TILE_PATH`).
    """
    bad = TileError(ERR_BAD_TILE_PATH.format(path=path))
    if not isinstance(path, str):
        raise bad
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise bad
    if parts[1] == "entries":
        level = ENTRIES_LEVEL
    elif _LEVEL_RE.fullmatch(parts[1]) and int(parts[1]) <= 63:
        level = int(parts[1])
    else:
        raise bad
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH_RE.fullmatch(rest[-1]) or int(rest[-1]) >= TILE_WIDTH:
            raise bad
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    digits = ""
    for n, group in enumerate(rest):
        last = n == len(rest) - 1
        body = group if last else group[1:]
        if (not last and not group.startswith("x")) or len(body) != 3 or not body.isdigit():
            raise bad
        digits += body
    try:
        tile = Tile(level, int(digits), width)
    except ValueError:
        raise bad from None
    if tile.path() != path:  # e.g. x000/005 for 5: not canonical
        raise bad
    return tile


def _tiles_at_level(count: int, level: int, width: int) -> Iterator[Tile]:
    """The tiles holding ``count`` hashes at ``level`` (full ones, then the partial one)."""
    full, rest = divmod(count, width)
    for index in range(full):
        yield Tile(level, index)
    if rest:
        yield Tile(level, full, rest)


def tiles_for_size(size: int) -> list[Tile]:
    """Return every tile (full and partial) of a tree of ``size`` leaves, level by level.

    Parameters
    ----------
    size
        Tree size.

    Returns
    -------
    list[Tile]
        E.g. for 70,000 leaves: 273 full and one 112-wide tile at level 0, one full and one
        17-wide at level 1, one 1-wide at level 2.
    """
    tiles: list[Tile] = []
    level = 0
    while count := size >> (TILE_HEIGHT * level):
        tiles += _tiles_at_level(count, level, TILE_WIDTH)
        level += 1
    return tiles


def new_tiles(old_size: int, new_size: int) -> list[Tile]:
    """Return the tiles of a tree of ``new_size`` leaves that a tree of ``old_size`` lacks.

    These are the tiles to publish when the tree grows from ``old_size`` to ``new_size``.

    Parameters
    ----------
    old_size, new_size
        Tree sizes, ``0 <= old_size <= new_size``.

    Returns
    -------
    list[Tile]
        New or grown tiles, level by level.
    """
    return [
        Tile(level, index, width)
        for level, index, width in changed_tiles(old_size, new_size, TILE_HEIGHT)
    ]


def changed_tiles(old_size: int, new_size: int, height: int) -> list[tuple[int, int, int]]:
    """:func:`new_tiles` for any tile height, as ``(level, index, width)`` tuples.

    C2SP fixes the height at 8; Go's ``golang.org/x/mod/sumdb/tlog`` lets it vary, which is
    how its ``NewTiles`` test vectors (height 10) can check this function.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
    width = 1 << height
    tiles: list[tuple[int, int, int]] = []
    level = 0
    while new_count := new_size >> (height * level):
        old_count = old_size >> (height * level)
        for index in range(old_count // width, (new_count - 1) // width + 1):
            new_width = min(width, new_count - index * width)
            old_width = min(width, max(0, old_count - index * width))
            if new_width != old_width:
                tiles.append((level, index, new_width))
        level += 1
    return tiles


def tile_data(tree: MerkleTree, tile: Tile) -> bytes:
    """Return a tile's bytes (its hashes, concatenated) from a Merkle tree.

    Raises
    ------
    ValueError
        If the tree is too small to have this tile.
    """
    if tile.level == ENTRIES_LEVEL:
        raise ValueError("entry bundles are not hashes")
    start = tile.index * TILE_WIDTH
    return tree.level_bytes(TILE_HEIGHT * tile.level, start, start + tile.width)


def _create(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` atomically (temporary file, fsync, link); never overwrite.

    Returns ``False`` if the file already exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tile.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _fsync_dirs(paths: set[Path]) -> None:
    for directory in paths:
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_tiles(
    directory: Path, tree: MerkleTree, size: int | None = None, *, since: int = 0
) -> list[Path]:
    """Write the tiles of the first ``size`` leaves of ``tree`` under ``directory``.

    A tile already present is compared with the tree (a published tile never changes) if it
    is one of the tiles that changed since ``since`` leaves; older tiles already present are
    left alone, and missing ones are written. Tiles of smaller, earlier sizes (partial tiles)
    are kept, so readers of an older checkpoint still find theirs. Each file is written
    atomically (temporary file, fsync, link).

    Parameters
    ----------
    directory
        The tile root (``<directory>/tile/0/000`` ...).
    tree
        The Merkle tree.
    size
        How many leaves to publish; defaults to the whole tree.
    since
        The size of the previous publication to this directory (0: compare every tile).

    Returns
    -------
    list[Path]
        The files written now.

    Raises
    ------
    TileError
        If an existing tile has other contents (:data:`ERR_TILE_CONFLICT`).
    """
    size = tree.size if size is None else size
    if not 0 <= size <= tree.size:
        raise ValueError(f"size {size} out of range for a tree of {tree.size} leaves")
    directory = Path(directory)
    changed = set(new_tiles(min(since, size), size))
    written: list[Path] = []
    for tile in tiles_for_size(size):
        path = directory / tile.path()
        if tile not in changed and path.exists():
            continue
        data = tile_data(tree, tile)
        if _create(path, data):
            written.append(path)
        elif path.read_bytes() != data:
            raise TileError(ERR_TILE_CONFLICT.format(path=path))
    _fsync_dirs({p.parent for p in written})
    return written


class SubtreeHashes(Protocol):
    """Anything that gives the hashes of a tree's complete subtrees (a tree or its tiles)."""

    @property
    def size(self) -> int:
        """Number of leaves."""

    def subtree(self, height: int, index: int) -> bytes:
        """``MTH`` of the complete subtree ``index`` of ``2**height`` leaves."""


class TileTree:
    """The tree of ``size`` leaves, read from a tile directory (a copy of a publication).

    Parameters
    ----------
    directory
        The tile root.
    size
        The tree size the tiles are read for (a checkpoint's size).

    Notes
    -----
    Nothing here is trusted until :meth:`root` matches a verified checkpoint's root.
    """

    def __init__(self, directory: Path, size: int) -> None:
        self.directory = Path(directory)
        self._size = size
        self._cache: dict[Tile, bytes] = {}

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def read(self, tile: Tile) -> bytes:
        """Return a tile's bytes, checking its length.

        Raises
        ------
        TileError
            If the file is missing (:data:`ERR_TILE_MISSING`) or has the wrong length.
        """
        data = self._cache.get(tile)
        if data is None:
            path = self.directory / tile.path()
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise TileError(
                    ERR_TILE_MISSING.format(path=tile.path(), directory=self.directory)
                ) from None
            expected = tile.width * HASH_SIZE
            if len(data) != expected:
                raise TileError(
                    ERR_BAD_TILE.format(
                        path=path, width=tile.width, expected=expected, found=len(data)
                    )
                )
            self._cache[tile] = data
        return data

    def _hashes(self, level: int, start: int, stop: int) -> bytes:
        """Hashes ``[start, stop)`` of tile level ``level`` (all inside one tile)."""
        count = self._size >> (TILE_HEIGHT * level)
        if not 0 <= start < stop <= count:
            raise ValueError(f"no hashes {start}..{stop} at tile level {level}")
        index = start // TILE_WIDTH
        width = min(TILE_WIDTH, count - index * TILE_WIDTH)
        data = self.read(Tile(level, index, width))
        offset = start - index * TILE_WIDTH
        return data[offset * HASH_SIZE : (offset + stop - start) * HASH_SIZE]

    def subtree(self, height: int, index: int) -> bytes:
        """Return the hash of complete subtree ``index`` of ``2**height`` leaves."""
        if height < 0 or index < 0 or (index + 1) << height > self._size:
            raise ValueError(f"no complete subtree {index} of height {height} in {self._size}")
        level, extra = divmod(height, TILE_HEIGHT)
        data = self._hashes(level, index << extra, (index + 1) << extra)
        nodes = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        while len(nodes) > 1:
            nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
        return nodes[0]

    def root(self) -> bytes:
        """Return the tree's root hash, computed from the tiles."""
        return root_of(self, self._size)


def _decomposition(size: int) -> Iterator[tuple[int, int]]:
    """The complete subtrees ``(height, index)`` making up ``D[0:size]``, left to right."""
    position = 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            yield height, position >> height
            position += 1 << height


def root_of(source: SubtreeHashes, size: int) -> bytes:
    """Return ``MTH(D[0:size])`` from the complete-subtree hashes of ``source``."""
    parts = [source.subtree(height, index) for height, index in _decomposition(size)]
    if not parts:
        return EMPTY_ROOT
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = node_hash(part, result)
    return result


def first_difference(a: SubtreeHashes, b: SubtreeHashes, size: int | None = None) -> int | None:
    """Return the first leaf index below ``size`` whose hash differs between ``a`` and ``b``.

    Parameters
    ----------
    a, b
        Two trees (e.g. the tiles of an earlier publication and the tree rebuilt from the
        ledger today).
    size
        How many leaves to compare; defaults to the smaller of the two sizes. If one tree is
        shorter than ``size``, its first missing leaf counts as different.

    Returns
    -------
    int or None
        The first differing leaf, or ``None`` if the first ``size`` leaves are the same.
    """
    common = min(a.size, b.size)
    size = common if size is None else size
    limit = min(size, common)
    for height, index in _decomposition(limit):
        if a.subtree(height, index) == b.subtree(height, index):
            continue
        while height > 0:
            height, index = height - 1, 2 * index
            if a.subtree(height, index) == b.subtree(height, index):
                index += 1
        return index
    return limit if limit < size else None
