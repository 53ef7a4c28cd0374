"""The ``mlflow_decision_mirror`` asset: every registered version's decisions, copied to MLflow.

The ledger stays the source of truth; this asset copies what it holds to MLflow (see
:mod:`governance.lifecycle.mirror`), so it runs beside decisions, never in their way. If MLflow
cannot be reached the run fails with one clear line and nothing is recorded as mirrored; the
next run catches up.

No ``from __future__ import annotations`` here: Dagster reads the config class from the
asset function's annotations at definition time.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from governance.defs.metadata import table
from governance.defs.register.assets import MLFLOW_UI
from governance.defs.resources import GovernanceProject
from governance.lifecycle import mirror


class MirrorConfig(dg.Config):
    """Which models to mirror (every field optional)."""

    models: list[str] = Field(
        default_factory=list,
        description="Registered models. Default: the model of the project's dataset",
    )
    versions: list[str] = Field(
        default_factory=list,
        description="Only these versions (default: every registered version with decisions)",
    )


def versions_table(results: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """One row per mirrored version, with links to its MLflow run and explorer page."""
    records = []
    for r in results:
        totals = r.get("totals") or {}
        run_url = (
            f"{MLFLOW_UI}/#/experiments/{r['experiment_id']}/runs/{r['run_id']}/artifacts"
            if r.get("run_id")
            else ""
        )
        records.append(
            {
                "model": r["model"],
                "version": str(r["version"]),
                "status": r["status"],
                "added": int(r["rows_added"]),
                "decisions": int(r.get("rows", 0)),
                "adverse_rate": totals.get("adverse_rate"),
                "cursor_seq": (r.get("cursor") or {}).get("seq"),
                "mlflow_run": run_url,
                "explorer": r.get("explorer", ""),
            }
        )
    return table(
        records,
        [
            ("model", "string"),
            ("version", "string"),
            ("status", "string"),
            ("added", "int"),
            ("decisions", "int"),
            ("adverse_rate", "float"),
            ("cursor_seq", "int"),
            ("mlflow_run", "string"),
            ("explorer", "string"),
        ],
    )


@dg.asset(
    group_name="monitoring",
    deps=["register"],
    kinds={"mlflow"},
    description="The decision ledger mirrored to MLflow: for every registered version with "
    "decisions, a decisions table (decisions/decisions-NNNNN.json, log_table format, no PII) "
    "and decision metrics on its training run, and a model-version tag linking to the decision "
    "explorer. Incremental from a cursor; the ledger stays the source of truth.",
)
def mlflow_decision_mirror(
    context: dg.AssetExecutionContext, config: MirrorConfig, project: GovernanceProject
) -> dg.MaterializeResult:
    """Mirror the configured models' decisions to MLflow."""
    ws = project.workspace()
    models = config.models or [ws.spec.model_name]
    results: list[dict[str, Any]] = []
    explorer: dict[str, str] = {}
    without: dict[str, list[str]] = {}
    for model in models:
        try:
            doc = mirror.mirror_model(ws.settings, model, versions=config.versions or None)
        except (mirror.MirrorError, LookupError) as exc:
            raise dg.Failure(description=str(exc)) from exc
        for line in mirror.summary(doc).splitlines():
            context.log.info(line)
        results.extend(doc["versions"])
        explorer[model] = doc["explorer"]
        without[model] = doc["without_decisions"]
    cursors = {f"{r['model']} v{r['version']}": (r.get("cursor") or {}).get("seq") for r in results}
    metadata: dict[str, Any] = {
        "rows_mirrored": sum(int(r["rows_added"]) for r in results),
        "decisions_in_mlflow": sum(int(r.get("rows", 0)) for r in results),
        "versions": versions_table(results),
        "cursor": dg.MetadataValue.json(cursors),
        "versions_without_decisions": dg.MetadataValue.json(without),
        "tracking_uri": mirror.safe_uri(ws.settings.mlflow_uri),
    }
    for model, url in explorer.items():
        key = "explorer" if len(explorer) == 1 else f"explorer {model}"
        metadata[key] = dg.MetadataValue.url(url)
    return dg.MaterializeResult(metadata=metadata)
