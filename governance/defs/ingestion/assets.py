import dagster as dg

from governance import stages
from governance.defs.evidence import metadata
from governance.defs.resources import GovernanceProject


@dg.asset(
    group_name="ingestion",
    kinds={"pandas", "csv"},
    description="Raw applications read from the configured source (shipped data or a file under "
    "sources/) into data/raw/applications.csv, unchanged but for column renames.",
)
def raw_applications(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.ingest(project.workspace())
    return dg.MaterializeResult(
        metadata=metadata(result, **{"dagster/row_count": result.evidence["rows"]})
    )
