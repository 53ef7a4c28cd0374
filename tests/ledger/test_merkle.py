"""Tests for :mod:`governance.ledger.merkle` (RFC 9162 Merkle tree).

Known-answer vectors are copied from github.com/transparency-dev/merkle, the Go library behind
Trillian and the Certificate Transparency Go ecosystem, at commit
417fb0c314750d94e53942e9f92e79b6d35915db:

* ``testonly/constants.go``: ``LeafInputs``, ``NodeHashes``, ``RootHashes``, ``EmptyRootHash``
  (the 8-leaf set of the original google/certificate-transparency C++ ``merkle_tree_test.cc``);
* ``testonly/reference_test.go``: ``TestRefInclusionProof``, ``TestRefConsistencyProof``;
* ``testdata/inclusion/{0..4}/happy-path.json``, ``testdata/consistency/{0..4}/happy-path.json``
  (adds the 6 -> 7 consistency proof);
* ``rfc6962/rfc6962_test.go``: ``TestRFC6962Hasher``.

The tampering probes in :func:`go_inclusion_mutations` / :func:`go_consistency_mutations` port
``corruptInclusionProof`` / ``corruptConsistencyProof`` from ``proof/verify_test.go`` at commit
9ca563d3ac2bab915317cf153ed4f952f6e74c07 (their outputs are the ``testdata/*/*.json`` probe
files today).

Everything else is checked against an independent reference written below straight from the
recursive definitions of RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and §2.1.4.1 (PROOF), using
``hashlib`` directly rather than the module's hash helpers.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.ledger.merkle import (
    EMPTY_ROOT,
    ERR_HASH_SIZE,
    ERR_INDEX_OUT_OF_RANGE,
    ERR_OLD_SIZE_GT_NEW_SIZE,
    ERR_OLD_SIZE_ZERO,
    ERR_SIZE_OUT_OF_RANGE,
    HASH_SIZE,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# -- published vectors (transparency-dev/merkle testonly/constants.go) ---------------------

KAT_LEAF_INPUTS: list[bytes] = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# NodeHashes(): [level][index] hashes of all complete subtrees of the 8-leaf tree.
KAT_NODE_HASHES: list[list[bytes]] = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# RootHashes(): root of the first n leaves, n = 0..8.
KAT_ROOTS: list[bytes] = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (index, size, proof): TestRefInclusionProof and testdata/inclusion/*/happy-path.json.
KAT_INCLUSION: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 2, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# (old size, new size, proof): TestRefConsistencyProof and testdata/consistency/*/happy-path.json.
KAT_CONSISTENCY: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go (commit 9ca563d): sha256SomeHash, sha256EmptyTreeHash.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_TREE_HASH = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

# -- independent reference, straight from the RFC's recursive definitions ------------------

# The KAT leaves followed by generated ones; the reference works on ranges of this list.
ENTRIES: tuple[bytes, ...] = tuple(KAT_LEAF_INPUTS) + tuple(
    b"decision %d" % i for i in range(len(KAT_LEAF_INPUTS), 2048)
)
LEAF_HASHES: list[bytes] = [hashlib.sha256(b"\x00" + e).digest() for e in ENTRIES]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def ref_mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over ENTRIES (RFC 9162 §2.1.1); cached only for speed."""
    n = hi - lo
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + ENTRIES[lo])
    k = _k(n)
    return _sha256(b"\x01" + ref_mth(lo, lo + k) + ref_mth(lo + k, hi))


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), m relative to lo."""
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, lo, lo + k), ref_mth(lo + k, hi)]
    return [*ref_path(m - k, lo + k, hi), ref_mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) (RFC 9162 §2.1.4.1), m relative to lo."""
    n = hi - lo
    if m == n:
        return [] if b else [ref_mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, b), ref_mth(lo + k, hi)]
    return [*ref_subproof(m - k, lo + k, hi, False), ref_mth(lo, lo + k)]


