"""Shared fixtures: a throwaway clone of the project, with its own state directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import clone_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh clone whose state (MLflow, DVC remote, ledger) lives in its own .governance/."""
    root = clone_project(tmp_path / "project")
    for var in (
        "GOVERNANCE_HOME",
        "GOVERNANCE_MLFLOW_URI",
        "MLFLOW_TRACKING_URI",
        "GOVERNANCE_DVC_REMOTE",
        "GOVERNANCE_LEDGER_URL",
        "GOVERNANCE_ARTIFACTS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOVERNANCE_PROJECT", str(root))
    return root
