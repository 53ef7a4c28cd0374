import dagster as dg

from governance.defs.automation.jobs import governed_pipeline

weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=governed_pipeline,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # turn on in the UI or `dagster schedule start`
    description="Retrain and re-govern every Monday 03:00 UTC (off by default).",
)
