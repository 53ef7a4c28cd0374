import dagster as dg

from governance.defs.metadata import metadata, run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="ingestion",
    kinds={"pandas", "csv"},
    description="Raw applications read from the configured source (shipped data or a file under "
    "sources/) into data/raw/applications.csv, unchanged but for column renames.",
)
def ingest(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``ingest`` stage through the runner, with its evidence and row count."""
    result = runner.run(project.workspace(), "ingest", run_context(context))
    return dg.MaterializeResult(
        metadata=metadata(result, **{"dagster/row_count": result.evidence["rows"]})
    )
