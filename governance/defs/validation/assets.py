import dagster as dg

from governance import stages
from governance.defs.evidence import metadata, run_context
from governance.defs.resources import GovernanceProject


@dg.asset(
    group_name="validation",
    deps=["raw_applications"],
    kinds={"great_expectations"},
    description="The dataset's Great Expectations suite (expectations/) run on the raw data. "
    "Its blocking check stops everything downstream when any expectation fails.",
)
def validation_report(
    context: dg.AssetExecutionContext, project: GovernanceProject
) -> dg.MaterializeResult:
    result = stages.validate(project.workspace(), run_context(context))
    return dg.MaterializeResult(metadata=metadata(result))
