"""A helper process that builds batch chunks while this process writes them to the ledger.

``score_frame`` spends its time in two halves of similar size: building a chunk's entries
(scores, explanations, recourse, encoded bodies) and appending them (chaining, hashing, the
store's statements and commit). Both are mostly Python, so threads cannot overlap them: a
thread that built the next chunk during the append made ``score_frame`` no faster (the GIL).
A second process can: while this one appends chunk N, the helper builds chunk N+1.

The helper is this package's own code in a fresh interpreter (see
:mod:`governance.ledger.child_process`). It gets the version's batch plan once (the model, the
body templates, the recourse policy), then each chunk of the frame with its subject keys (never
the ledger's key), and answers with the chunk built flat (scores, outcomes, record ids, encoded
decision and recourse bodies: cheap to pickle); this process makes the ledger entries from it
and appends them. The helper writes nothing anywhere. The parent reads at most one answer per
question, in order.

Whatever goes wrong with the helper (it cannot start, dies, answers with a failure, sends
something unreadable), the parent builds that chunk, and the rest, itself: a bad row then
fails with the error it gives without a helper, and nothing is decided twice or skipped.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import subprocess
import sys
import tempfile
import threading
from typing import Any

from governance.decisions.batch import collector_paused
from governance.ledger import child_process

__all__ = ["HELPER_MIN_ROWS", "ChunkHelper", "helper_main"]

log = logging.getLogger(__name__)

HELPER_MIN_ROWS = 100_000
"""Frames at least this long get a helper. It takes about 2 s to start (imports); after that
each 10,000-row chunk costs this process its append alone. Alternating with and without it
(2026-12-06, SQLite): even at 100,000 rows (13.7-16.5k against 12.4-15.6k decisions/s), +20% at
200,000, +23% at 1,000,000 (14.6k against 11.8k)."""

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def helper_main() -> None:
    """The helper's loop: a plan, then chunks, on stdin; one answer per chunk on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    plan: Any = None
    while True:
        try:
            message = pickle.load(stdin)
        except (EOFError, pickle.UnpicklingError):  # the parent closed (or died mid-question)
            return
        if message[0] == "plan":
            plan = message[1]
            continue
        _, at, part, ood_rows, keys = message
        try:
            with collector_paused():
                answer: tuple[Any, ...] = ("built", at, plan.build(part, ood_rows, keys))
        except Exception as exc:  # the parent builds the chunk itself and gets the real error
            answer = ("failed", at, f"{type(exc).__name__}: {exc}")
        pickle.dump(answer, stdout, protocol=_PROTOCOL)
        stdout.flush()


def _write(proc: subprocess.Popen[bytes], payload: bytes) -> None:
    """Write a question to the helper (a dead helper is noticed when its answer is read)."""
    assert proc.stdin is not None
    with contextlib.suppress(OSError, ValueError):  # ValueError: closed meanwhile
        proc.stdin.write(payload)
        proc.stdin.flush()


class ChunkHelper:
    """The parent's side: ask for one chunk ahead, take it when its turn comes.

    Use as a context manager; the helper process ends with it.
    """

    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
        self._proc: subprocess.Popen[bytes] | None = child_process.start(
            "from governance.decisions.batch_helper import helper_main; helper_main()",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._plan: object = None  # the plan the helper holds
        self._asked: tuple[object, int] | None = None  # (plan, at) of the question in flight
        self._writer: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the helper can still be asked."""
        return self._proc is not None

    def ask(self, plan: object, at: int, part: Any, ood_rows: Any, keys: Any) -> None:
        """Ask for the chunk at row ``at`` built by ``plan`` (the last answer must be taken)."""
        proc = self._proc
        if proc is None or self._asked is not None:
            return
        try:
            payload = b""
            if plan is not self._plan:
                payload = pickle.dumps(("plan", plan), protocol=_PROTOCOL)
            payload += pickle.dumps(("chunk", at, part, ood_rows, keys), protocol=_PROTOCOL)
        except Exception as exc:  # something in the plan does not pickle
            self._fail(f"cannot send the batch helper a chunk: {exc}")
            return
        self._plan = plan
        # Written by a thread: the helper may still be starting (its imports take seconds), and
        # this process has a chunk to append meanwhile. take() waits for the writer first.
        self._writer = threading.Thread(target=_write, args=(proc, payload), daemon=True)
        self._writer.start()
        self._asked = (plan, at)

    def take(self, plan: object, at: int) -> Any:
        """The chunk at ``at`` as ``plan.build`` returns it, or None.

        None when that chunk was not asked for (an answer to another question is read and
        dropped) or the helper failed: the caller builds the chunk itself.
        """
        proc, asked = self._proc, self._asked
        if proc is None or asked is None:
            return None
        self._asked = None
        assert proc.stdout is not None
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        try:
            answer = pickle.load(proc.stdout)
        except Exception as exc:  # died, or wrote something else
            self._fail(f"the batch helper stopped answering: {exc!r}")
            return None
        if answer[0] != "built" or answer[1] != asked[1]:
            # "failed": the chunk itself is bad, most likely; the caller's own build says how
            self._fail(f"the batch helper could not build rows from {asked[1]}: {answer[2:]}")
            return None
        if asked != (plan, at):
            return None  # a question about a plan since replaced
        return answer[2]

    def _fail(self, message: str) -> None:
        self.close()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
        log.warning("%s; building the rest here%s", message, f" ({tail})" if tail else "")

    def close(self) -> None:
        """End the helper: killed, as it holds nothing and writes nothing (it may be starting,
        building a chunk no one will take, or waiting for a question)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        if self._writer is not None:  # a write in progress fails now
            self._writer.join()
            self._writer = None
        self._asked = None
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        proc.wait()

    def __enter__(self) -> ChunkHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._stderr.close()
