"""The stage runner: how ``dvc repro`` (through ``governance stage NAME``) and the Dagster assets
run a stage, so that every run, whoever starts it, is observed the same way.

:func:`run` wraps the stage in its OpenLineage run (:mod:`governance.pipeline.openlineage`):
START with the files it reads and their md5s, then COMPLETE with the files it wrote (and, for
``validate``, the Great Expectations result as data-quality assertions on the raw data; for
``register``, the registered model version as an output dataset), or FAIL with the error or the
gate's verdict.
"""

from __future__ import annotations

from pathlib import Path

from governance.core.openlineage import gx_assertions
from governance.pipeline import openlineage, stages
from governance.pipeline.workspace import StageResult, Workspace, read_json

# What each stage reads and writes, by workspace name: exactly dvc.yaml's data dependencies and its
# outs, metrics and plots (tests/pipeline/test_runner.py holds the two together).
STAGE_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ingest": ((), ("raw",)),
    "validate": (("raw",), ("validation",)),
    "split": (("raw", "validation"), ("train", "test")),
    "train": (("raw", "train"), ("model", "scorecard", "recourse_policy")),
    "evaluate": (("test", "scorecard"), ("evaluation", "roc", "calibration")),
    "fairness": (("test", "scorecard"), ("fairness_metrics", "fairness", "selection_rate")),
    "alternatives": (
        ("train", "test", "scorecard"),
        ("alternatives_metrics", "alternatives", "alternatives_svg", "alternatives_plot"),
    ),
    "model_card": (
        (
            "validation",
            "fairness",
            "alternatives",
            "alternatives_svg",
            "evaluation",
            "fairness_metrics",
            "train",
            "test",
            "scorecard",
        ),
        ("card_json", "card_md", "card_html"),
    ),
    "register": (
        (
            "raw",
            "train",
            "test",
            "validation",
            "evaluation",
            "roc",
            "calibration",
            "fairness_metrics",
            "fairness",
            "selection_rate",
            "alternatives_metrics",
            "alternatives",
            "alternatives_svg",
            "alternatives_plot",
            "card_json",
            "model",
            "scorecard",
            "recourse_policy",
        ),
        ("registration", "contract"),
    ),
}
CODE_PATH = "governance/pipeline/stages.py"


def _inputs(ws: Workspace, name: str) -> list[Path]:
    reads = [ws.path(n) for n in STAGE_FILES[name][0]]
    if name == "ingest" and Path(ws.source).is_file():
        reads.append(Path(ws.source))  # a user's own file (shipped data has no path)
    return reads


def run(ws: Workspace, name: str, context: dict[str, str] | None = None) -> StageResult:
    """Run one stage by name, observed as an OpenLineage run.

    Parameters
    ----------
    ws
        The project.
    name
        A key of :data:`governance.pipeline.stages.STAGES`.
    context
        Who runs it: ``{"source": "dvc"|"dagster"|"cli", "id": <Dagster run id>, ...}``.

    Returns
    -------
    StageResult
        The stage's result (a failed gate is ``passed=False`` and a FAIL event).
    """
    context = context or {"source": "cli"}
    with openlineage.stage_run(
        ws.settings,
        root=ws.root,
        params=ws.params,
        stage=name,
        code_path=CODE_PATH,
        context=context,
        inputs=_inputs(ws, name),
        outputs=[ws.path(n) for n in STAGE_FILES[name][1]],
    ) as events:
        result = stages.STAGES[name](ws, context)
        mlflow_run_id = result.evidence.get("mlflow_run_id")
        events.mlflow_run_id = str(mlflow_run_id) if mlflow_run_id else None
        if name == "validate":
            report = read_json(ws.path("validation"))
            events.assertions[ws.path("raw").resolve()] = gx_assertions(report["full_result"])
        if name == "register":
            ev = result.evidence
            events.model = openlineage.model_dataset(ws.settings, ev["model"], ev["version"])
        if not result.passed:
            events.failed = result.message
    return result
