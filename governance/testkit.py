"""Throwaway clones of this source checkout, shared by the tests and the benchmarks.

Standard library only, so the benchmarks can time the package's imports after using it.

Not part of the product: it copies the working tree of the checkout the package is installed
from (editable install), so it only works in a development checkout.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; return its standard output (raises on failure)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def clone_project(dest: Path, *, who: str = "test") -> Path:
    """Copy the working tree into ``dest`` and commit it there (a clean, real commit).

    The working tree's tracked and untracked-but-not-ignored files, uncommitted edits included,
    with a history of their own, so lineage can name a real, clean commit.
    """
    files = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(
        dest,
        "-c",
        f"user.name={who}",
        "-c",
        f"user.email={who}@example.invalid",
        "commit",
        "-qm",
        f"{who} clone",
    )
    return dest
