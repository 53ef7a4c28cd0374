import dagster as dg

from governance.defs.metadata import metadata, run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="training",
    deps=["validate"],
    kinds={"pandas", "csv"},
    description="Seeded, stratified train/test split of the validated data.",
)
def split(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``split`` stage through the runner, with its evidence as metadata."""
    result = runner.run(project.workspace(), "split", run_context(context))
    return dg.MaterializeResult(metadata=metadata(result))
