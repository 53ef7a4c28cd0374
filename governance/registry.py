"""MLflow: the tracking store, gate-failure runs, registration and lineage resolution."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from governance.settings import Settings

log = logging.getLogger(__name__)

TAG_PREFIX = "governance."
ERR_NO_MODEL = "no registered model named {name!r} in {uri}"
ERR_NO_VERSION = "model {name!r} has no version {version!r}"
ERR_NO_LINEAGE = "model {name!r} version {version} has no lineage.json in run {run_id}: {problem}"


def _quiet() -> None:
    # MLflow's SQLite store logs every alembic migration at INFO on first use.
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextmanager
def tracking(settings: Settings) -> Iterator[Any]:
    """Point MLflow at the configured tracking store for the duration of the block."""
    import mlflow

    _quiet()
    settings.home.mkdir(parents=True, exist_ok=True)
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    try:
        yield mlflow.MlflowClient(settings.mlflow_uri, settings.mlflow_uri)
    finally:
        if previous is not None:
            mlflow.set_tracking_uri(previous)


def experiment_id(settings: Settings, dataset: str) -> str:
    """The experiment of a dataset, created with its artifact root in the state directory."""
    import mlflow

    name = f"governance-{dataset}"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    return str(mlflow.create_experiment(name, artifact_location=settings.artifacts.as_uri()))


def record_gate_failure(
    settings: Settings,
    *,
    dataset: str,
    gate: str,
    message: str,
    evidence: dict[str, Any],
    context: dict[str, str],
) -> str:
    """Leave an MLflow run that says which gate failed and why. Returns its run id."""
    import mlflow

    with tracking(settings):
        exp = experiment_id(settings, dataset)
        with mlflow.start_run(experiment_id=exp, run_name=f"{gate}-gate-failed") as run:
            mlflow.set_tags(
                {
                    f"{TAG_PREFIX}gate": gate,
                    f"{TAG_PREFIX}gate.passed": "false",
                    f"{TAG_PREFIX}gate.message": message[:4900],
                    f"{TAG_PREFIX}registered": "false",
                    **{f"{TAG_PREFIX}{k}": v for k, v in context.items()},
                }
            )
            mlflow.log_dict(evidence, f"gates/{gate}.json")
            mlflow.end_run(status="FAILED")
        return str(run.info.run_id)


def register(
    settings: Settings,
    *,
    dataset: str,
    model_name: str,
    alias: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    inputs: list[dict[str, Any]],
    artifacts: list[tuple[str, Path]],
    model_artifacts: dict[str, Path],
    signature_frame: Any,
    lineage: dict[str, Any],
    card: dict[str, Any],
    comparison: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log the run, the pyfunc model, the card and the lineage; register a version; alias it.

    ``lineage`` is completed here with the MLflow run id and the version, then logged as
    ``lineage.json`` and attached to the version as tags; the model card gains its registration
    section and is logged as Markdown, HTML and JSON under ``model_card/``. Returns the
    registration and the final card.
    """
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    import governance
    from governance import mlflow_model
    from governance.core.model_card import render_html, render_markdown
    from governance.mlflow_model import GovernedModel

    with tracking(settings) as client, warnings.catch_warnings():
        # A local file URI matches two equivalent MLflow dataset-source classes; harmless.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interp")
        exp = experiment_id(settings, dataset)
        with mlflow.start_run(experiment_id=exp, run_name=f"train-{dataset}") as run:
            run_id = run.info.run_id
            mlflow.log_params(_flatten(params))
            mlflow.log_metrics(metrics)
            mlflow.set_tags({**tags, f"{TAG_PREFIX}gate.passed": "true"})
            for item in inputs:
                frame = pd.read_csv(item["path"])
                frame = frame.astype({c: "float64" for c in frame.select_dtypes("integer")})
                ds = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                    frame,
                    source=Path(item["path"]).resolve().as_uri(),
                    name=item["name"],
                    digest=item["md5"],
                )
                mlflow.log_input(ds, context=item["context"])
            for dest, path in artifacts:
                mlflow.log_artifact(str(path), artifact_path=dest)
            example = signature_frame.head(5)
            scorer = GovernedModel.from_scorecard_file(model_artifacts["scorecard"])
            signature = infer_signature(example, scorer.predict(None, example))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=mlflow_model.__file__,  # models from code: no pickle
                artifacts={k: str(v) for k, v in model_artifacts.items()},
                signature=signature,
                input_example=example,
                code_paths=[str(Path(governance.__file__).parent)],
                pip_requirements=_pip_requirements(),
            )
            version = mlflow.register_model(info.model_uri, model_name, tags=None)
            lineage = {
                **lineage,
                "model": model_name,
                "version": str(version.version),
                "mlflow_run_id": run_id,
                "model_uri": f"models:/{model_name}/{version.version}",
            }
            lineage["run"]["mlflow_run_id"] = run_id
            mlflow.log_dict(lineage, "lineage.json")
            registration = {
                "model": model_name,
                "version": str(version.version),
                "alias": alias,
                "mlflow_run_id": run_id,
                "experiment_id": exp,
                "model_uri": lineage["model_uri"],
            }
            if comparison is not None:
                mlflow.log_dict(comparison, "comparison.json")
            card = {
                **card,
                "registration": registration,
                "lineage": lineage,
                "comparison": comparison,
            }
            mlflow.log_dict(card, "model_card/model_card.json")
            mlflow.log_text(render_markdown(card), "model_card/model_card.md")
            mlflow.log_text(render_html(card), "model_card/model_card.html")
        for key, value in version_tags(lineage).items():
            client.set_model_version_tag(model_name, version.version, key, value)
        client.set_registered_model_alias(model_name, alias, version.version)
        return registration, card


