"""The ``governance`` command line.

``governance stage ...`` (the pipeline, called by dvc.yaml), ``lineage``, ``score``, ``serve``,
``keys``, ``audit ...`` and ``witness ...``.
"""

from governance.cli import audit, decisions, lifecycle, pipeline, witness  # noqa: F401  (commands)
from governance.cli.common import app

__all__ = ["app"]
