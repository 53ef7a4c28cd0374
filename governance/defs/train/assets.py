import dagster as dg

from governance.defs.metadata import metadata
from governance.defs.resources import GovernanceProject
from governance.pipeline import stages


@dg.asset(
    group_name="training",
    deps=["split"],
    kinds={"scikitlearn"},
    description="Regularised logistic scorecard (params.yaml `train`), compiled to exact "
    "per-feature contributions and checked against scikit-learn on every row.",
)
def train(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.train(project.workspace())
    return dg.MaterializeResult(metadata=metadata(result))
