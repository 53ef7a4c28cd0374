"""Tests for :mod:`governance.ledger.tiles` (C2SP tlog-tiles).

Known answers, copied as data:

* c2sp.org/tlog-tiles (github.com/C2SP/C2SP at 5ba5ee8): index 1234067 is ``x001/x234/067``; a
  tree of 70,000 leaves has 273 full and one 112-wide level-0 tile, one full and one 17-wide
  level-1 tile and one 1-wide level-2 tile; a tree of 256 leaves has one full level-0 tile and
  a 1-wide level-1 tile.
* golang.org/x/mod/sumdb/tlog ``tlog_test.go`` ``tilePaths`` (github.com/golang/mod at fe2ec04),
  with Go's height element dropped (C2SP fixes the height at 8 and names level -1 ``entries``),
  and ``tile_test.go`` ``TestNewTilesForSize`` (tile height 10).

Tile contents are checked against RFC 9162's recursive ``MTH`` written here with ``hashlib``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.ledger.merkle import MerkleTree
from governance.ledger.tiles import (
    ENTRIES_LEVEL,
    Tile,
    TileError,
    TileTree,
    changed_tiles,
    first_difference,
    new_tiles,
    parse_tile_path,
    root_of,
    tile_data,
    tiles_for_size,
    write_tiles,
)


def _leaf(i: int, salt: bytes = b"") -> bytes:
    return hashlib.sha256(b"\x00" + salt + b"leaf %d" % i).digest()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over leaf hashes, straight from the definition."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


# -- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "tile"),
    [
        ("tile/0/001", Tile(0, 1)),
        ("tile/0/001.p/5", Tile(0, 1, 5)),
        ("tile/5/x123/x456/078", Tile(5, 123456078)),
        ("tile/5/x123/x456/078.p/2", Tile(5, 123456078, 2)),
        ("tile/0/x003/x057/500", Tile(0, 3057500)),
        ("tile/entries/x003/x057/500", Tile(ENTRIES_LEVEL, 3057500)),
        ("tile/0/x001/x234/067", Tile(0, 1234067)),
        ("tile/63/000.p/255", Tile(63, 0, 255)),
    ],
)
def test_tile_paths_round_trip(path: str, tile: Tile) -> None:
    assert tile.path() == path
    assert parse_tile_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/5/123/456/078",
        "tile/-1/123/456/078",
        "tile/0/x000/005",
        "tile/0/1",
        "tile/01/000",
        "tile/64/000",
        "tile/0/000.p/256",
        "tile/0/000.p/0",
        "tile/0/000.p/05",
        "tiles/0/000",
        "tile/data/000",
        "tile/0/000/",
        "tile/0",
    ],
)
def test_bad_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


def test_tiles_of_the_spec_examples() -> None:
    tiles = tiles_for_size(70_000)
    assert sum(1 for t in tiles if t.level == 0 and t.full) == 273
    assert [t for t in tiles if not t.full] == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert [t for t in tiles if t.level == 1 and t.full] == [Tile(1, 0)]
    assert tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_size(0) == []


@pytest.mark.parametrize(
    ("old", "new", "count"),
    [
        (1, 1, 0),
        (100, 101, 1),
        (1023, 1025, 3),
        (1024, 1030, 1),
        (1030, 2000, 1),
        (1030, 10000, 10),
        (49516517, 49516586, 3),
    ],
)
def test_changed_tiles_match_go(old: int, new: int, count: int) -> None:
    assert len(changed_tiles(old, new, 10)) == count


@given(st.integers(0, 200_000), st.integers(0, 200_000))
def test_new_tiles_are_the_tiles_the_old_tree_lacks(a: int, b: int) -> None:
    old, new = min(a, b), max(a, b)
    assert set(new_tiles(old, new)) == set(tiles_for_size(new)) - set(tiles_for_size(old))


# -- contents -----------------------------------------------------------------------------


def test_tile_hashes_are_the_subtree_hashes_of_the_rfc() -> None:
    leaves = [_leaf(i) for i in range(700)]
    tree = MerkleTree(leaves)
    for tile in tiles_for_size(700):
        data = tile_data(tree, tile)
        span = 256**tile.level
        for i in range(tile.width):
            start = (tile.index * 256 + i) * span
            assert data[32 * i : 32 * i + 32] == _mth(leaves[start : start + span])


def test_level_two_tile_is_the_root_of_65536_leaves(tmp_path: Path) -> None:
    leaves = [_leaf(i) for i in range(70_000)]
    tree = MerkleTree(leaves)
    write_tiles(tmp_path, tree)
    assert (tmp_path / "tile/2/000.p/1").read_bytes() == _mth(leaves[:65536])
    assert TileTree(tmp_path, 70_000).root() == tree.root() == _mth(leaves)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_roots_from_tiles_match_for_every_published_size(size: int, data: st.DataObject) -> None:
    import tempfile

    leaves = [_leaf(i) for i in range(size)]
    tree = MerkleTree(leaves)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        sizes = sorted(set([*data.draw(st.lists(st.integers(1, size), max_size=4)), size]))
        previous = 0
        for published in sizes:
            write_tiles(directory, tree, published, since=previous)
            previous = published
        for published in sizes:  # partial tiles of earlier publications are kept
            assert TileTree(directory, published).root() == tree.root(published)


def test_writing_is_idempotent_atomic_and_refuses_a_changed_tile(tmp_path: Path) -> None:
    tree = MerkleTree([_leaf(i) for i in range(600)])
    first = write_tiles(tmp_path, tree)
    assert {p.relative_to(tmp_path).as_posix() for p in first} == {
        t.path() for t in tiles_for_size(600)
    }
    assert write_tiles(tmp_path, tree) == []
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert all(oct(p.stat().st_mode)[-3:] == "644" for p in first)
    other = MerkleTree([_leaf(i, b"rewritten") for i in range(600)])
    with pytest.raises(TileError, match="never changes"):
        write_tiles(tmp_path, other)


def test_reading_a_missing_or_truncated_tile_fails(tmp_path: Path) -> None:
    tree = MerkleTree([_leaf(i) for i in range(300)])
    write_tiles(tmp_path, tree)
    os.remove(tmp_path / "tile/0/001.p/44")
    with pytest.raises(TileError, match="missing"):
        TileTree(tmp_path, 300).root()
    (tmp_path / "tile/0/000").write_bytes(b"\x00" * 100)
    with pytest.raises(TileError, match="must be 8192 bytes"):
        TileTree(tmp_path, 256).subtree(0, 3)


# -- the first leaf that differs ----------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_first_difference_names_the_changed_leaf(size: int, data: st.DataObject) -> None:
    import tempfile

    leaves = [_leaf(i) for i in range(size)]
    with tempfile.TemporaryDirectory() as tmp:
        write_tiles(Path(tmp), MerkleTree(leaves))
        published = TileTree(Path(tmp), size)
        assert first_difference(published, MerkleTree([*leaves, _leaf(size)])) is None
        changed = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=3))
        rewritten = list(leaves)
        for index in changed:
            rewritten[index] = _leaf(index, b"rewritten")
        extra = data.draw(st.integers(0, 300))
        rewritten += [_leaf(size + i) for i in range(extra)]
        assert first_difference(published, MerkleTree(rewritten)) == min(changed)
        cut = data.draw(st.integers(0, size - 1))
        assert first_difference(published, MerkleTree(leaves[:cut]), size) == cut


def test_first_difference_reads_few_tiles(tmp_path: Path) -> None:
    leaves = [_leaf(i) for i in range(70_000)]
    write_tiles(tmp_path, MerkleTree(leaves))
    rewritten = list(leaves)
    rewritten[54_321] = _leaf(54_321, b"x")
    published = TileTree(tmp_path, 70_000)
    assert first_difference(published, MerkleTree(rewritten)) == 54_321
    assert len(published._cache) <= 4  # one tile per level on the way down
    assert root_of(published, 70_000) == root_of(MerkleTree(leaves), 70_000)


def test_tiles_copied_elsewhere_still_verify(tmp_path: Path) -> None:
    tree = MerkleTree([_leaf(i) for i in range(1000)])
    write_tiles(tmp_path / "published", tree)
    shutil.copytree(tmp_path / "published", tmp_path / "copy")
    assert TileTree(tmp_path / "copy", 1000).root() == tree.root()
