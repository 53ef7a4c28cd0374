import dagster as dg

from governance.defs.metadata import metadata, run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="training",
    deps=["split"],
    kinds={"scikitlearn"},
    description="Regularised logistic scorecard (params.yaml `train`), compiled to exact "
    "per-feature contributions and checked against scikit-learn on every row.",
)
def train(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``train`` stage through the runner, with its evidence as metadata."""
    result = runner.run(project.workspace(), "train", run_context(context))
    return dg.MaterializeResult(metadata=metadata(result))
