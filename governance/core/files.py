"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["as_if_created", "replacing"]


@contextlib.contextmanager
def replacing(out: Path) -> Iterator[Path]:
    """A temporary file beside ``out`` for the block to fill.

    When the block ends without an error it is renamed onto ``out`` (atomic on one
    filesystem: a reader never sees half a file); in every case nothing of it stays behind.
    Work done in the block after the file is filled (recording that it was written) happens
    before the rename, so a failure there leaves ``out`` untouched too.
    """
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        tmp.replace(out)
    finally:
        with contextlib.suppress(OSError):  # renamed into place, or never written
            tmp.unlink()


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it, racing threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def as_if_created(path: Path) -> None:
    """Give ``path`` the permissions an ordinary ``open`` or ``mkdir`` would have given it.

    :func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` make files 0600 and folders 0700;
    what they become (a bundle or a pack for an auditor) should read like any other output.
    """
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())
