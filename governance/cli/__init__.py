"""The ``governance`` command line.

``governance stage ...`` (the pipeline, called by dvc.yaml), ``lineage``, ``score``, ``serve``,
``keys``, ``audit ...`` and ``witness ...``.
"""

from governance.cli import (  # noqa: F401  (commands)
    audit,
    decisions,
    integrity,
    lifecycle,
    pipeline,
    subjects,
    witness,
)
from governance.cli.common import app, main

__all__ = ["app", "main"]
