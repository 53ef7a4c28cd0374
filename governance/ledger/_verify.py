"""Verification of a ledger store: the chain walk (optionally in two processes) and checkpoints.

:func:`verify_store` walks every record in seq order (a helper process may walk the second
half, see :class:`_VerifyHelper`), grows the Merkle tree up to the largest checkpoint, then
checks every checkpoint's signature and root against it. It needs only the store and the
checkpoint public key: no secret.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.ledger import child_process
from governance.ledger.checkpoint import Checkpoint, CheckpointDirectory, verify_checkpoint
from governance.ledger.merkle import MerkleTree
from governance.ledger.records import ChainBreak, ChainWalker
from governance.ledger.store import ChainSource, LedgerStore

__all__ = ["VerifyResult", "gather_checkpoints", "verify_helper_main", "verify_store", "walk_store"]

_PARALLEL_MIN = 200_000
_ALIGN = 4096  # the helper's half starts at a multiple of this: its subtrees join as they are


def _walk_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Walk the chain from ``job["start"]`` (in a helper process); return the state or a break.

    The state includes the Merkle tree of the walked records' leaf hashes up to the verifier's
    target (``job["leaves"]`` leaves in all), so that both processes share the hashing too.
    """
    walker = ChainWalker(
        job["start"],
        job["prev"],
        job["prev_ts"],
        deep=job["deep"],
        canonical=job["canonical"],
        record_format=job["record_format"],
    )
    tree = MerkleTree()
    leaves: list[bytes] = []
    wanted = job["leaves"] - job["start"]
    try:
        for rows in job["source"].rows(job["start"], deep=job["deep"]):
            feed_tree(walker, tree, rows, wanted, leaves)
    except ChainBreak as brk:
        return {"break": (brk.seq, brk.reason), "next_seq": walker.next_seq}
    return {"break": None, "next_seq": walker.next_seq, "tree": tree}


def verify_helper_main() -> None:
    """Entry point of a verification helper process: a pickled job on stdin, result on stdout."""
    job = pickle.load(sys.stdin.buffer)
    result = _walk_job(job)
    pickle.dump(result, sys.stdout.buffer)
    sys.stdout.flush()


def _send(job: Mapping[str, Any], stdin: IO[bytes]) -> None:
    """Pickle ``job`` to a helper's stdin and close it (a dead helper is noticed in finish)."""
    with contextlib.suppress(OSError):
        try:
            pickle.dump(job, stdin)
        finally:
            stdin.close()


