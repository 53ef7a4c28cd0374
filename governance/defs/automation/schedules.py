import dagster as dg

from governance.defs.automation.jobs import governed_pipeline

weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=governed_pipeline,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    # Off by default: turn on in the UI or with `dagster schedule start weekly_retraining`.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain and re-govern every Monday 03:00 UTC (off by default).",
)
