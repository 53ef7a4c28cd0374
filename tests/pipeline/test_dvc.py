"""The same pipeline through `dvc repro`, in a temporary git clone, with the real DVC CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support import (
    CORRUPTIONS,
    REPO,
    check_event_log,
    cli_env,
    set_params,
    write_corrupted_source,
)

from governance.core.dataset import file_md5
from governance.settings import Settings

pytestmark = pytest.mark.slow

DVC = REPO / ".venv-dvc" / "bin" / "dvc"
if not DVC.exists():  # pragma: no cover - `make test` always builds it
    pytest.skip(f"DVC's environment is missing ({DVC}); run `make env`", allow_module_level=True)


def run(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*args], cwd=project, env=cli_env(project), capture_output=True, text=True, timeout=600
    )
    if ok and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run(project, str(DVC), *args, ok=ok)


def lineage(project: Path, *args: str) -> dict:
    return json.loads(
        run(project, "governance", "lineage", "mortgage-denial", *args, "--json").stdout
    )


def test_dvc_repro_registers_lineage_that_matches_dvc_lock(project: Path, tmp_path: Path) -> None:
    dvc(project, "repro")
    head = run(project, "git", "rev-parse", "HEAD").stdout.strip()
    info = lineage(project)
    assert {
        "model",
        "version",
        "git_commit",
        "git_dirty",
        "datasets",
        "params",
        "mlflow_run_id",
        "validation",
        "fairness",
        "metrics",
        "model_card",
    } <= set(info)
    assert info["model"] == "mortgage-denial"
    assert info["validation"]["success"] is True
    assert all({"path", "md5", "rows"} <= set(d) for d in info["datasets"])
    assert info["git_commit"] == head
    assert info["git_dirty"] is False
    assert info["run"]["source"] == "dvc"
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    locked = {o["path"]: o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])}
    assert {d["path"] for d in info["datasets"]} == {
        "data/raw/applications.csv",
        "data/split/train.csv",
        "data/split/test.csv",
    }
    for d in info["datasets"]:
        assert d["md5"] == locked[d["path"]] == file_md5(project / d["path"])
    # dvc repro's OpenLineage events alone rebuild data md5 -> stage -> this version
    check_event_log(
        Settings.resolve(project, env={}), "mortgage-denial", info["version"], via="dvc"
    )

    # Nothing changed: a second repro runs nothing and registers nothing.
    lock_bytes = (project / "dvc.lock").read_bytes()
    second = dvc(project, "repro")
    assert "Data and pipelines are up to date" in second.stdout
    assert (project / "dvc.lock").read_bytes() == lock_bytes
    assert lineage(project)["version"] == info["version"]

    # The exact training bytes come back from the md5s alone, even with the workspace wiped.
    shutil.rmtree(project / "data")
    restored = lineage(project, info["version"], "--restore", str(tmp_path / "restored"))
    assert [r["md5"] for r in restored["restored"]] == [d["md5"] for d in info["datasets"]]
    for r in restored["restored"]:
        assert file_md5(Path(r["path"])) == r["md5"]

    # Experiments override a parameter; metrics list evaluation and fairness.
    dvc(project, "exp", "run", "-S", "train.C=0.5")
    after = lineage(project)
    assert int(after["version"]) == int(info["version"]) + 1
    assert after["params"]["train"]["C"] == 0.5
    assert after["git_dirty"] is True  # params.yaml differs from the commit
    metrics = json.loads(dvc(project, "metrics", "show", "--json").stdout)
    data = next(iter(metrics.values()))["data"]
    evaluation = data["metrics/evaluation.json"]["data"]
    fairness = data["metrics/fairness.json"]["data"]
    assert {"auc", "auc_ci_low", "accuracy", "calibration_error"} <= set(evaluation)
    assert {"afam.approval_ratio", "single.equalized_odds_difference"} <= set(fairness)
    # ... and the less-discriminatory-alternatives search: its frontier is a metric and a plot
    alternatives = data["metrics/alternatives.json"]["data"]
    assert alternatives["gate_passed"] == 1 and alternatives["frontier_size"] >= 1
    assert {"model.auc", "model.approval_ratio", "C=0.1.auc"} <= set(alternatives)
    plots = dvc(project, "plots", "show", "--json").stdout
    assert "plots/alternatives.csv" in plots and "Accuracy-fairness frontier" in plots


def test_gates_stop_dvc_repro(project: Path) -> None:
    for case, (corrupt, expected) in CORRUPTIONS.items():
        write_corrupted_source(project, corrupt)
        proc = dvc(project, "repro", ok=False)
        assert proc.returncode != 0, case
        assert "error: validation failed" in proc.stderr, case
        assert expected in proc.stderr, case
        assert not (project / "data/split").exists(), case
    versions = run(project, "governance", "lineage", "mortgage-denial", ok=False)
    assert versions.returncode == 1
    assert versions.stderr.startswith("error: no registered model named 'mortgage-denial'")

    set_params(project, **{"ingest.source": "", "fairness.min_approval_ratio": 0.99})
    proc = dvc(project, "repro", ok=False)
    assert proc.returncode != 0
    assert "error: fairness gate failed: approval-rate ratio by afam is" in proc.stderr
    assert "below the minimum 0.990 by" in proc.stderr
    assert not (project / "reports/registration.json").exists()
    assert run(project, "governance", "lineage", "mortgage-denial", ok=False).returncode == 1
