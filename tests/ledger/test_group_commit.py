"""The leader/follower group commit, against a hand-written store that shows its transactions."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.ledger._commit import GroupCommit, covering
from governance.ledger.records import PendingRecord, Receipt
from governance.ledger.store import Fence

POISON = "poison"


class FakeStore:
    """Commits instantly, one call = one transaction; the first call waits until released."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.fences: list[list[Fence]] = []  # the fences each transaction checked
        self.release = threading.Event()
        self.entered = threading.Event()
        self._size = 0
        self._lock = threading.Lock()

    def append(self, records: list[PendingRecord], fences: Sequence[Fence] = ()) -> list[Receipt]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        with self._lock:  # the real stores serialise on the chain lock
            if any(r.type == POISON for r in records):
                raise ValueError("this batch cannot be stored")
            self.transactions.append([r.id for r in records])
            self.fences.append(list(fences))
            start, self._size = self._size, self._size + len(records)
        return [Receipt(start + i, r.id, f"{start + i:064x}", "t") for i, r in enumerate(records)]


def _records(name: str, n: int, type_: str = "decision") -> list[PendingRecord]:
    return [PendingRecord(f"{name}-{i}", type_, b"{}") for i in range(n)]


def _queued(gc: GroupCommit, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(gc._queue) < n:  # every follower is waiting behind the leader's commit
        assert time.monotonic() < deadline, "followers did not queue up"
        time.sleep(0.001)


def _run(gc: GroupCommit, name: str, records: list[PendingRecord], out: dict[str, Any]) -> None:
    try:
        out[name] = gc.append(records)
    except BaseException as exc:
        out[name] = exc


def _led(records: int = 1) -> tuple[FakeStore, GroupCommit, dict[str, Any], threading.Thread]:
    """A group commit whose leader ("lead", ``records`` records) is inside its commit, held
    there until ``store.release`` is set: whoever appends meanwhile queues behind it."""
    store = FakeStore()
    gc = GroupCommit(store)  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    leader = threading.Thread(target=_run, args=(gc, "lead", _records("lead", records), out))
    leader.start()
    assert store.entered.wait(30)
    return store, gc, out, leader


def test_waiting_callers_share_one_transaction() -> None:
    store, gc, out, leader = _led(2)
    followers = [
        threading.Thread(target=_run, args=(gc, f"f{k}", _records(f"f{k}", 1 + k % 3), out))
        for k in range(15)
    ]
    for t in followers:
        t.start()
    _queued(gc, 15)
    order = [r.pending[0].id.split("-")[0] for r in gc._queue]
    store.release.set()
    for t in [leader, *followers]:
        t.join(30)
    # two transactions: the leader's, then every follower's records together, in queue order
    assert len(store.transactions) == 2
    assert store.transactions[0] == ["lead-0", "lead-1"]
    assert store.transactions[1] == [
        r.id for name in order for r in _records(name, 1 + int(name[1:]) % 3)
    ]
    for name, receipts in out.items():
        assert [r.id for r in receipts] == [r.id for r in _records(name, len(receipts))]
        seqs = [r.seq for r in receipts]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # contiguous
    total = 2 + sum(1 + k % 3 for k in range(15))
    assert sorted(r.seq for rs in out.values() for r in rs) == list(range(total))


def test_one_bad_caller_fails_alone() -> None:
    store, gc, out, leader = _led()
    names = ["a", "bad", "c"]
    threads = [
        threading.Thread(
            target=_run,
            args=(gc, n, _records(n, 2, POISON if n == "bad" else "decision"), out),
        )
        for n in names
    ]
    for t in threads:
        t.start()
    _queued(gc, 3)
    store.release.set()
    for t in [leader, *threads]:
        t.join(30)
    assert isinstance(out["bad"], ValueError)
    for n in ("lead", "a", "c"):
        assert [r.id for r in out[n]] == [r.id for r in _records(n, len(out[n]))]
    assert not gc._leading and not gc._queue


def test_many_threads_many_commits_lose_nothing() -> None:
    store = FakeStore()
    store.entered.set()  # no gate
    gc = GroupCommit(store)  # type: ignore[arg-type]
    out: dict[str, Any] = {}

    def work(k: int) -> None:
        for i in range(40):
            _run(gc, f"t{k}.{i}", _records(f"t{k}.{i}", 1 + (i % 2)), out)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == 16 * 40
    ids = [r.id for rs in out.values() for r in rs]
    assert len(ids) == len(set(ids)) == sum(len(t) for t in store.transactions)
    assert len(store.transactions) <= len(out)
    assert not gc._leading and not gc._queue


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_leader_fails_its_followers_and_hands_over(error: type) -> None:
    class Interrupting(FakeStore):
        calls = 0

        def append(
            self, records: list[PendingRecord], fences: Sequence[Fence] = ()
        ) -> list[Receipt]:
            self.calls += 1
            if self.calls == 2:
                raise error()
            return super().append(records, fences)

    store = Interrupting()
    gc = GroupCommit(store)  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    leader = threading.Thread(target=_run, args=(gc, "lead", _records("lead", 1), out))
    leader.start()
    assert store.entered.wait(30)
    followers = [
        threading.Thread(target=_run, args=(gc, f"f{k}", _records(f"f{k}", 1), out))
        for k in range(4)
    ]
    for t in followers:
        t.start()
    _queued(gc, 4)
    store.release.set()
    for t in followers:
        t.join(30)
    leader.join(30)
    assert [r.id for r in out["lead"]] == ["lead-0"]
    # the second leader was interrupted: it and every caller in its batch get the exception
    # instead of waiting for ever, and the group commit is usable again
    failed = [n for n in out if n != "lead"]
    assert len(failed) == 4 and all(isinstance(out[n], error) for n in failed)
    assert not gc._leading and not gc._queue
    assert [r.id for r in gc.append(_records("later", 1))] == ["later-0"]


def test_each_request_brings_its_fences_into_the_shared_transaction_and_its_retry() -> None:
    store, gc, out, leader = _led()
    a, b = Fence("m", 3), Fence("m", 5)
    fenced = threading.Thread(target=lambda: out.update(a=gc.append(_records("a", 1), [a])))
    poisoned = threading.Thread(
        target=_run, args=(gc, "bad", _records("bad", 1, type_=POISON), out)
    )
    other = threading.Thread(target=lambda: out.update(b=gc.append(_records("b", 2), [b])))
    for t in (fenced, poisoned, other):
        t.start()
        _queued(gc, [fenced, poisoned, other].index(t) + 1)
    store.release.set()
    for t in (leader, fenced, poisoned, other):
        t.join(30)
    # the combined commit failed on the poisoned batch: each request was retried alone, each
    # with its own fences only
    assert isinstance(out["bad"], ValueError)
    assert store.transactions == [["lead-0"], ["a-0"], ["b-0", "b-1"]]
    assert store.fences == [[], [a], [b]]


def test_a_shared_transaction_checks_each_models_earliest_fence_once() -> None:
    store, gc, out, leader = _led()
    fences = [[Fence("m", 5)], [Fence("n", 7), Fence("m", 3)], [], [Fence("m", 4)]]
    callers = [
        threading.Thread(
            target=lambda k=k, f=f: out.update({k: gc.append(_records(f"c{k}", 1), f)})
        )
        for k, f in enumerate(fences)
    ]
    for k, t in enumerate(callers):
        t.start()
        _queued(gc, k + 1)
    store.release.set()
    for t in [leader, *callers]:
        t.join(30)
    assert store.transactions == [["lead-0"], ["c0-0", "c1-0", "c2-0", "c3-0"]]
    assert sorted(store.fences[1], key=lambda f: f.model) == [Fence("m", 3), Fence("n", 7)]


_models = st.sampled_from(["m", "n", "o"])


@given(
    fences=st.lists(st.builds(Fence, _models, st.integers(0, 50)), max_size=12),
    moves=st.lists(st.tuples(_models, st.integers(0, 60)), max_size=4),
)
def test_the_covering_fences_fail_exactly_when_one_of_the_fences_does(
    fences: list[Fence], moves: list[tuple[str, int]]
) -> None:
    """A fence fails if its model moved at seq ``since`` or later (the stores' query)."""

    def fails(fence: Fence) -> bool:
        return any(model == fence.model and seq >= fence.since for model, seq in moves)

    kept = covering(fences)
    assert any(map(fails, kept)) == any(map(fails, fences))
    assert all(fence in fences for fence in kept)
    assert len({fence.model for fence in kept}) == len(kept) == len({f.model for f in fences})
