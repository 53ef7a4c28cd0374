"""The MLflow decision mirror in Dagster: the asset, its metadata and links, its schedule."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest

from governance.core.dataset import read_csv
from governance.decisions.service import DecisionService
from governance.definitions import defs as load_defs
from governance.defs.mirror.assets import mlflow_decision_mirror
from governance.defs.resources import GovernanceProject, MlflowResource
from governance.ledger import Ledger
from governance.lifecycle import mirror
from governance.settings import Settings, explorer_version_url

MODEL = "mortgage-denial"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "GOVERNANCE_HOME",
        "GOVERNANCE_MLFLOW_URI",
        "GOVERNANCE_DVC_REMOTE",
        "GOVERNANCE_LEDGER_URL",
        "GOVERNANCE_ARTIFACTS",
        "GOVERNANCE_EXPLORER_URL",
    ):
        monkeypatch.delenv(var, raising=False)


def _decisions_of_v1(settings: Settings) -> int:
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        n = 0
        while page := ledger.find(
            model=MODEL, version="1", type="decision", limit=10_000, offset=n
        ):
            n += len(page)
        return n


def _materialize(resource: GovernanceProject) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [mlflow_decision_mirror], resources={"project": resource}, raise_on_error=False
    )


def test_the_asset_mirrors_every_version_with_decisions_and_links_to_the_explorer(
    trained: tuple[Path, Settings],
) -> None:
    root, settings = trained
    frame = read_csv(root / "data" / "split" / "test.csv")
    purpose = f"mirror-dagster-{uuid.uuid4().hex[:8]}"
    with DecisionService.open(settings) as service:
        for _ in service.score_frame(
            MODEL, frame, subject_column="application_id", alias="candidate", purpose=purpose
        ):
            pass
    resource = GovernanceProject(project_dir=str(root), home=str(settings.home))

    result = _materialize(resource)
    assert result.success
    [event] = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    total = _decisions_of_v1(settings)
    assert meta["rows_mirrored"].value >= len(frame)
    assert meta["decisions_in_mlflow"].value == total
    assert meta["explorer"].value == "http://127.0.0.1:8080/ui/models/mortgage-denial"
    [row] = [r.data for r in meta["versions"].records]
    assert row["version"] == "1" and row["decisions"] == total
    assert row["explorer"] == explorer_version_url(MODEL, "1")
    assert row["mlflow_run"].startswith("http://127.0.0.1:5000/#/experiments/")
    assert meta["cursor"].value == {"mortgage-denial v1": row["cursor_seq"]}
    _, table = mirror.read_mirror(settings, MODEL, "1")
    assert (table["purpose"] == purpose).sum() == len(frame)

    again = _materialize(resource)
    assert again.success
    [event] = again.get_asset_materialization_events()
    assert event.materialization.metadata["rows_mirrored"].value == 0
    assert event.materialization.metadata["decisions_in_mlflow"].value == total


def test_the_asset_fails_clearly_when_mlflow_is_unavailable(
    trained: tuple[Path, Settings],
) -> None:
    root, settings = trained
    before = mirror.local_state(settings, MODEL, "1")
    resource = GovernanceProject(
        project_dir=str(root),
        home=str(settings.home),
        mlflow=MlflowResource(tracking_uri="http://127.0.0.1:9"),
    )
    result = _materialize(resource)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    assert data.user_failure_data is not None
    assert "MLflow at http://127.0.0.1:9 is unavailable" in str(data.user_failure_data.description)
    assert mirror.local_state(settings, MODEL, "1") == before


def test_mirror_asset_and_its_schedule_in_the_code_location() -> None:
    defs = load_defs() if callable(load_defs) else load_defs
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("mlflow_decision_mirror"))
    assert node.group_name == "monitoring"
    assert node.parent_keys == {dg.AssetKey("register")}

    schedule = defs.resolve_schedule_def("mlflow_decision_mirror_every_10_minutes")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "*/10 * * * *"
    job = defs.resolve_job_def(schedule.job_name)
    assert {n.name for n in job.graph.node_defs} == {"mlflow_decision_mirror"}
    with dg.instance_for_test() as instance:
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert len(data.run_requests or []) == 1
