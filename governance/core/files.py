"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replacing"]


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
