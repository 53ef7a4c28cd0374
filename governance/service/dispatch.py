"""Where a request's decision runs: on the event loop's own thread, or in the thread pool.

A decision blocks until the ledger's commit is durable, so the service has run it in the
thread pool, where concurrent decisions wait together and the ledger's group commit puts them
in one transaction. The hand-off to a pool thread and back is not free: 0.13-0.18 ms of the
0.6-0.8 ms of CPU a one-application ``/invocations`` request costs here (2026-12-05), and a
server answering one caller at a time pays it for nothing, as no other decision is there to
share the commit.

So a decision runs on the event loop's thread when nothing would wait behind it: no other
decision is running or about to run (requests the loop has already read get one turn of the
loop to say so), and recent decisions were quick, their wall time averaged below
``inline_below``, the longest the loop may be kept busy. A slow disk or a distant database
raises that average and sends every decision to the pool; so does load, where decisions queue
for the pool and their wall time grows. The decision is the same either way: same code, same
ledger transaction, answered only once durable.

Under load it goes further: requests bound for the pool while :data:`HOPS` hops of the same
work are under way wait together, and the next hop takes all of them at once (``/invocations``
and ``POST /v1/decisions`` record them in one ledger transaction). One hop and one commit for
many requests, instead of one thread hand-off and one turn in the group commit each, is what a
server bound by one core's interpreter lock gains under concurrency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")
Item = TypeVar("Item")

INLINE_BELOW = 0.002
"""Default ``inline_below`` (seconds): a decision on this machine takes 0.4-0.7 ms."""

INLINE_BODY_MAX = 4096
"""Largest request body (bytes) whose decisions may run on the loop's thread: about ten
applications. A bigger one (a CSV of many rows) always goes to the pool, so its first run
cannot keep the loop busy for long before the running average notices."""

SMOOTHING = 0.2
"""Weight of the newest decision in the running average of their wall time."""

HOPS = 2
"""Pool hops one work given to :meth:`Dispatcher.run` has under way at once: while one waits
for its commit to be durable, the next prepares its decisions."""

WHERE = ("loop", "pool")
"""Where a decision ran, as :meth:`Dispatcher.counts` names it."""


class Dispatcher:
    """Runs a decision's blocking work on the loop's thread when alone and quick, else in the pool.

    Only coroutines on the event loop's thread touch its state, so it needs no lock.

    Parameters
    ----------
    inline_below
        Seconds: run on the loop's thread only while decisions' averaged wall time is below
        this. ``0`` always uses the pool.
    """

    def __init__(self, inline_below: float = INLINE_BELOW) -> None:
        if inline_below < 0:
            raise ValueError(f"inline_below must be >= 0 seconds, not {inline_below}")
        self.inline_below = inline_below
        self.recent = 0.0  # running average of a decision's wall time, seconds
        self._active = 0  # items between entering run() and finishing
        self._counts = dict.fromkeys(WHERE, 0)
        self._queues: dict[Callable[..., Any], _Queue[Any, Any]] = {}

    def counts(self) -> dict[str, int]:
        """Decisions run so far on the loop's thread (``loop``) and in the pool (``pool``)."""
        return dict(self._counts)

    async def run(
        self,
        item: Item,
        work: Callable[[list[Item]], Sequence[T | Exception]],
        *,
        body_bytes: int = 0,
    ) -> T:
        """Run ``work([item])`` (blocking: it decides and commits) where it costs least; return
        this item's result.

        On the loop's thread when alone and quick (see the module docstring); otherwise in the
        pool, where items wait together: while :data:`HOPS` hops of ``work`` are under way, the
        next one gets every item waiting, in arrival order. A request body over
        :data:`INLINE_BODY_MAX` bytes (``body_bytes``) always goes to the pool.

        ``work`` returns one result per item, in order: a value, or the exception to raise to
        that item's caller alone. An exception ``work`` raises goes to every item it was given.

        Raises
        ------
        Exception
            This item's exception.
        """
        self._active += 1
        started = time.perf_counter()
        try:
            if body_bytes <= INLINE_BODY_MAX and self._alone():
                await asyncio.sleep(0)  # requests already read reach here first
                if self._alone():
                    self._counts["loop"] += 1
                    return _unwrap(work([item])[0])
            self._counts["pool"] += 1
            queue = self._queues.setdefault(work, _Queue())
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            queue.waiting.append((item, future))
            if queue.hops < HOPS:
                queue.hops += 1
                queue.tasks.add(task := asyncio.ensure_future(self._hop(work, queue)))
                task.add_done_callback(queue.tasks.discard)
            return await future
        finally:
            self._active -= 1
            self.recent += SMOOTHING * (time.perf_counter() - started - self.recent)

    async def _hop(
        self, work: Callable[[list[Item]], Sequence[T | Exception]], queue: _Queue[Item, T]
    ) -> None:
        """Run ``work`` in the pool on everything waiting, until nothing is."""
        batch: list[tuple[Item, asyncio.Future[T]]] = []
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting, []
                try:
                    results: Sequence[T | Exception] = await run_in_threadpool(
                        work, [item for item, _ in batch]
                    )
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} requests")
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue  # its caller went away
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            queue.hops -= 1
            for _, future in batch:  # cancelled mid-hop (shutdown): nobody waits forever
                if not future.done():
                    future.cancel()
            if not queue.hops and not queue.waiting and self._queues.get(work) is queue:
                del self._queues[work]  # idle: a work seen once does not stay forever

    def _alone(self) -> bool:
        return self._active == 1 and self.recent < self.inline_below


@dataclass(eq=False)
class _Queue(Generic[Item, T]):
    """Items waiting for one work's next pool hop, and the hops under way."""

    waiting: list[tuple[Item, asyncio.Future[T]]] = field(default_factory=list)
    hops: int = 0
    tasks: set[asyncio.Future[None]] = field(default_factory=set)


def _unwrap(result: T | Exception) -> T:
    if isinstance(result, Exception):
        raise result
    return result
