"""Scaling out: Dagster storage, MLflow's backend store and the ledger all on PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from support import ASSETS

from governance.decisions.service import DecisionService
from governance.defs.resources import GovernanceProject
from governance.registry import mlflow as registry
from governance.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SERVER = os.environ.get("GOVERNANCE_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Fresh databases on the real server (Dagster, MLflow, ledger), dropped afterwards.

    Dagster's and MLflow's schemas both have a ``runs`` table, so they need separate databases.
    """
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"no PostgreSQL server at {SERVER} ({exc.__class__.__name__}); "
            "set GOVERNANCE_TEST_PG_URL to run"
        )
    prefix = f"governance_deploy_{secrets.token_hex(4)}"
    base = SERVER.rsplit("/", 1)[0]
    names = {role: f"{prefix}_{role}" for role in ("dagster", "mlflow", "ledger")}
    with admin:
        try:
            for name in names.values():
                admin.execute(f'CREATE DATABASE "{name}"')
            yield {role: f"{base}/{name}" for role, name in names.items()}
        finally:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_pipeline_and_decisions_on_postgres(
    project: Path, databases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_home = project / ".governance" / "dagster"
    dagster_home.mkdir(parents=True)
    # dagster-postgres speaks psycopg2; SQLAlchemy 2.1 defaults postgresql:// to psycopg 3.
    dagster_url = databases["dagster"].replace("postgresql://", "postgresql+psycopg2://", 1)
    (dagster_home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {dagster_url}\n"
    )
    monkeypatch.setenv("GOVERNANCE_MLFLOW_URI", databases["mlflow"])
    monkeypatch.setenv("GOVERNANCE_LEDGER_URL", databases["ledger"])

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        result = dg.materialize(
            ASSETS,
            instance=instance,
            resources={"project": GovernanceProject(project_dir=str(project))},
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        assert "Postgres" in type(instance.run_storage).__name__

    settings = Settings.resolve(project)
    assert settings.mlflow_uri == databases["mlflow"]
    assert settings.ledger_url == databases["ledger"]
    lineage = registry.resolve(settings, "mortgage-denial")
    assert lineage["version"] == "1" and lineage["run"]["id"] == result.run_id

    test = pd.read_csv(project / "data/split/test.csv")
    with DecisionService.open(settings) as service:
        ids = [
            r.id
            for _, receipts, _, _ in service.score_frame(
                "mortgage-denial", test, subject_column="application_id", alias="candidate"
            )
            for r in receipts
        ]
        assert len(ids) == len(test)
        events = {r.type for r in service.ledger.iter_records()}
        assert events >= {"validation", "training", "registration", "decision"}
        assert service.ledger.verify().ok
        assert service.replay(ids[0])["match"]
        assert service.trace(ids[-1])["code"]["git_commit"] == lineage["git_commit"]

    import psycopg

    def tables(url: str) -> set[str]:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "select table_schema || '.' || table_name from information_schema.tables"
            )
            return {r[0] for r in rows}

    assert {"public.runs", "public.event_logs"} <= tables(databases["dagster"])
    assert {"public.runs", "public.registered_models", "public.model_versions"} <= tables(
        databases["mlflow"]
    )
    assert any(t.startswith("governance_ledger.") for t in tables(databases["ledger"]))
