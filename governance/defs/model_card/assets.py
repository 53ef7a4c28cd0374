import dagster as dg

from governance.defs.metadata import run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="documentation",
    deps=["alternatives"],
    kinds={"markdown", "html"},
    description="Model card (Mitchell et al.) as JSON, Markdown and HTML, with lineage, "
    "validation, the reason-code catalogue and the less-discriminatory-alternatives frontier.",
)
def model_card(
    context: dg.AssetExecutionContext, project: GovernanceProject
) -> dg.MaterializeResult:
    """The ``model_card`` stage through the runner, with the card's Markdown."""
    result = runner.run(project.workspace(), "model_card", run_context(context))
    return dg.MaterializeResult(
        metadata={
            "model_card": dg.MetadataValue.md(result.evidence["markdown"]),
            "path": result.evidence["path"],
        }
    )