class _VerifyHelper:
    """A helper process walking ``[start, end)`` of the chain while this one walks the rest.

    It starts from the stored hash and timestamp of record ``start - 1``; the first half's walk
    must end exactly there (same hash), which ties the halves into one verified chain. It also
    hashes its records' part of the Merkle tree, which joins this process's part as it is
    (:meth:`MerkleTree.join`).
    """

    def __init__(
        self,
        source: ChainSource,
        start: int,
        prev: bytes,
        prev_ts: bytes,
        deep: bool,
        target: int,
        canonical: str,
        record_format: str,
    ) -> None:
        self.start = start
        self.prev, self.prev_ts = prev, prev_ts
        self._job: dict[str, Any] = {
            "source": source,
            "start": start,
            "prev": prev,
            "prev_ts": prev_ts,
            "deep": deep,
            "leaves": target,
            "canonical": canonical,
            "record_format": record_format,
        }
        self._proc = child_process.start(
            "from governance.ledger._verify import verify_helper_main; verify_helper_main()",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdin = self._proc.stdin
        assert stdin is not None
        self._proc.stdin = None
        # A store's job is small, but a bundle's carries published leaf hashes (megabytes): a
        # thread sends it while the helper starts, so this process starts walking at once. If
        # the helper dies first, the write fails here and finish() walks its half instead.
        self._sender = threading.Thread(target=_send, args=(self._job, stdin), daemon=True)
        self._sender.start()

    def finish(self, walker: ChainWalker, tree: MerkleTree) -> ChainWalker:
        """Join the helper's half to ``walker`` (which has walked ``[0, start)``)."""
        if walker.prev != self.prev or walker.prev_ts != self.prev_ts:
            raise ChainBreak(self.start - 1, "inconsistent record (changed during verification)")
        out, err = self._proc.communicate()
        self._sender.join()
        try:
            if self._proc.returncode != 0:
                raise ValueError(err.decode(errors="replace")[-500:])
            result = pickle.loads(out)
        except Exception:  # the helper failed: walk its half here instead, as it would have
            result = _walk_job(self._job)
        if result["break"] is not None:
            seq, reason = result["break"]
            walker.next_seq = result["next_seq"]
            raise ChainBreak(seq, reason)
        tree.join(result["tree"])
        return ChainWalker(
            result["next_seq"],
            deep=walker.deep,
            canonical=walker.canonical,
            record_format=walker.record_format,
        )

    def close(self) -> None:
        """Stop the helper if it still runs."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()
        self._sender.join()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`Ledger.verify`.

    Attributes
    ----------
    ok
        Whether every check passed.
    records
        Number of records that verified (all of them when ``ok``).
    first_bad
        The first seq whose integrity cannot be established, or ``None``: for a changed record
        its seq, for deleted records the first missing seq, for a truncation the first seq a
        checkpoint covers but the ledger lacks, for a rewritten prefix the end of the last
        checkpoint that still matches (or 0). ``None`` for a bad checkpoint signature.
    reason
        What is wrong, in words (starts with ``TRUNCATION`` for a truncated ledger).
    checkpoints
        Number of checkpoints (stored, exported and committed elsewhere, de-duplicated)
        checked.
    """

    ok: bool
    records: int
    first_bad: int | None = None
    reason: str | None = None
    checkpoints: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return asdict(self)


def gather_checkpoints(
    store: LedgerStore, directory: CheckpointDirectory | None
) -> tuple[list[tuple[str, Checkpoint]], str | None]:
    """Return ``[(source, checkpoint)]`` sorted by size, de-duplicated; or a problem."""
    found: list[tuple[str, Checkpoint]] = []
    try:
        found += [("stored", cp) for cp in store.checkpoints()]
    except ValueError as exc:
        return [], f"a checkpoint stored in the database is malformed: {exc}"
    if directory is not None:
        try:
            found += [(f"exported to {directory.path}", cp) for cp in directory.all()]
        except ValueError as exc:
            return [], f"an exported checkpoint is malformed: {exc}"
    return _unique(found), None


def _unique(found: Sequence[tuple[str, Checkpoint]]) -> list[tuple[str, Checkpoint]]:
    """Each checkpoint once (with where it was first found), by size then time."""
    unique: dict[tuple[Any, ...], tuple[str, Checkpoint]] = {}
    for source, cp in found:
        unique.setdefault((cp.origin, cp.size, cp.root, cp.timestamp, cp.signature), (source, cp))
    return sorted(unique.values(), key=lambda item: (item[1].size, item[1].timestamp))


def verify_store(
    store: LedgerStore,
    *,
    origin: str,
    canonical: str,
    record_format: str,
    directory: CheckpointDirectory | None,
    public_key: Ed25519PublicKey | bytes,
    deep: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    also: Sequence[tuple[str, Checkpoint]] = (),
) -> VerifyResult:
    """Verify a store's chain, hashes and checkpoints (see :meth:`Ledger.verify`).

    ``also`` holds more checkpoints to check, each with where it came from.
    """
    cps, problem = gather_checkpoints(store, directory)
    if problem is not None:
        return VerifyResult(False, 0, None, problem, 0)
    if also:
        cps = _unique([*cps, *also])
    target = max((cp.size for _, cp in cps), default=0)
    tree = MerkleTree()
    walker = ChainWalker(deep=deep, canonical=canonical, record_format=record_format)
    try:
        walker = walk_store(store, walker, tree, target, workers=workers, progress=progress)
    except ChainBreak as brk:
        return VerifyResult(False, walker.next_seq, brk.seq, brk.reason, 0)
    return _check_checkpoints(cps, tree, walker.next_seq, origin, public_key)


def walk_store(
    store: LedgerStore,
    walker: ChainWalker,
    tree: MerkleTree,
    target: int,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ChainWalker:
    """Walk every record of ``store`` with ``walker``, growing ``tree`` to ``target`` leaves.

    Needs no key. Returns the walker at the end of the chain (``next_seq`` = records).

    Raises
    ------
    ChainBreak
        At the first bad record; ``walker.next_seq`` then counts the records that verified.
    """
    total = store.head().size
    helper = _start_helper(store, total, target, workers, walker)
    try:
        _walk(
            store,
            walker,
            tree,
            target,
            walker.deep,
            None if helper is None else helper.start,
            progress,
        )
        if helper is not None:
            walker = helper.finish(walker, tree)
            if progress is not None:
                progress(walker.next_seq, max(total, walker.next_seq))
    finally:
        if helper is not None:
            helper.close()
    return walker


def _check_checkpoints(
    cps: list[tuple[str, Checkpoint]],
    tree: MerkleTree,
    records: int,
    origin: str,
    key: Ed25519PublicKey | bytes,
) -> VerifyResult:
    """Check every checkpoint's origin, signature, size and root against the walked tree."""
    good: list[int] = [0]
    for source, cp in cps:
        what = f"checkpoint of size {cp.size} signed at {cp.timestamp} ({source})"
        if cp.origin != origin:
            return VerifyResult(
                False, records, None, f"{what} belongs to another ledger ({cp.origin})", 0
            )
        if not verify_checkpoint(cp, key):
            return VerifyResult(
                False, records, None, f"{what} has an invalid signature for this key", 0
            )
        if cp.size > records:
            missing = cp.size - records
            return VerifyResult(
                False,
                records,
                records,
                f"TRUNCATION: {what} covers {cp.size} records but the ledger holds only"
                f" {records}: seq {records}..{cp.size - 1} ({missing} records) were removed",
                0,
            )
        if tree.root(cp.size) != cp.root:
            lower = max(size for size in good if size <= cp.size)
            return VerifyResult(
                False,
                records,
                lower,
                f"{what}: Merkle root mismatch: records in seq {lower}..{cp.size - 1} were"
                " rewritten after it was signed (the hash chain was recomputed)",
                0,
            )
        good.append(cp.size)
    return VerifyResult(True, records, None, None, len(cps))


def feed_tree(
    walker: ChainWalker,
    tree: MerkleTree,
    rows: Iterable[Sequence[Any]],
    target: int,
    leaves: list[bytes],
) -> None:
    """Walk ``rows``, adding their leaf hashes to ``tree`` until it holds ``target`` leaves.

    ``leaves`` is a buffer the caller reuses from one batch to the next.

    Raises
    ------
    ChainBreak
        At the first bad record of ``rows``.
    """
    if tree.size < target:
        leaves.clear()
        walker.feed(rows, leaves)
        tree.extend(leaves[: target - tree.size])
    else:
        walker.feed(rows)


def _walk(
    store: LedgerStore,
    walker: ChainWalker,
    tree: MerkleTree,
    target: int,
    deep: bool,
    stop: int | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Walk ``[walker.next_seq, stop)``, growing ``tree`` up to ``target`` leaves."""
    leaves: list[bytes] = []
    total = store.head().size if progress is not None else 0
    for rows in store.iter_chain(walker.next_seq, stop, deep=deep):
        feed_tree(walker, tree, rows, target, leaves)
        if progress is not None:
            progress(walker.next_seq, max(total, walker.next_seq))
    if stop is not None and walker.next_seq < stop:
        raise ChainBreak(
            walker.next_seq, f"record seq {walker.next_seq} is missing (records deleted)"
        )


def _start_helper(
    store: LedgerStore, total: int, target: int, workers: int | None, walker: ChainWalker
) -> _VerifyHelper | None:
    """Start a helper process on the second half of the chain, if worth it."""
    if workers is None:
        workers = 2 if (os.cpu_count() or 1) >= 2 and total >= _PARALLEL_MIN else 1
    if workers < 2 or total < 2:
        return None
    start = total // 2 - total // 2 % _ALIGN or total // 2
    boundary = store.get_by_seq(start - 1)
    boundary_ts = store.ts_from(start - 1)
    if boundary is None or boundary_ts is None:
        return None  # a record is missing there: the sequential walk will say which
    try:
        return _VerifyHelper(
            store.chain_source(),
            start,
            bytes(boundary[1]),
            boundary_ts.encode(),
            walker.deep,
            target,
            walker.canonical,
            walker.record_format,
        )
    except OSError:
        return None
