"""Signing a checkpoint stays off the tree lock, and each round checks only what is new.

``TreeHeads.checkpoint`` reads and checks the earlier checkpoints without holding the tree's
lock (proofs and other checkpoints go on meanwhile), remembers the checkpoints it found
consistent so that a round's cost does not grow with the number ever signed, and still refuses
to sign when any checkpoint it has not seen before contradicts the ledger. Every checkpoint
commits exactly to the records it claims, even with appends running all along.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from governance.ledger import Entry, IntegrityError, Ledger
from governance.ledger import _tree as tree_module
from governance.ledger.checkpoint import sign_checkpoint
from governance.ledger.merkle import root_from_leaf_hashes
from governance.ledger.records import record_hash


def _open(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", home=tmp_path / "home")


def _append(ledger: Ledger, n: int) -> None:
    ledger.append_many([Entry("decision", {"n": i}) for i in range(n)])


def test_the_tree_lock_is_free_while_earlier_checkpoints_are_read(tmp_path: Path) -> None:
    with _open(tmp_path) as ledger:
        _append(ledger, 10)
        ledger.checkpoint()
        _append(ledger, 5)
        reading, release = threading.Event(), threading.Event()
        real = ledger.store.checkpoints

        def slow() -> list[Any]:
            if threading.current_thread() is signer:
                reading.set()
                assert release.wait(30)
            return real()

        ledger.store.checkpoints = slow  # type: ignore[method-assign]
        signer = threading.Thread(target=ledger.checkpoint)
        signer.start()
        try:
            assert reading.wait(30)
            # While the checkpoint reads the earlier ones, the lock is free: a proof goes on.
            assert ledger.tree.lock.acquire(timeout=5)
            ledger.tree.lock.release()
            assert ledger.consistency_proof(10, 15)["verified"]
            assert len(ledger.tree.consistency_hashes(10, 15)) > 0
        finally:
            release.set()
            signer.join(30)
        ledger.store.checkpoints = real  # type: ignore[method-assign]
        assert [cp.size for cp in ledger.checkpoints()] == [10, 15]
        assert ledger.verify().ok


def test_each_round_checks_only_new_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    real = tree_module.verify_checkpoint

    def counting(cp: Any, key: Any) -> bool:
        checked.append(cp.size)
        return real(cp, key)

    monkeypatch.setattr(tree_module, "verify_checkpoint", counting)
    with _open(tmp_path) as ledger:
        for _ in range(12):
            _append(ledger, 3)
            checked.clear()
            ledger.checkpoint()
            assert checked == []  # every earlier one was signed (or checked) by this object
    with _open(tmp_path) as ledger:  # a new process: checks all of them once
        _append(ledger, 3)
        checked.clear()
        ledger.checkpoint()
        assert sorted(checked) == [3 * k for k in range(1, 13)]
        _append(ledger, 3)
        checked.clear()
        ledger.checkpoint()
        assert checked == []


def test_a_contradicting_checkpoint_seen_later_still_refuses(tmp_path: Path) -> None:
    """A checkpoint that appears after others were vouched for is checked (never sign a fork)."""
    with _open(tmp_path) as ledger:
        _append(ledger, 8)
        good = ledger.checkpoint()
        _append(ledger, 4)
        ledger.checkpoint()
        # The operator's own key signs a different root for size 4 and exports it.
        forged = sign_checkpoint(
            ledger.tree._signing_key, origin=ledger.origin, size=4, root=b"\x07" * 32
        )
        ledger.checkpoint_dir.write(forged)
        _append(ledger, 1)
        with pytest.raises(IntegrityError, match="no longer matches its checkpoint of size 4"):
            ledger.checkpoint()
        # A copy of a vouched checkpoint with another signature is a new value: checked too
        # (here stored in the database, as an insider could).
        ledger.checkpoint_dir.path_for(4).unlink()
        bad = dataclasses.replace(good, signature=bytes(64))
        ledger.store.add_checkpoint(bad)
        with pytest.raises(IntegrityError, match="not a valid checkpoint"):
            ledger.checkpoint()


def test_checkpoints_commit_to_exactly_their_records_under_appends(tmp_path: Path) -> None:
    with _open(tmp_path) as ledger:
        _append(ledger, 1)
        stop = threading.Event()
        errors: list[BaseException] = []

        def appender() -> None:
            try:
                while not stop.is_set():
                    ledger.append("decision", {"x": 1})
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=appender) for _ in range(3)]
        for w in writers:
            w.start()
        try:
            signed = [ledger.checkpoint() for _ in range(15)]
        finally:
            stop.set()
            for w in writers:
                w.join(30)
        assert not errors
        leaves = [record_hash(r.data) for r in ledger.iter_records()]
        assert len({cp.size for cp in signed}) > 1
        for cp in signed:
            assert cp.root == root_from_leaf_hashes(leaves[: cp.size])
        assert ledger.verify().ok