def ref_proof(m: int, n: int) -> list[bytes]:
    """PROOF(m, D[0:n])."""
    return ref_subproof(m, 0, n, True)


@functools.cache
def big_tree() -> MerkleTree:
    return MerkleTree(LEAF_HASHES)


# -- hashing and published vectors ---------------------------------------------------------


def test_hash_functions_match_published_vectors() -> None:
    # rfc6962/rfc6962_test.go TestRFC6962Hasher
    assert HASH_SIZE == 32
    assert EMPTY_ROOT == EMPTY_TREE_HASH
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )
    assert leaf_hash(b"") != EMPTY_ROOT


def test_reference_implementation_reproduces_published_vectors() -> None:
    """The reference is itself checked, so agreeing with it means something."""
    assert [ref_mth(0, n) for n in range(9)] == KAT_ROOTS
    for index, size, proof in KAT_INCLUSION:
        assert ref_path(index, 0, size) == proof
    for old, new, proof in KAT_CONSISTENCY:
        assert ref_proof(old, new) == proof


@pytest.mark.parametrize("size", range(9))
def test_roots_of_every_prefix_match_published_roots(size: int) -> None:
    leaf_hashes = [leaf_hash(e) for e in KAT_LEAF_INPUTS]
    assert MerkleTree(leaf_hashes).root(size) == KAT_ROOTS[size]
    assert MerkleTree(leaf_hashes[:size]).root() == KAT_ROOTS[size]
    assert root_from_leaf_hashes(leaf_hashes[:size]) == KAT_ROOTS[size]


def test_complete_subtrees_match_published_node_hashes() -> None:
    leaf_hashes = [leaf_hash(e) for e in KAT_LEAF_INPUTS]
    for level, hashes in enumerate(KAT_NODE_HASHES):
        width = 1 << level
        for i, expected in enumerate(hashes):
            assert root_from_leaf_hashes(leaf_hashes[i * width : (i + 1) * width]) == expected


@pytest.mark.parametrize(("index", "size", "expected"), KAT_INCLUSION)
def test_inclusion_proofs_match_published_vectors(
    index: int, size: int, expected: list[bytes]
) -> None:
    tree = MerkleTree(leaf_hash(e) for e in KAT_LEAF_INPUTS)
    assert tree.inclusion_proof(index, size) == expected
    assert MerkleTree(LEAF_HASHES[:size]).inclusion_proof(index) == expected
    leaf = leaf_hash(KAT_LEAF_INPUTS[index])
    assert verify_inclusion(leaf, index, size, expected, KAT_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "expected"), KAT_CONSISTENCY)
def test_consistency_proofs_match_published_vectors(
    old: int, new: int, expected: list[bytes]
) -> None:
    tree = MerkleTree(leaf_hash(e) for e in KAT_LEAF_INPUTS)
    assert tree.consistency_proof(old, new) == expected
    assert verify_consistency(old, new, KAT_ROOTS[old], KAT_ROOTS[new], expected)


# -- the Go library's tampering probes, applied to the published vectors ------------------


