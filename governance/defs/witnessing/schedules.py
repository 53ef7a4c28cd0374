"""Witnessed checkpoints every 10 minutes (off by default).

The cadence is the cron below; for a cadence in seconds run the periodic checkpointer instead
(``governance audit checkpoint --every N`` or ``governance serve --checkpoint-every N``).
"""

import dagster as dg

from governance.defs.witnessing.jobs import witnessed_checkpoint

witnessed_checkpoints = dg.ScheduleDefinition(
    name="witnessed_checkpoints",
    job=witnessed_checkpoint,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    # Off by default: turn on in the UI or with `dagster schedule start witnessed_checkpoints`.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Sign the ledger's tree head and have its witnesses cosign it, every 10 minutes"
    " (off by default).",
)
