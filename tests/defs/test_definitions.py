"""The Dagster code location: graph shape, groups, blocking checks, schedule and sensor."""

from __future__ import annotations

import itertools
from pathlib import Path

import dagster as dg
import pytest
from support import set_params

from governance.core.dataset import source_fingerprint
from governance.definitions import defs as load_defs
from governance.defs.automation.sensors import raw_data_sensor
from governance.defs.resources import GovernanceProject

GRAPH = [
    ("ingest", "ingestion"),
    ("validate", "validation"),
    ("split", "training"),
    ("train", "training"),
    ("evaluate", "evaluation"),
    ("fairness", "fairness"),
    ("alternatives", "fairness"),
    ("model_card", "documentation"),
    ("register", "registry"),
]


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return load_defs() if callable(load_defs) else load_defs


def test_definitions_load_and_validate(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_is_the_governed_chain_in_groups(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert {name: specs[name].group_name for name, _ in GRAPH} == dict(GRAPH)
    for (upstream, _), (downstream, _) in itertools.pairwise(GRAPH):
        parents = graph.get(dg.AssetKey(downstream)).parent_keys
        assert parents == {dg.AssetKey(upstream)}, downstream
    assert all(specs[name].description for name, _ in GRAPH)


def test_validation_and_fairness_are_blocking_checks(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get(key) for key in graph.asset_check_keys}
    assert {"expectations_pass", "fairness_gate"} <= set(checks)
    assert checks["expectations_pass"].key.asset_key == dg.AssetKey("validate")
    assert checks["fairness_gate"].key.asset_key == dg.AssetKey("fairness")
    assert "lda_gate" in checks and checks["lda_gate"].blocking
    assert checks["lda_gate"].key.asset_key == dg.AssetKey("alternatives")
    assert checks["expectations_pass"].blocking and checks["fairness_gate"].blocking


def test_schedule_and_sensor_are_off_by_default(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("weekly_retraining")
    sensor = defs.resolve_sensor_def("raw_data_sensor")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert schedule.job_name == sensor.job_name == "governed_pipeline"
    job = defs.resolve_job_def("governed_pipeline")
    assert {n.name for n in job.graph.node_defs} >= {name for name, _ in GRAPH}
    assert "production_monitoring" not in {n.name for n in job.graph.node_defs}


def test_schedule_requests_a_pipeline_run(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def("weekly_retraining")
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(instance=instance)
        data = schedule.evaluate_tick(ctx)
    assert len(data.run_requests or []) == 1
    assert schedule.cron_schedule == "0 3 * * 1"


def test_sensor_starts_a_run_only_when_the_raw_source_changes(project: Path) -> None:
    resource = GovernanceProject(project_dir=str(project))
    source = project / "sources" / "applications.csv"
    source.write_text("application_id,deny\n1,no\n")
    set_params(project, **{"ingest.source": "sources/applications.csv"})
    first_md5 = source_fingerprint(str(source))

    def tick(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"project": resource}
        ) as ctx:
            return raw_data_sensor(ctx)

    with dg.instance_for_test() as instance:
        first = tick(None)
        assert isinstance(first, dg.SensorResult)
        assert [r.run_key for r in first.run_requests] == [first_md5]
        assert first.cursor == first_md5

        assert isinstance(tick(first.cursor), dg.SkipReason)

        source.write_text("application_id,deny\n1,yes\n")
        changed = tick(first.cursor)
        assert isinstance(changed, dg.SensorResult)
        assert changed.run_requests[0].run_key == source_fingerprint(str(source)) != first_md5