def go_inclusion_mutations(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """Port of corruptInclusionProof: (desc, index, size, proof, root, leaf), all invalid."""
    probes = [
        ("leafIndex - 1", index - 1, size, proof, root, leaf),
        ("leafIndex + 1", index + 1, size, proof, root, leaf),
        ("leafIndex ^ 2", index ^ 2, size, proof, root, leaf),
        ("treeSize * 2", index, size * 2, proof, root, leaf),
        ("treeSize / 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_TREE_HASH, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 3", index, size, wrong, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", index, size, inserted, root, leaf))
    return probes


def go_consistency_mutations(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Port of corruptConsistencyProof: (desc, old, new, old root, new root, proof)."""
    probes = [
        ("size1 - 1", old - 1, new, old_root, new_root, proof),
        ("size1 + 1", old + 1, new, old_root, new_root, proof),
        ("size1 ^ 2", old ^ 2, new, old_root, new_root, proof),
        ("size2 * 2", old, new * 2, old_root, new_root, proof),
        ("size2 / 2", old, new // 2, old_root, new_root, proof),
        ("wrong root1", old, new, b"WrongRoot", new_root, proof),
        ("wrong root2", old, new, old_root, b"WrongRoot", proof),
        ("swapped roots", old, new, new_root, old_root, proof),
        ("empty proof", old, new, old_root, new_root, []),
        ("trailing garbage", old, new, old_root, new_root, [*proof, b""]),
        ("trailing root1", old, new, old_root, new_root, [*proof, old_root]),
        ("trailing root2", old, new, old_root, new_root, [*proof, new_root]),
        ("preceding garbage", old, new, old_root, new_root, [b"", *proof]),
        ("preceding root1", old, new, old_root, new_root, [old_root, *proof]),
        ("preceding root2", old, new, old_root, new_root, [new_root, *proof]),
        ("preceding proof[0]", old, new, old_root, new_root, [proof[0], *proof]),
        ("truncated proof", old, new, old_root, new_root, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}] bit 4", old, new, old_root, new_root, wrong))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), KAT_INCLUSION)
def test_go_inclusion_probes_are_rejected(index: int, size: int, proof: list[bytes]) -> None:
    leaf = leaf_hash(KAT_LEAF_INPUTS[index])
    accepted = [
        desc
        for desc, i, n, p, r, lf in go_inclusion_mutations(
            index, size, proof, KAT_ROOTS[size], leaf
        )
        if verify_inclusion(lf, i, n, p, r)
    ]
    assert accepted == []


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in KAT_CONSISTENCY if v[2]])
def test_go_consistency_probes_are_rejected(old: int, new: int, proof: list[bytes]) -> None:
    # Like the Go test, only non-trivial proofs (old != new) are mutated.
    mutations = go_consistency_mutations(old, new, KAT_ROOTS[old], KAT_ROOTS[new], proof)
    accepted = [desc for desc, m, n, r1, r2, p in mutations if verify_consistency(m, n, r1, r2, p)]
    assert accepted == []


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "valid"),
    [
        # proof/verify_test.go TestVerifyConsistency (9ca563d) with the current library's rule
        # that size1 == 0 is always an error (testdata/consistency/additional/*.json).
        (0, 0, b"don't care 1", b"don't care 2", [], False),
        (1, 1, b"don't care 1", b"don't care 2", [], False),
        (0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [], False),
        (0, 1, EMPTY_TREE_HASH, SOME_HASH, [], False),
        (1, 1, SOME_HASH, SOME_HASH, [], True),
        (1, 0, SOME_HASH, SOME_HASH, [], False),
        (2, 1, SOME_HASH, SOME_HASH, [], False),
        (1, 2, EMPTY_TREE_HASH, SOME_HASH, [], False),
        (0, 0, EMPTY_TREE_HASH, SOME_HASH, [], False),
        (1, 1, EMPTY_TREE_HASH, SOME_HASH, [], False),
        (0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
        (0, 1, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
        (1, 1, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
    ],
)
def test_go_consistency_edge_cases(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], valid: bool
) -> None:
    assert verify_consistency(old, new, old_root, new_root, proof) is valid


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_go_inclusion_edge_cases(index: int, size: int) -> None:
    # proof/verify_test.go TestVerifyInclusion (9ca563d).
    assert not verify_inclusion(SOME_HASH, index, size, [], b"")
    assert not verify_inclusion(b"", index, size, [], EMPTY_TREE_HASH)
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_TREE_HASH)


def test_go_single_entry_cases() -> None:
    # proof/verify_test.go TestVerifyInclusionSingleEntry (9ca563d).
    single = leaf_hash(b"data")
    assert verify_inclusion(single, 0, 1, [], single)
    assert not verify_inclusion(b"", 0, 1, [], single)
    assert not verify_inclusion(single, 0, 1, [], b"")


# -- agreement with the reference for every size 1..130 -----------------------------------


def _tamperings(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """Proof-level alterations: a flipped byte in and the removal of every element, and more."""
    out: list[tuple[str, list[bytes]]] = []
    for i, node in enumerate(proof):
        pos = (7 * i) % HASH_SIZE  # vary the flipped position across elements
        flipped = [*proof[:i], node[:pos] + bytes([node[pos] ^ 0x01]) + node[pos + 1 :]]
        out.append((f"flip byte {pos} of [{i}]", flipped + proof[i + 1 :]))
        out.append((f"drop [{i}]", proof[:i] + proof[i + 1 :]))
    if proof:
        out.append(("last element cut to 31 bytes", [*proof[:-1], proof[-1][:-1]]))
    if len(proof) > 1:
        out.append(("swap [0] and [1]", [proof[1], proof[0], *proof[2:]]))
    out.append(("append zeros", [*proof, bytes(HASH_SIZE)]))
    out.append(("prepend zeros", [bytes(HASH_SIZE), *proof]))
    out.append(("append duplicate", [*proof, proof[-1]] if proof else [LEAF_HASHES[0]]))
    return out


def _tamper_here(position: int, size: int) -> bool:
    """Every proof up to size 48, then the edges and every 9th (keeps the file fast)."""
    return size <= 48 or position < 4 or size - position <= 4 or position % 9 == 0


@pytest.mark.parametrize("size", range(1, 131))
def test_agrees_with_reference_and_rejects_tampering(size: int) -> None:
    exact = MerkleTree(LEAF_HASHES[:size])
    prefix = big_tree()
    root = ref_mth(0, size)
    assert exact.size == size
    assert exact.root() == prefix.root(size) == root

    for index in range(size):
        proof = ref_path(index, 0, size)
        assert exact.inclusion_proof(index) == proof
        assert prefix.inclusion_proof(index, size) == proof
        leaf = LEAF_HASHES[index]
        assert verify_inclusion(leaf, index, size, proof, root)
        if not _tamper_here(index, size):
            continue
        for desc, bad in _tamperings(proof):
            assert not verify_inclusion(leaf, index, size, bad, root), desc
        # The proof for another index, size or root (a consistent but different tree head).
        for other in {index - 1, index + 1, index ^ 1, index ^ 2}:
            if 0 <= other < size:
                assert not verify_inclusion(leaf, other, size, proof, root), other
        for other_size in {size - 1, size + 1, size * 2}:
            if other_size > index:
                other_root = ref_mth(0, other_size) if other_size <= len(ENTRIES) else SOME_HASH
                assert not verify_inclusion(leaf, index, other_size, proof, other_root)
        assert not verify_inclusion(LEAF_HASHES[size], index, size, proof, root)

    for old in range(1, size + 1):
        proof = ref_proof(old, size)
        old_root = ref_mth(0, old)
        assert exact.consistency_proof(old) == proof
        assert prefix.consistency_proof(old, size) == proof
        assert verify_consistency(old, size, old_root, root, proof)
        if old == size:
            assert proof == []
            continue
        if not _tamper_here(old, size):
            continue
        assert not verify_consistency(old, size, root, old_root, proof)  # swapped roots
        assert not verify_consistency(old, size, old_root, old_root, proof)
        for desc, bad in _tamperings(proof):
            assert not verify_consistency(old, size, old_root, root, bad), desc
        for other in {old - 1, old + 1}:
            if 1 <= other < size and ref_proof(other, size) != proof:
                assert not verify_consistency(other, size, ref_mth(0, other), root, proof)


def test_appending_one_by_one_matches_bulk_and_reference() -> None:
    tree = MerkleTree()
    assert tree.size == 0
    assert tree.root() == EMPTY_ROOT
    for n, leaf in enumerate(LEAF_HASHES[:300], start=1):
        assert tree.append(leaf) == n - 1
        assert tree.size == n
        assert tree.root() == ref_mth(0, n)
    bulk = MerkleTree(iter(LEAF_HASHES[:300]))  # a generator, not a list
    chunked = MerkleTree()
    for start, stop in [(0, 1), (1, 2), (2, 7), (7, 64), (64, 65), (65, 200), (200, 300)]:
        chunked.extend(LEAF_HASHES[start:stop])
    for n in (1, 2, 3, 64, 65, 127, 128, 129, 255, 256, 257, 300):
        assert tree.root(n) == bulk.root(n) == chunked.root(n) == ref_mth(0, n)
        assert tree.inclusion_proof(n - 1, n) == chunked.inclusion_proof(n - 1, n)
        assert tree.consistency_proof(1, n) == chunked.consistency_proof(1, n)


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=300),
    cut=st.one_of(st.integers(min_value=0, max_value=300), st.sampled_from([0, 64, 128, 256])),
    more=st.integers(min_value=0, max_value=40),
)
def test_joining_two_trees_is_the_tree_of_all_their_leaves(size: int, cut: int, more: int) -> None:
    """A tree joined from two halves (aligned or not) is, level by level, the bulk-built tree,
    and keeps growing like one."""
    cut = min(cut, size)
    joined = MerkleTree(LEAF_HASHES[:cut])
    joined.join(MerkleTree(LEAF_HASHES[cut:size]))
    bulk = MerkleTree(LEAF_HASHES[:size])
    assert joined.size == size
    for height in range(size.bit_length()):
        count = size >> height
        assert joined.level_bytes(height, 0, count) == bulk.level_bytes(height, 0, count)
    for n in range(1, size + 1):
        assert joined.root(n) == ref_mth(0, n)
    joined.extend(LEAF_HASHES[size : size + more])
    assert joined.root() == ref_mth(0, min(size + more, len(LEAF_HASHES)))


def test_join_refuses_what_is_not_a_tree() -> None:
    tree = MerkleTree(LEAF_HASHES[:3])
    with pytest.raises(TypeError, match="can only join a MerkleTree"):
        tree.join(LEAF_HASHES[3:5])  # type: ignore[arg-type]
    assert tree.root() == ref_mth(0, 3)


# -- out-of-range requests and malformed input ---------------------------------------------


def test_out_of_range_requests_raise_value_error() -> None:
    tree = MerkleTree(LEAF_HASHES[:10])
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: tree.inclusion_proof(10), ERR_INDEX_OUT_OF_RANGE.format(index=10, size=10)),
        (lambda: tree.inclusion_proof(-1), ERR_INDEX_OUT_OF_RANGE.format(index=-1, size=10)),
        (lambda: tree.inclusion_proof(5, 5), ERR_INDEX_OUT_OF_RANGE.format(index=5, size=5)),
        (lambda: tree.inclusion_proof(0, 0), ERR_INDEX_OUT_OF_RANGE.format(index=0, size=0)),
        (lambda: tree.inclusion_proof(0, 11), ERR_SIZE_OUT_OF_RANGE.format(size=11, tree_size=10)),
        (lambda: tree.root(11), ERR_SIZE_OUT_OF_RANGE.format(size=11, tree_size=10)),
        (lambda: tree.root(-1), ERR_SIZE_OUT_OF_RANGE.format(size=-1, tree_size=10)),
        (lambda: tree.consistency_proof(0), ERR_OLD_SIZE_ZERO),
        (lambda: tree.consistency_proof(0, 0), ERR_OLD_SIZE_ZERO),
        (lambda: tree.consistency_proof(-3), ERR_OLD_SIZE_ZERO),
        (
            lambda: tree.consistency_proof(6, 5),
            ERR_OLD_SIZE_GT_NEW_SIZE.format(old_size=6, new_size=5),
        ),
        (
            lambda: tree.consistency_proof(11),
            ERR_OLD_SIZE_GT_NEW_SIZE.format(old_size=11, new_size=10),
        ),
        (
            lambda: tree.consistency_proof(1, 11),
            ERR_SIZE_OUT_OF_RANGE.format(size=11, tree_size=10),
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            call()
    assert MerkleTree().root(0) == EMPTY_ROOT
    with pytest.raises(ValueError, match=re.escape(ERR_INDEX_OUT_OF_RANGE.format(index=0, size=0))):
        MerkleTree().inclusion_proof(0)


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_non_integer_positions_raise_type_error(bad: object) -> None:
    tree = MerkleTree(LEAF_HASHES[:4])
    with pytest.raises(TypeError):
        tree.inclusion_proof(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tree.consistency_proof(bad)  # type: ignore[arg-type]
    if bad is not None:
        with pytest.raises(TypeError):
            tree.root(bad)  # type: ignore[arg-type]


def test_bad_leaf_hashes_are_refused_and_leave_the_tree_unchanged() -> None:
    tree = MerkleTree(LEAF_HASHES[:3])
    with pytest.raises(ValueError, match=re.escape(ERR_HASH_SIZE.format(length=31))):
        tree.append(LEAF_HASHES[3][:31])
    with pytest.raises(TypeError):
        tree.append(LEAF_HASHES[3].hex())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape(ERR_HASH_SIZE.format(length=33))):
        tree.extend([LEAF_HASHES[3], LEAF_HASHES[4] + b"\x00"])
    with pytest.raises(TypeError):
        tree.extend([LEAF_HASHES[3], None])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        root_from_leaf_hashes([b""])
    assert tree.size == 3
    assert tree.root() == ref_mth(0, 3)
    tree.append(bytearray(LEAF_HASHES[3]))  # type: ignore[arg-type]  # accepted at runtime
    assert tree.root() == ref_mth(0, 4)


@pytest.mark.parametrize(
    "args",
    [
        (LEAF_HASHES[0], 0, 2, None, ref_mth(0, 2)),
        (LEAF_HASHES[0], 0, 2, [LEAF_HASHES[1].hex()], ref_mth(0, 2)),
        (LEAF_HASHES[0], 0, 2, [1], ref_mth(0, 2)),
        (LEAF_HASHES[0], "0", 2, [LEAF_HASHES[1]], ref_mth(0, 2)),
        (LEAF_HASHES[0], 0, 2.0, [LEAF_HASHES[1]], ref_mth(0, 2)),
        (LEAF_HASHES[0], False, 2, [LEAF_HASHES[1]], ref_mth(0, 2)),
        (LEAF_HASHES[0], -2, 2, [LEAF_HASHES[1]], ref_mth(0, 2)),
        (LEAF_HASHES[0].hex(), 0, 2, [LEAF_HASHES[1]], ref_mth(0, 2)),
        (LEAF_HASHES[0], 0, 2, [LEAF_HASHES[1]], ref_mth(0, 2) + b"\x00"),
        (LEAF_HASHES[0], 0, 2, [LEAF_HASHES[1]], None),
    ],
)
def test_verify_inclusion_never_raises_on_malformed_input(args: tuple[object, ...]) -> None:
    assert verify_inclusion(*args) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        (1, 2, ref_mth(0, 1), ref_mth(0, 2), None),
        (1, 2, ref_mth(0, 1), ref_mth(0, 2), 5),
        (1, 2, ref_mth(0, 1), ref_mth(0, 2), ["x" * 32]),
        (1, 2, ref_mth(0, 1), ref_mth(0, 2), [LEAF_HASHES[1][:-1]]),
        ("1", 2, ref_mth(0, 1), ref_mth(0, 2), [LEAF_HASHES[1]]),
        (True, 2, ref_mth(0, 1), ref_mth(0, 2), [LEAF_HASHES[1]]),
        (1, 2.0, ref_mth(0, 1), ref_mth(0, 2), [LEAF_HASHES[1]]),
        (1, 2, None, ref_mth(0, 2), [LEAF_HASHES[1]]),
        (1, 2, ref_mth(0, 1), ref_mth(0, 2)[:16], [LEAF_HASHES[1]]),
        (-1, 2, ref_mth(0, 1), ref_mth(0, 2), [LEAF_HASHES[1]]),
    ],
)
def test_verify_consistency_never_raises_on_malformed_input(args: tuple[object, ...]) -> None:
    assert verify_consistency(*args) is False  # type: ignore[arg-type]


def test_verification_accepts_bytearrays_and_tuples() -> None:
    # Annotated as bytes, but buffers read straight from a database driver also work.
    leaf: Any = bytearray(LEAF_HASHES[3])
    proof: Any = tuple(bytearray(p) for p in big_tree().inclusion_proof(3, 7))
    assert verify_inclusion(leaf, 3, 7, proof, ref_mth(0, 7))
    new_root: Any = bytearray(ref_mth(0, 7))
    cproof = tuple(big_tree().consistency_proof(3, 7))
    assert verify_consistency(3, 7, ref_mth(0, 3), new_root, cproof)


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=len(ENTRIES)))
def test_random_inclusion_proofs(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = big_tree().inclusion_proof(index, size)
    assert proof == ref_path(index, 0, size)
    root = ref_mth(0, size)
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, root)
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        bit = data.draw(st.integers(min_value=0, max_value=8 * HASH_SIZE - 1), label="bit")
        node = bytearray(proof[i])
        node[bit // 8] ^= 1 << (bit % 8)
        bad = [*proof[:i], bytes(node), *proof[i + 1 :]]
        assert not verify_inclusion(LEAF_HASHES[index], index, size, bad, root)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), new=st.integers(min_value=1, max_value=len(ENTRIES)))
def test_random_consistency_proofs(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new), label="old")
    proof = big_tree().consistency_proof(old, new)
    assert proof == ref_proof(old, new)
    old_root, new_root = ref_mth(0, old), ref_mth(0, new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    # A head that is not an extension of the old one (one leaf replaced) must not verify.
    changed = data.draw(st.integers(min_value=0, max_value=old - 1), label="changed leaf")
    forked_leaves = list(LEAF_HASHES[:new])
    forked_leaves[changed] = leaf_hash(b"forged")
    forked = MerkleTree(forked_leaves)
    assert not verify_consistency(old, new, old_root, forked.root(), proof)
    if old < new:
        assert not verify_consistency(
            old, new, old_root, forked.root(), forked.consistency_proof(old)
        )


# -- performance ----------------------------------------------------------------------------


def _random_leaf_hashes(count: int) -> list[bytes]:
    raw = os.urandom(HASH_SIZE * count)
    return [raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)]


def test_root_over_a_million_leaves_is_fast() -> None:
    leaves = _random_leaf_hashes(1_000_000)
    start = time.perf_counter()
    tree = MerkleTree(leaves)
    root = tree.root()
    elapsed = time.perf_counter() - start
    # About 0.7 s on the development machine; the bound is loose to survive a loaded CI box.
    assert elapsed < 5.0, f"building 1,000,000 leaves took {elapsed:.2f} s"
    assert tree.size == 1_000_000
    index = 765_432
    proof = tree.inclusion_proof(index)
    assert verify_inclusion(leaves[index], index, tree.size, proof, root)
    assert verify_consistency(
        999_999, tree.size, tree.root(999_999), root, tree.consistency_proof(999_999)
    )


def test_proofs_do_not_recompute_the_tree() -> None:
    leaves = _random_leaf_hashes(1 << 17)
    tree = MerkleTree(leaves)
    start = time.perf_counter()
    for i in range(0, len(leaves), len(leaves) // 500):
        tree.inclusion_proof(i)
        tree.consistency_proof(i + 1)
        tree.root(i + 1)
    elapsed = time.perf_counter() - start
    # Recomputing from the leaves would cost 1,500 x 131,072 hashes (minutes); this is ~0.05 s.
    assert elapsed < 2.0, f"1,500 proofs/roots took {elapsed:.2f} s"
