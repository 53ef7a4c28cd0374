"""Daily production monitoring (off by default)."""

import dagster as dg

from governance.defs.monitoring.jobs import production_monitoring_job

daily_monitoring = dg.ScheduleDefinition(
    name="daily_monitoring",
    job=production_monitoring_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    # Off by default: turn on in the UI or with `dagster schedule start daily_monitoring`.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Monitor the champion (else the candidate) every day at 06:00 UTC: drift, "
    "performance and fairness from the ledger (off by default).",
)
