import dagster as dg

from governance.defs.metadata import metadata
from governance.defs.resources import GovernanceProject
from governance.pipeline import stages


@dg.asset(
    group_name="training",
    deps=["validate"],
    kinds={"pandas", "csv"},
    description="Seeded, stratified train/test split of the validated data.",
)
def split(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.split(project.workspace())
    return dg.MaterializeResult(metadata=metadata(result))
