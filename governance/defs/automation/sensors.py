import dagster as dg

from governance.defs.automation.jobs import governed_pipeline
from governance.defs.resources import GovernanceProject


@dg.sensor(
    job=governed_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,  # turn on in the UI or `dagster sensor start`
    description="Starts the governed pipeline when the raw source's bytes change (its md5).",
)
def raw_data_sensor(
    context: dg.SensorEvaluationContext, project: GovernanceProject
) -> dg.SensorResult | dg.SkipReason:
    """Request a governed-pipeline run when the raw source's md5 changes."""
    fingerprint = project.source_fingerprint()
    if fingerprint == context.cursor:
        return dg.SkipReason(f"raw source unchanged (md5 {fingerprint})")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=fingerprint, tags={"governance/source_md5": fingerprint})
        ],
        cursor=fingerprint,
    )
