"""Shared fixtures: a throwaway clone of the project, with its own state directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def clone_project(dest: Path) -> Path:
    """Copy the working tree's tracked and untracked-but-not-ignored files and commit them.

    This is a clone of what is being tested (uncommitted edits included), with its own history,
    so lineage can name a real, clean commit.
    """
    files = _git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-qm", "clone")
    return dest


def set_params(project: Path, **changes: object) -> None:
    """Change dotted keys of a project's params.yaml (as `dvc exp run -S` would)."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commit_all(project: Path, message: str = "change") -> str:
    _git(project, "add", "-A")
    _git(project, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-qm", message)
    return _git(project, "rev-parse", "HEAD").strip()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh clone whose state (MLflow, DVC remote, ledger) lives in its own .governance/."""
    root = clone_project(tmp_path / "project")
    for var in ("GOVERNANCE_HOME", "MLFLOW_TRACKING_URI", "GOVERNANCE_DVC_REMOTE",
                "GOVERNANCE_LEDGER_URL", "GOVERNANCE_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOVERNANCE_PROJECT", str(root))
    return root


def cli_env(project: Path) -> dict[str, str]:
    """Environment for subprocesses run in a project: our venv's tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "MLFLOW_"))}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["GOVERNANCE_PROJECT"] = str(project)
    return env
