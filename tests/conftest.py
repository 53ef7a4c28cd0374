"""Shared fixtures: a throwaway clone of the project, with its own state directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import build_trained_project, clone_project

from governance.settings import Settings


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


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """One project with `mortgage-denial` v1 registered (alias candidate), for the session.

    Tests that use it may append to its ledger but must not change its registry.
    """
    return build_trained_project(tmp_path_factory.mktemp("trained"))
