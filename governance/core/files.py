"""Writing a file whole or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["new_file", "new_folder", "replacing"]


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


def new_file(directory: Path, prefix: str, suffix: str = "") -> Path:
    """A new empty file with a unique name in ``directory``, made as ``open`` makes one (its
    mode from the umask: :func:`tempfile.mkstemp` would make it 0600, and what it becomes, a
    pack for reviewers, should read like any other output)."""
    return _new(directory, prefix, suffix, lambda p: os.close(os.open(p, _NEW_FILE, 0o666)))


def new_folder(directory: Path, prefix: str) -> Path:
    """A new empty folder with a unique name in ``directory``, made as ``mkdir`` makes one
    (not the 0700 of :func:`tempfile.mkdtemp`)."""
    return _new(directory, prefix, "", lambda p: os.mkdir(p, 0o777))


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def _new(directory: Path, prefix: str, suffix: str, make: Callable[[Path], None]) -> Path:
    for _ in range(100):
        path = Path(directory) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            make(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free name for {prefix}...{suffix} in {directory}")
