"""Dagster code location: loads the definitions in ``governance/defs/`` and nothing else."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Every definition under ``governance/defs/``."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
