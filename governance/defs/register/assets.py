import dagster as dg

from governance.defs.metadata import run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner
from governance.settings import explorer_version_url

MLFLOW_UI = "http://127.0.0.1:5000"  # `make mlflow-ui`


@dg.asset(
    group_name="registry",
    deps=["model_card"],
    kinds={"mlflow"},
    description="The model registered in the MLflow Model Registry with its complete lineage "
    "(tags, lineage.json, logged inputs with DVC md5s) and the alias `candidate`.",
)
def register(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``register`` stage through the runner, with links to the run and version."""
    result = runner.run(project.workspace(), "register", run_context(context))
    ev = result.evidence
    run_url = f"{MLFLOW_UI}/#/experiments/{ev['experiment_id']}/runs/{ev['mlflow_run_id']}"
    version_url = f"{MLFLOW_UI}/#/models/{ev['model']}/versions/{ev['version']}"
    lineage = ev["lineage"]
    return dg.MaterializeResult(
        metadata={
            "model": ev["model"],
            "version": ev["version"],
            "alias": ev["alias"],
            "mlflow_run_id": ev["mlflow_run_id"],
            "mlflow_run": dg.MetadataValue.url(run_url),
            "model_version": dg.MetadataValue.url(version_url),
            "explorer": dg.MetadataValue.url(explorer_version_url(ev["model"], ev["version"])),
            "git_commit": str(lineage["git_commit"]),
            "git_dirty": bool(lineage["git_dirty"]),
            "data_md5": dg.MetadataValue.json({d["path"]: d["md5"] for d in lineage["datasets"]}),
            "lineage": dg.MetadataValue.json(lineage),
        }
    )
