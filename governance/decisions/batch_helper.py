"""A helper process that builds batch chunks while this process writes them to the ledger.

``score_frame`` spends its time in two halves of similar size: building a chunk's entries
(scores, explanations, recourse, encoded bodies) and appending them (chaining, hashing, the
store's statements and commit). Both are mostly Python, so threads cannot overlap them: a
thread that built the next chunk during the append made ``score_frame`` no faster (the GIL).
A second process can: while this one appends chunk N, the helper builds chunk N+1.

The helper is this package's own code in a fresh interpreter (see
:mod:`governance.ledger.child_process`). Once its imports are done it says so; until then this
process builds its chunks itself rather than wait. It gets the version's batch plan once (the
model, the body templates, the recourse policy), then each chunk of the frame with its subject
keys (never the ledger's key), and answers with the chunk built flat (scores, outcomes, record
ids, encoded decision and recourse bodies: cheap to pickle); this process makes the ledger
entries from it and appends them. Questions and answers travel through two files in memory
shared with the helper, the pipes carrying their lengths. The helper writes nothing else
anywhere. The parent reads at most one answer per question, in order.

Whatever goes wrong with the helper (it cannot start, dies, answers with a failure, sends
something unreadable), the parent builds that chunk, and the rest, itself: a bad row then
fails with the error it gives without a helper, and nothing is decided twice or skipped.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import IO, Any

from governance.decisions.batch import collector_paused
from governance.ledger import child_process

__all__ = ["HELPER_MIN_ROWS", "ChunkHelper", "helper_main"]

log = logging.getLogger(__name__)

HELPER_MIN_ROWS = 100_000
"""Frames at least this long get a helper. It takes about 2 s to start (imports), while this
process builds its chunks itself; after that each 10,000-row chunk costs this process its append
alone. Alternating with and without it
(2026-12-06, SQLite): even at 100,000 rows (13.7-16.5k against 12.4-15.6k decisions/s), +20% at
200,000, +23% at 1,000,000 (14.6k against 11.8k)."""

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_LENGTH = struct.Struct(">Q")  # a message's length in bytes, on the pipes
_READY = _LENGTH.pack(0)  # the helper's first word: its imports are done


def helper_main() -> None:
    """The helper's loop: questions (a plan and a chunk) in, one answer per question out.

    ``argv``: the descriptors of the questions' and the answers' files, shared with the parent,
    then the modules to import before saying it is ready. Each message is in its file; the
    pipes carry its length alone (:data:`_LENGTH`).
    """
    questions, answers = int(sys.argv[1]), int(sys.argv[2])
    preload = sys.argv[3:]
    for module in preload:
        importlib.import_module(module)
    # The imports' objects stay: full collections need not walk them. Else every 9th chunk or
    # so walked them all again: 250 ms more, a build's time (1,000,000 rows, 2026-12-07).
    gc.freeze()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(_READY)
    stdout.flush()
    plan: Any = None
    while True:
        question = _receive(stdin, questions)
        if question is None:  # the parent closed (or died mid-question)
            return
        new_plan, at, part, ood_rows, keys = pickle.loads(question)
        if new_plan is not None:
            plan = new_plan
        try:
            with collector_paused():
                answer: tuple[Any, ...] = ("built", at, plan.build(part, ood_rows, keys))
        except Exception as exc:  # the parent builds the chunk itself and gets the real error
            answer = ("failed", at, f"{type(exc).__name__}: {exc}")
        _send(stdout, answers, pickle.dumps(answer, protocol=_PROTOCOL))


def _send(pipe: IO[bytes], fd: int, message: bytes) -> None:
    """Put ``message`` in the shared file ``fd`` and its length on ``pipe``."""
    pipe.write(_LENGTH.pack(_write_at(fd, message)))  # 8 bytes: the pipe always holds them
    pipe.flush()


def _receive(pipe: IO[bytes], fd: int) -> bytes | None:
    """The message whose length ``pipe`` gives next, from the shared file ``fd`` (None: the
    other side closed the pipe)."""
    head = pipe.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    return _read_at(fd, *_LENGTH.unpack(head))


def _shared_file() -> int:
    """A file for messages to or from the helper: in memory where the system allows it
    (Linux's ``memfd``), else an unlinked temporary file."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("governance-batch-helper", os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="governance-batch-helper-")
    os.unlink(path)
    return fd


def _write_at(fd: int, data: bytes) -> int:
    """Write ``data`` at the start of file ``fd``; returns its length."""
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], done)
    return done


def _read_at(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of file ``fd``."""
    parts, done = [], 0
    while done < size:
        part = os.pread(fd, size - done, done)
        if not part:
            raise EOFError(f"the message is {done} bytes, not {size}")
        parts.append(part)
        done += len(part)
    return b"".join(parts)


class ChunkHelper:
    """The parent's side: ask for one chunk ahead, take it when its turn comes.

    Use as a context manager; the helper process ends with it.

    A chunk's answer is some 16 MB (its encoded bodies). Sent through a pipe, the parent read
    it 64 KB at a time, each read waking the helper to write the next (about 40 ms a chunk,
    4 µs a row, 2026-12-07): the helper writes it to a shared file instead, while this process
    appends, and this one reads it in one call. The question goes the same way.
    """

    def __init__(self, preload: Sequence[str] = ()) -> None:
        """``preload``: modules the helper imports before it is ready (those the plans unpickle
        into: their imports take the helper's start)."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
        self._questions, self._answers = _shared_file(), _shared_file()
        try:
            self._proc: subprocess.Popen[bytes] | None = child_process.start(
                "from governance.decisions.batch_helper import helper_main; helper_main()",
                str(self._questions),
                str(self._answers),
                *preload,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                pass_fds=(self._questions, self._answers),
            )
        except BaseException:
            self._close_files()
            raise
        self._ready = False  # whether its imports are done (it said so)
        self._plan: object = None  # the plan the helper holds
        self._asked: tuple[object, int] | None = None  # (plan, at) of the question in flight

    @property
    def alive(self) -> bool:
        """Whether the helper can still be asked."""
        return self._proc is not None

    def ready(self, timeout: float = 0.0) -> bool:
        """Whether the helper has started and can be asked, waiting at most ``timeout`` s.

        Its imports take a second or two: until they are done, :meth:`ask` asks nothing and
        the caller builds its chunks itself, rather than wait.
        """
        proc = self._proc
        if proc is None:
            return False
        if self._ready:
            return True
        assert proc.stdout is not None
        if not select.select([proc.stdout], [], [], timeout)[0]:
            return False
        if proc.stdout.read(_LENGTH.size) != _READY:
            self._fail("the batch helper did not start")
            return False
        self._ready = True
        return True

    def ask(self, plan: object, at: int, part: Any, ood_rows: Any, keys: Any) -> None:
        """Ask for the chunk at row ``at`` built by ``plan`` (the last answer must be taken)."""
        proc = self._proc
        if proc is None or self._asked is not None or not self.ready():
            return
        question = (None if plan is self._plan else plan, at, part, ood_rows, keys)
        assert proc.stdin is not None
        try:
            _send(proc.stdin, self._questions, pickle.dumps(question, protocol=_PROTOCOL))
        except Exception as exc:  # the plan does not pickle, no room for it, the helper died
            self._fail(f"cannot send the batch helper a chunk: {exc}")
            return
        self._plan = plan
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
        try:
            message = _receive(proc.stdout, self._answers)
            if message is None:
                raise EOFError("no answer")
            answer = pickle.loads(message)
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
        self._close_files()

    def _close_files(self) -> None:
        self._stderr.close()
        for fd in (self._questions, self._answers):
            os.close(fd)
