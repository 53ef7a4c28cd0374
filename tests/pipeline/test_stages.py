"""One name per stage: DVC stage = Dagster asset = ``defs/<stage>/`` = CLI command = function.

Reads only committed files (``dvc.yaml``, the package), so it holds in a fresh clone before
any ``dvc repro`` has made ``data/``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import dagster as dg
import pytest
import typer
import yaml
from support import REPO

from governance.cli import app
from governance.definitions import defs as load_defs
from governance.pipeline import stages

NAMES = list(stages.STAGES)
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_the_stages_in_order() -> None:
    assert NAMES == [
        "ingest",
        "validate",
        "split",
        "train",
        "evaluate",
        "fairness",
        "alternatives",
        "model_card",
        "register",
    ]


def test_dvc_stages_are_the_pipeline_stages_called_by_name() -> None:
    assert list(DVC) == NAMES
    for name, stage in DVC.items():
        assert stage["cmd"] == f"governance stage {name} --via dvc"


@pytest.mark.parametrize("name", NAMES)
def test_dvc_stage_depends_on_its_own_code(name: str) -> None:
    deps = DVC[name]["deps"]
    code = [d for d in deps if d.startswith("governance/")]
    assert {"governance/pipeline/stages.py", "governance/pipeline/workspace.py"} <= set(code)
    assert all((REPO / d).exists() for d in code), code


@pytest.mark.parametrize("name", ["ingest", "train", "model_card"])
def test_a_stage_that_writes_the_spec_s_words_reruns_when_a_spec_changes(name: str) -> None:
    """The scorecard's reasons are worded from the spec (its ``adverse`` and labels) and the
    card compares the two: with no dependency on the specs, ``dvc repro`` kept the old words
    after a spec was edited, and the card its old caveats."""
    assert {"governance/datasets", "governance/core/dataset.py"} <= set(DVC[name]["deps"])


def test_dagster_assets_of_the_pipeline_are_the_stages() -> None:
    d = load_defs()
    job = d.resolve_job_def("governed_pipeline")
    checks = {"validate_expectations_pass", "fairness_fairness_gate", "alternatives_lda_gate"}
    assert {n.name for n in job.graph.node_defs} == set(NAMES) | checks
    graph = d.resolve_asset_graph()
    for upstream, downstream in itertools.pairwise(NAMES):
        assert graph.get(dg.AssetKey(downstream)).parent_keys == {dg.AssetKey(upstream)}


@pytest.mark.parametrize("name", NAMES)
def test_each_stage_has_its_defs_folder(name: str) -> None:
    folder = Path(stages.__file__).parents[1] / "defs" / name
    assert (folder / "assets.py").is_file()
    assert f"def {name}(" in (folder / "assets.py").read_text()


def test_cli_stage_commands_are_the_stages() -> None:
    group = typer.main.get_command(app)
    stage_group = group.commands["stage"]  # type: ignore[attr-defined]
    assert sorted(stage_group.commands) == sorted(NAMES)
