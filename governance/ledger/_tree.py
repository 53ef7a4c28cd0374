"""The ledger's Merkle tree, its signed checkpoints and proofs (RFC 9162).

:class:`TreeHeads` keeps the tree of the records verified so far (extended, verifying new
records, on each use), signs checkpoints that never contradict an earlier one, and answers
inclusion and consistency proofs. :class:`~governance.ledger.ledger.Ledger` delegates to it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.ledger.checkpoint import (
    Checkpoint,
    CheckpointDirectory,
    sign_checkpoint,
    verify_checkpoint,
)
from governance.ledger.errors import IntegrityError, LedgerError, NotCovered
from governance.ledger.merkle import MerkleTree, verify_consistency, verify_inclusion
from governance.ledger.records import ChainBreak, ChainWalker, Record
from governance.ledger.store import LedgerStore
from governance.ledger.tiles import write_tiles

__all__ = ["ERR_NOT_COVERED", "TreeHeads"]

ERR_NOT_COVERED = (
    "no checkpoint covers record seq {seq} yet (the latest covers {covered} records): run"
    " `governance audit checkpoint` first, or ask for one with --checkpoint"
)


class TreeHeads:
    """The Merkle tree over a ledger's records, its checkpoints and proofs (thread-safe).

    Parameters
    ----------
    store
        The ledger's store.
    origin
        The checkpoint origin (``governance/ledger/<ledger id>``).
    signing_key
        The checkpoint signing key.
    checkpoint_dir
        Where checkpoints are exported.
    walker
        Checks new records as the tree grows (set up for the ledger's formats).
    """

    def __init__(
        self,
        store: LedgerStore,
        origin: str,
        signing_key: Ed25519PrivateKey,
        checkpoint_dir: CheckpointDirectory,
        walker: ChainWalker,
    ) -> None:
        self.store = store
        self.origin = origin
        self._signing_key = signing_key
        self.public_key = signing_key.public_key()
        self.checkpoint_dir = checkpoint_dir
        self._tree = MerkleTree()
        self._walker = walker
        self.lock = threading.Lock()
        # Checkpoints already found consistent with this (append-only, verified) tree.
        self._vouched: set[Checkpoint] = set()

    def sync(self) -> MerkleTree:
        """Extend the cached Merkle tree over new records, verifying them; return it.

        Call with ``lock`` held.

        Raises
        ------
        IntegrityError
            If a record does not verify.
        """
        tree, walker = self._tree, self._walker
        leaves: list[bytes] = []
        try:
            for rows in self.store.iter_chain(start=tree.size):
                leaves.clear()
                walker.feed(rows, leaves)
                tree.extend(leaves)
        except ChainBreak as brk:
            raise IntegrityError(f"seq {brk.seq}: {brk.reason}") from None
        return tree

    def checkpoint(self, *, reuse: bool = False) -> Checkpoint:
        """Sign the Merkle root of all records, store it, and export it to the directory.

        New records since the last checkpoint made by this object are verified first, and the
        tree must agree with every earlier checkpoint (stored and exported): a checkpoint never
        vouches for a broken chain or a fork.

        Parameters
        ----------
        reuse
            If no record was added since a checkpoint found consistent, return the first one
            signed of this tree head (the one the exported directory keeps) instead of signing
            the same tree again.

        Returns
        -------
        Checkpoint
            The signed tree head.

        Raises
        ------
        IntegrityError
            If the chain does not verify or contradicts an earlier checkpoint.
        """
        with self.lock:
            tree = self.sync()
            size, root = tree.size, tree.root()
        self._check_extends(size)
        if reuse:
            with self.lock:
                same = [cp for cp in self._vouched if cp.size == size and cp.root == root]
            if same:
                return min(same, key=lambda cp: cp.timestamp)
        cp = sign_checkpoint(self._signing_key, origin=self.origin, size=size, root=root)
        self.checkpoint_dir.write(cp)  # the copy outside the database first
        self.store.add_checkpoint(cp)
        with self.lock:
            self._vouched.add(cp)
        return cp

    def _check_extends(self, size: int) -> None:
        """Raise unless the first ``size`` records agree with every earlier checkpoint.

        Never sign a fork. The checkpoints are read and their signatures checked without the
        lock; only the roots of the (verified, append-only) tree at their sizes are taken under
        it. A checkpoint found consistent once is remembered (:attr:`_vouched`, by value: origin,
        size, root, time, key id and signature): the tree only grows, so the same checkpoint
        stays consistent, and each round checks only the checkpoints it has not seen, instead of
        every checkpoint ever signed (one Ed25519 verification and one root each).
        """
        try:
            earlier = self.store.checkpoints() + self.checkpoint_dir.all()
        except ValueError as exc:
            raise IntegrityError(f"refusing to sign: a checkpoint is malformed: {exc}") from exc
        with self.lock:
            fresh = [cp for cp in dict.fromkeys(earlier) if cp not in self._vouched]
            roots = {cp.size: self._tree.root(cp.size) for cp in fresh if cp.size <= size}
        for cp in fresh:
            if cp.origin != self.origin or not verify_checkpoint(cp, self.public_key):
                raise IntegrityError(
                    f"refusing to sign: the checkpoint of size {cp.size} at {cp.timestamp}"
                    " is not a valid checkpoint of this ledger; run verify"
                )
            if cp.size > size:
                raise IntegrityError(
                    f"refusing to sign: TRUNCATION: a checkpoint covers {cp.size} records but"
                    f" the ledger holds {size}; run verify"
                )
            if roots[cp.size] != cp.root:
                raise IntegrityError(
                    f"refusing to sign: the ledger no longer matches its checkpoint of size"
                    f" {cp.size} (records before it were rewritten); run verify"
                )
        with self.lock:
            self._vouched.update(fresh)

    def checkpoints(self) -> list[Checkpoint]:
        """Return the checkpoints stored in the database, oldest first."""
        return self.store.checkpoints()

    def _checkpoint_covering(self, seq: int, sign: bool) -> Checkpoint:
        stored = self.store.checkpoints()
        for cp in reversed(stored):
            if (
                cp.size > seq
                and cp.origin == self.origin
                and verify_checkpoint(cp, self.public_key)
            ):
                return cp
        if sign:
            return self.checkpoint()
        covered = max((cp.size for cp in stored), default=0)
        raise NotCovered(ERR_NOT_COVERED.format(seq=seq, covered=covered))

    def inclusion_proof(self, record: Record, *, checkpoint: bool = False) -> dict[str, Any]:
        """Prove that a record is in the ledger under a signed checkpoint (RFC 9162).

        Uses the latest stored checkpoint that covers the record. If none does, raises
        :class:`NotCovered` (reading never writes) unless ``checkpoint`` asks to sign one.

        Returns
        -------
        dict
            ``id``, ``seq`` (= ``leaf_index``), ``leaf_hash``, ``record`` (the canonical record
            text, whose leaf hash is ``leaf_hash``), ``tree_size``, ``root``, ``proof`` (hex
            list), ``checkpoint`` (its JSON) and ``verified`` (the proof checks against the
            checkpoint root and the checkpoint's signature against this ledger's key).

        Raises
        ------
        NotCovered
            If no checkpoint covers the record and ``checkpoint`` is false.
        IntegrityError
            If the ledger does not match the checkpoint.
        """
        cp = self._checkpoint_covering(record.seq, checkpoint)
        with self.lock:
            tree = self.sync()
            if tree.root(cp.size) != cp.root:
                raise IntegrityError(
                    f"the ledger no longer matches its checkpoint of size {cp.size}; run verify"
                )
            proof = tree.inclusion_proof(record.seq, cp.size)
        leaf = bytes.fromhex(record.hash)
        verified = verify_inclusion(leaf, record.seq, cp.size, proof, cp.root) and (
            verify_checkpoint(cp, self.public_key)
        )
        return {
            "id": record.id,
            "seq": record.seq,
            "leaf_index": record.seq,
            "leaf_hash": record.hash,
            "record": record.data.decode("utf-8"),
            "tree_size": cp.size,
            "root": cp.root.hex(),
            "proof": [p.hex() for p in proof],
            "checkpoint": cp.to_json(),
            "verified": verified,
        }

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> dict[str, Any]:
        """Prove that the ledger at ``new_size`` extends the ledger at ``old_size`` (RFC 9162).

        Parameters
        ----------
        old_size
            The earlier size, ``1 <= old_size <= new_size``.
        new_size
            The later size; defaults to the current size.

        Returns
        -------
        dict
            ``old_size``, ``new_size``, ``old_root``, ``new_root``, ``proof`` (hex list),
            ``old_checkpoint`` / ``new_checkpoint`` (stored checkpoints of exactly those sizes,
            or ``None``) and ``verified``.

        Raises
        ------
        LedgerError
            If the sizes are out of range.
        IntegrityError
            If the chain does not verify or contradicts an earlier checkpoint.
        """
        with self.lock:
            tree = self.sync()
            size = tree.size
            new = size if new_size is None else new_size
            if not 1 <= old_size <= new <= size:
                raise LedgerError(
                    f"need 1 <= old_size <= new_size <= {size}, got {old_size} and {new}"
                )
            proof = tree.consistency_proof(old_size, new)
            old_root, new_root = tree.root(old_size), tree.root(new)
        stored = {(cp.size, cp.root): cp for cp in self.store.checkpoints()}
        old_cp, new_cp = stored.get((old_size, old_root)), stored.get((new, new_root))
        return {
            "old_size": old_size,
            "new_size": new,
            "old_root": old_root.hex(),
            "new_root": new_root.hex(),
            "proof": [p.hex() for p in proof],
            "old_checkpoint": None if old_cp is None else old_cp.to_json(),
            "new_checkpoint": None if new_cp is None else new_cp.to_json(),
            "verified": verify_consistency(old_size, new, old_root, new_root, proof),
        }

    def consistency_hashes(self, old_size: int, new_size: int) -> list[bytes]:
        """Return the RFC 9162 consistency proof from ``old_size`` to ``new_size`` (raw hashes).

        Raises
        ------
        LedgerError
            If the sizes are out of range.
        """
        with self.lock:
            tree = self.sync()
            if not 0 <= old_size <= new_size <= tree.size:
                raise LedgerError(
                    f"need 0 <= old_size <= new_size <= {tree.size}, got {old_size}, {new_size}"
                )
            return tree.consistency_proof(old_size, new_size) if old_size else []

    def write_tiles(self, directory: Path, size: int, since: int = 0) -> list[Path]:
        """Write the C2SP tiles of the first ``size`` records under ``directory``."""
        with self.lock:
            tree = self.sync()
            if size > tree.size:
                raise LedgerError(f"cannot publish tiles of {size} records: the tree has fewer")
            return write_tiles(directory, tree, size, since=since)
