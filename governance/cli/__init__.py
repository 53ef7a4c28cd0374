"""The ``governance`` command line.

``governance stage ...`` (the pipeline, called by dvc.yaml), ``lineage``, ``score``, ``serve``,
``keys`` and ``audit ...``.
"""

from governance.cli import audit, decisions, lifecycle, pipeline  # noqa: F401  (the commands)
from governance.cli.common import app

__all__ = ["app"]
