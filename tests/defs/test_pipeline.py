"""The governed pipeline in Dagster: whole graph, gates that block, lineage that resolves."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import pytest
from support import ASSETS, CORRUPTIONS, check_event_log, set_params, write_corrupted_source

from governance.core.dataset import file_md5
from governance.core.lineage import DataStore
from governance.core.model_card import SECTIONS
from governance.defs.resources import GovernanceProject
from governance.registry import mlflow as registry
from governance.settings import Settings

pytestmark = pytest.mark.slow

DOWNSTREAM_OF_VALIDATION = [
    "split",
    "train",
    "evaluate",
    "fairness",
    "alternatives",
    "model_card",
    "register",
]


def materialize(project: Path) -> dg.ExecuteInProcessResult:
    resource = GovernanceProject(project_dir=str(project), home=str(project / ".governance"))
    return dg.materialize(ASSETS, resources={"project": resource}, raise_on_error=False)


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def registered_versions(project: Path, model: str) -> list[str]:
    settings = Settings.resolve(project)
    with registry.tracking(settings) as client:
        try:
            return [v.version for v in client.search_model_versions(f"name = '{model}'")]
        except mlflow.exceptions.MlflowException:
            return []


def failed_gate_runs(project: Path, gate: str) -> list[dict[str, str]]:
    settings = Settings.resolve(project)
    with registry.tracking(settings) as client:
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.`governance.gate` = '{gate}'",
        )
        return [dict(r.data.tags, status=r.info.status) for r in runs]


def test_whole_graph_registers_a_version_with_resolvable_lineage(
    project: Path, tmp_path: Path
) -> None:
    result = materialize(project)
    assert result.success
    assert materialized(result) == {
        "ingest",
        "validate",
        *DOWNSTREAM_OF_VALIDATION,
    }
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"expectations_pass": True, "fairness_gate": True, "lda_gate": True}

    meta = result.asset_materializations_for_node("register")[0].metadata
    assert meta["version"].value == "1"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    lineage = registry.resolve(Settings.resolve(project), "mortgage-denial")
    assert lineage["git_commit"] == head
    assert lineage["git_dirty"] is False
    assert lineage["version"] == "1"
    assert lineage["aliases"] == ["candidate"]
    assert lineage["run"] == {
        "source": "dagster",
        "id": result.run_id,
        "mlflow_run_id": lineage["mlflow_run_id"],
    }
    assert lineage["validation"]["success"] is True
    assert lineage["fairness"]["passed"] is True
    # the materialisation's OpenLineage events alone rebuild data md5 -> stage -> version 1
    check_event_log(
        Settings.resolve(project), "mortgage-denial", "1", via="dagster", run_id=result.run_id
    )
    for d in lineage["datasets"]:
        assert d["md5"] == file_md5(project / d["path"])
        assert lineage["tags"][f"data.{d['name']}.md5"] == d["md5"]

    # The version's inputs were logged with the DVC md5 as digest.
    with registry.tracking(Settings.resolve(project)) as client:
        run = client.get_run(lineage["mlflow_run_id"])
        digests = {i.dataset.name: i.dataset.digest for i in run.inputs.dataset_inputs}
        schemas = {i.dataset.name: i.dataset.schema for i in run.inputs.dataset_inputs}
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model_card")}
    assert digests == {f"hmda-{d['name']}": d["md5"] for d in lineage["datasets"]}
    # ... with the schema MLflow itself infers from every row (the register stage infers it
    # from representative rows: linear at 1M rows)
    for d in lineage["datasets"]:
        frame = pd.read_csv(project / d["path"])
        frame = frame.astype({c: "float64" for c in frame.select_dtypes("integer")})
        full = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame, source=(project / d["path"]).as_uri()
        )
        assert schemas[f"hmda-{d['name']}"] == full.to_dict()["schema"]
    assert artifacts == {
        "model_card/model_card.md",
        "model_card/model_card.html",
        "model_card/model_card.json",
    }

    # The training data can be restored from the md5s alone, after the workspace is wiped.
    for d in lineage["datasets"]:
        (project / d["path"]).unlink()
    store = DataStore(Path(lineage["storage"]["cache"]), Path(lineage["storage"]["remote"]))
    for d in lineage["datasets"]:
        restored = store.restore(d["md5"], tmp_path / "restored" / Path(d["path"]).name)
        assert file_md5(restored) == d["md5"]

    # The card has every section, and its HTML needs nothing from the network.
    card = json.loads((project / "reports/model_card.json").read_text())
    assert set(SECTIONS) <= set(card)
    html = (project / "reports/model_card.html").read_text()
    assert "<table>" in html and "http://" not in html and "https://" not in html
    for heading in ("Intended use", "Intersectional analyses", "Reason-code catalogue", "Lineage"):
        assert f"<h2>{heading}</h2>" in html
    # ... the catalogue says what decisions will say: the scorecard's words, and the spec's
    # "Housing expenses too high" is not among them, since the fitted hirat weight is negative
    scorecard = json.loads((project / "models/scorecard.json").read_text())
    catalogue = {r["feature"]: r["reason"] for r in card["reason_codes"]["reasons"]}
    assert catalogue == scorecard["reasons"] and scorecard["numeric"]["hirat"]["weight"] < 0
    assert catalogue["hirat"] == "Housing expenses to income ratio too low"
    assert [(r["feature"], r["spec"], r["model"]) for r in card["reason_codes"]["reworded"]] == [
        ("hirat", ["high"], ["low"])
    ]
    assert any("fitted model contradicts the reason of hirat: " in c for c in card["caveats"])
    assert "Review this before approving the model." in html
    # ... the less-discriminatory-alternatives frontier: its table and its plot, inlined
    assert "<h2>Less discriminatory alternatives</h2>" in html
    assert '<figure id="frontier"><svg' in html and "LDA gate passed" in html
    frontier = json.loads((project / "reports/alternatives.json").read_text())["frontier"]
    assert frontier and all(f"<td>{name}</td>" in html for name in frontier)

    # The card shown in Dagster is the card on disk.
    card_meta = result.asset_materializations_for_node("model_card")[0].metadata
    assert card_meta["model_card"].value == (project / "reports/model_card.md").read_text()


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_raw_data_blocks_everything_downstream(project: Path, case: str) -> None:
    corrupt, expected = CORRUPTIONS[case]
    write_corrupted_source(project, corrupt)
    result = materialize(project)
    assert not result.success
    assert materialized(result) == {"ingest", "validate"}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "expectations_pass" and not check.passed
    assert expected in check.description
    assert not (project / "data/split/train.csv").exists()
    assert registered_versions(project, "mortgage-denial") == []
    (run,) = failed_gate_runs(project, "validation")
    assert run["status"] == "FAILED" and expected in run["governance.gate.message"]


def test_a_fairness_threshold_tighter_than_the_model_blocks_registration(project: Path) -> None:
    set_params(project, **{"fairness.min_approval_ratio": 0.99})
    result = materialize(project)
    assert not result.success
    assert "register" not in materialized(result)
    assert "model_card" not in materialized(result)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gate = checks["fairness_gate"]
    assert not gate.passed
    report = json.loads((project / "reports/fairness.json").read_text())
    ratio = next(g for g in report["report"]["groupings"] if g["name"] == "afam")["approval_ratio"]
    gap = 0.99 - ratio
    assert f"approval-rate ratio by afam is {ratio:.3f}" in gate.description
    assert f"below the minimum 0.990 by {gap:.3f}" in gate.description
    assert registered_versions(project, "mortgage-denial") == []
    (run,) = failed_gate_runs(project, "fairness")
    assert run["status"] == "FAILED" and f"by {gap:.3f}" in run["governance.gate.message"]


def test_a_tight_lda_gate_blocks_registration_naming_the_alternative(project: Path) -> None:
    set_params(
        project,
        **{
            "alternatives.gate.fairness_tolerance": 0.0,
            "alternatives.gate.auc_tolerance": 1.0,
        },
    )
    result = materialize(project)
    assert not result.success
    assert {"fairness", "alternatives"} <= materialized(result)
    assert "model_card" not in materialized(result)
    assert "register" not in materialized(result)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["lda_gate"]
    assert not gate.passed
    doc = json.loads((project / "reports/alternatives.json").read_text())
    (first, *_) = doc["gate"]["blocking"]
    assert f"alternative {first!r}" in gate.description
    assert f"alternative {first!r}" in doc["gate"]["message"]
    assert registered_versions(project, "mortgage-denial") == []
    (run,) = failed_gate_runs(project, "alternatives")
    assert run["status"] == "FAILED" and first in run["governance.gate.message"]


def test_second_dataset_runs_end_to_end_by_configuration_alone(project: Path) -> None:
    set_params(project, **{"ingest.dataset": "credit"})
    result = materialize(project)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    lineage = registry.resolve(Settings.resolve(project), "credit-risk")
    assert lineage["dataset"] == "credit"
    assert lineage["validation"]["suite"] == "credit"
    raw = next(d for d in lineage["datasets"] if d["name"] == "raw")
    assert raw["rows"] == 4454
    assert registered_versions(project, "mortgage-denial") == []
    # the card's catalogue says what a decision says of an input left out
    card = json.loads((project / "reports/model_card.json").read_text())
    left_out = {r["feature"]: r.get("missing") for r in card["reason_codes"]["reasons"]}
    assert left_out["Income"] == "Monthly income not provided" and left_out["Seniority"] is None
    md = (project / "reports/model_card.md").read_text()
    assert (
        "| Income | Income insufficient for amount of credit requested | Monthly income not" in md
    )