def version_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """The lineage contract as model-version tags (DESIGN §3), and the explorer's page."""
    from governance.mirror import explorer_version_url

    tags = {
        "git.commit": str(lineage["git_commit"]),
        "git.dirty": str(lineage["git_dirty"]).lower(),
        "governance.version": lineage["package_version"],
        "params.sha256": lineage["params_hash"],
        "environment.lock_sha256": str(lineage["environment"]["lock_sha256"]),
        "validation.success": str(lineage["validation"]["success"]).lower(),
        "fairness.passed": str(lineage["fairness"]["passed"]).lower(),
        "model_card": "model_card/model_card.md",
        "mlflow.run_id": lineage["mlflow_run_id"],
        "run.source": lineage["run"]["source"],
        "run.id": lineage["run"].get("id", ""),
        "governance.explorer": explorer_version_url(lineage["model"], lineage["version"]),
    }
    for d in lineage["datasets"]:
        tags[f"data.{d['name']}.md5"] = d["md5"]
        tags[f"data.{d['name']}.path"] = d["path"]
        tags[f"data.{d['name']}.rows"] = str(d["rows"])
    return tags


def resolve(settings: Settings, model: str, version: str | None = None) -> dict[str, Any]:
    """A model version's lineage, from the registry alone (newest version by default)."""
    from mlflow.exceptions import MlflowException

    with tracking(settings) as client:
        try:
            versions = client.search_model_versions(f"name = '{model}'")
        except MlflowException as exc:
            raise LookupError(ERR_NO_MODEL.format(name=model, uri=settings.mlflow_uri)) from exc
        if not versions:
            raise LookupError(ERR_NO_MODEL.format(name=model, uri=settings.mlflow_uri))
        if version is None:
            chosen = max(versions, key=lambda v: int(v.version))
        else:
            matches = [v for v in versions if str(v.version) == str(version)]
            if not matches:
                raise LookupError(ERR_NO_VERSION.format(name=model, version=version))
            chosen = matches[0]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(chosen.run_id, "lineage.json", tmp)
                lineage: dict[str, Any] = json.loads(Path(path).read_text())
            except (MlflowException, OSError, json.JSONDecodeError) as exc:
                raise LookupError(
                    ERR_NO_LINEAGE.format(
                        name=model, version=chosen.version, run_id=chosen.run_id, problem=exc
                    )
                ) from exc
        chosen = client.get_model_version(model, chosen.version)
        lineage["aliases"] = sorted(chosen.aliases)
        lineage["tags"] = dict(chosen.tags)
        return lineage


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _pip_requirements() -> list[str]:
    from importlib import metadata

    names = ("mlflow", "scikit-learn", "pandas", "numpy", "PyYAML", "Jinja2")
    return [f"{n}=={metadata.version(n)}" for n in names]


def model_card(settings: Settings, model: str, version: str) -> dict[str, Any]:
    """A registered version's model card document (``model_card/model_card.json``)."""
    from mlflow.exceptions import MlflowException

    info = resolve(settings, model, version)
    with tracking(settings) as client, tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(
                info["mlflow_run_id"], "model_card/model_card.json", tmp
            )
        except (MlflowException, OSError) as exc:
            raise LookupError(
                f"model {model!r} version {version} has no model card: {exc}"
            ) from exc
        card: dict[str, Any] = json.loads(Path(path).read_text())
    return card
