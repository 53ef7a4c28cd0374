"""The stage runner's record of what each stage reads and writes is dvc.yaml's, file for file.

The OpenLineage events (``runner.STAGE_FILES``) and DVC's cache invalidation (``dvc.yaml``) are
two descriptions of one data flow; if they drift, either lineage lies or ``dvc repro`` skips a
stage whose input changed. Reads only committed files, so it holds in a fresh clone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from support import REPO

from governance.pipeline import stages
from governance.pipeline.runner import STAGE_FILES
from governance.pipeline.workspace import PATHS

DVC: dict[str, Any] = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
NAME_OF = {f.name: getattr(PATHS, f.name) for f in dataclasses.fields(PATHS)}
BY_PATH = {path: name for name, path in NAME_OF.items()}


def _paths(entries: list[Any]) -> list[str]:
    """dvc.yaml lists a path either bare or as a one-key mapping with its options."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries]


def test_every_stage_has_its_files() -> None:
    assert list(STAGE_FILES) == list(stages.STAGES) == list(DVC)


@pytest.mark.parametrize("name", list(DVC))
def test_reads_are_dvc_data_deps(name: str) -> None:
    deps = _paths(DVC[name].get("deps", []))
    data = sorted(BY_PATH[p] for p in deps if p in BY_PATH)
    assert sorted(STAGE_FILES[name][0]) == data
    # nothing else in deps looks like pipeline data: only code, specs and sources
    others = [p for p in deps if p not in BY_PATH]
    assert all(p.startswith(("governance/", "expectations", "sources")) for p in others), others


@pytest.mark.parametrize("name", list(DVC))
def test_writes_are_dvc_outs_metrics_and_plots(name: str) -> None:
    stage = DVC[name]
    written = _paths(stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []))
    assert sorted(STAGE_FILES[name][1]) == sorted(BY_PATH[p] for p in written)


def test_every_pipeline_file_is_written_by_one_stage() -> None:
    writers = [n for _, outs in STAGE_FILES.values() for n in outs]
    assert sorted(writers) == sorted(NAME_OF)
