import dagster as dg

from governance.defs.metadata import metadata, run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="validation",
    deps=["ingest"],
    kinds={"great_expectations"},
    description="The dataset's Great Expectations suite (expectations/) run on the raw data. "
    "Its blocking check stops everything downstream when any expectation fails.",
)
def validate(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``validate`` stage through the runner, with its evidence as metadata."""
    result = runner.run(project.workspace(), "validate", run_context(context))
    return dg.MaterializeResult(metadata=metadata(result))
