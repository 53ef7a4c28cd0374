"""Running this package's own code in a child Python process (the verifier's helper, the batch
helper, the checkpointer).

``python -c CODE`` puts the working directory first on the child's import path, so a
``governance`` directory wherever the command was started (an old checkout, or one planted by
someone who can write there) would run in the child instead of this package: in the verifier's
helper, or in the checkpointer that holds the signing key. :func:`command` runs the child with
``-P`` (Python 3.11: no such entry) and :func:`environment` puts this package's root first on
``PYTHONPATH``, so the child imports exactly the code its parent runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["command", "environment", "start"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def command(code: str, *args: str) -> list[str]:
    """The argv that runs ``code`` (Python source) in this interpreter, with ``args``."""
    return [sys.executable, "-P", "-c", code, *args]


def environment() -> dict[str, str]:
    """This process's environment with this package's root first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def start(code: str, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``code`` with ``args`` as :func:`command` and :func:`environment` say (``popen``:
    more :class:`subprocess.Popen` arguments, such as the pipes)."""
    return subprocess.Popen(command(code, *args), env=environment(), **popen)
