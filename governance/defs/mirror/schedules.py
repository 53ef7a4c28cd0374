"""Mirror the ledger's decisions to MLflow every ten minutes (off by default)."""

import dagster as dg

mlflow_decision_mirror_job = dg.define_asset_job(
    "mlflow_decision_mirror_job",
    selection=dg.AssetSelection.assets("mlflow_decision_mirror"),
    description="Copy new decisions (and overrides, outcomes) from the ledger to MLflow.",
)

mlflow_decision_mirror_schedule = dg.ScheduleDefinition(
    name="mlflow_decision_mirror_every_10_minutes",
    job=mlflow_decision_mirror_job,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    # Off by default: turn on in the UI or with
    # `dagster schedule start mlflow_decision_mirror_every_10_minutes`.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every 10 minutes, mirror each registered version's new decisions from the "
    "ledger to its MLflow run (off by default). A run that finds MLflow down fails and the "
    "next one catches up.",
)
