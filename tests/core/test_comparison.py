"""Retraining on changed data: a champion/challenger comparison and a card diff."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support import (
    REPO,
    build_trained_project,
    cli_env,
    commit_all,
    run_stages,
    set_params,
)

from governance.core.dataset import load_spec, read_source
from governance.registry import mlflow as registry

pytestmark = pytest.mark.slow
MODEL = "mortgage-denial"


def test_retrain_on_changed_data_compares_with_the_champion(tmp_path: Path) -> None:
    root, settings = build_trained_project(tmp_path)
    with registry.tracking(settings) as client:
        client.set_registered_model_alias(MODEL, "champion", "1")

    spec = load_spec("hmda")
    frame = read_source(spec.source).rename(columns=spec.rename)
    frame.drop(frame.index[::7]).to_csv(root / "sources" / "applications.csv", index=False)
    set_params(root, **{"ingest.source": "sources/applications.csv"})
    commit_all(root, "new applications")
    run_stages(root, settings)

    v2 = registry.resolve(settings, MODEL, "2")
    v1 = registry.resolve(settings, MODEL, "1")
    card = registry.model_card(settings, MODEL, "2")
    comparison = card["comparison"]
    assert comparison["champion"]["version"] == "1"
    assert comparison["rows"] == next(d["rows"] for d in v2["datasets"] if d["name"] == "test")
    assert set(comparison["metric_deltas"]) >= {"auc", "accuracy", "brier"}
    for k, delta in comparison["metric_deltas"].items():
        assert delta == pytest.approx(
            comparison["candidate"]["metrics"][k] - comparison["champion_results"]["metrics"][k]
        )
    with registry.tracking(settings) as client:
        artifacts = {a.path for a in client.list_artifacts(v2["mlflow_run_id"])}
        md = client.download_artifacts(
            v2["mlflow_run_id"], "model_card/model_card.md", str(tmp_path)
        )
    assert "comparison.json" in artifacts
    assert "## Champion/challenger comparison" in Path(md).read_text()

    proc = subprocess.run(
        [str(REPO / ".venv/bin/governance"), "card", "diff", MODEL, "1", "2", "--json"],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        check=True,
    )
    diff = json.loads(proc.stdout)
    raw = next(d for d in diff["data"] if d["name"] == "raw")
    assert raw["changed"] is True
    assert raw["a_md5"] == next(d["md5"] for d in v1["datasets"] if d["name"] == "raw")
    assert raw["b_md5"] == next(d["md5"] for d in v2["datasets"] if d["name"] == "raw")
    assert {"name": "ingest.source", "a": "", "b": "sources/applications.csv"} in diff["params"]
    auc = next(m for m in diff["metrics"] if m["name"] == "auc")
    assert auc["a"] == v1["metrics"]["auc"] and auc["b"] == v2["metrics"]["auc"]
    assert auc["delta"] == pytest.approx(auc["b"] - auc["a"])
