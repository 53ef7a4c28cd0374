import dagster as dg

from governance.defs.metadata import metadata
from governance.defs.resources import GovernanceProject
from governance.pipeline import stages


@dg.asset(
    group_name="ingestion",
    kinds={"pandas", "csv"},
    description="Raw applications read from the configured source (shipped data or a file under "
    "sources/) into data/raw/applications.csv, unchanged but for column renames.",
)
def ingest(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.ingest(project.workspace())
    return dg.MaterializeResult(
        metadata=metadata(result, **{"dagster/row_count": result.evidence["rows"]})
    )
