"""Where things live and where links point: resolved from the environment when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.settings import Settings, explorer_model_url, explorer_version_url


def test_defaults_live_under_the_project_state_directory(tmp_path: Path) -> None:
    s = Settings.resolve(tmp_path, env={})
    assert s.project_dir == tmp_path.resolve()
    assert s.home == tmp_path.resolve() / ".governance"
    assert s.mlflow_uri == f"sqlite:///{s.home / 'mlflow.db'}"
    assert s.ledger_url == f"sqlite:///{s.home / 'ledger.db'}"
    assert s.dvc_remote == s.home / "dvc-remote" and s.artifacts == s.home / "mlartifacts"
    assert s.dagster_home == s.home / "dagster"


def test_each_location_moves_on_its_own(tmp_path: Path) -> None:
    env = {
        "GOVERNANCE_PROJECT": str(tmp_path / "p"),
        "GOVERNANCE_HOME": str(tmp_path / "h"),
        "GOVERNANCE_MLFLOW_URI": "http://mlflow:5000",
        "GOVERNANCE_LEDGER_URL": "postgresql://db/ledger",
        "GOVERNANCE_DVC_REMOTE": str(tmp_path / "remote"),
        "GOVERNANCE_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    s = Settings.resolve(None, env=env)
    assert s.project_dir == (tmp_path / "p").resolve() and s.home == (tmp_path / "h").resolve()
    assert s.mlflow_uri == "http://mlflow:5000" and s.ledger_url == "postgresql://db/ledger"
    assert s.dvc_remote == (tmp_path / "remote").resolve()
    assert s.artifacts == (tmp_path / "artifacts").resolve()


def test_explorer_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVERNANCE_EXPLORER_URL", raising=False)
    assert explorer_version_url("m", 3) == "http://127.0.0.1:8080/ui/models/m/versions/3"
    monkeypatch.setenv("GOVERNANCE_EXPLORER_URL", "https://explorer.example/")
    assert explorer_model_url("credit risk/v2") == (
        "https://explorer.example/ui/models/credit%20risk%2Fv2"
    )
    assert explorer_version_url("m", "2", base="http://x:1") == (
        "http://x:1/ui/models/m/versions/2"
    )
