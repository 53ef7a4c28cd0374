import json

import dagster as dg

from governance.defs.resources import GovernanceProject
from governance.pipeline.workspace import PATHS


@dg.asset_check(
    asset="validate",
    blocking=True,
    description="Every expectation of the suite passed on exactly the bytes that were ingested.",
)
def expectations_pass(project: GovernanceProject) -> dg.AssetCheckResult:
    """Pass when every expectation of the suite passed."""
    report = json.loads(project.workspace().path("validation").read_text())
    return dg.AssetCheckResult(
        passed=bool(report["success"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description=report["message"],
        metadata={
            "suite": report["suite"],
            "data_md5": report["data_md5"],
            "failed": dg.MetadataValue.json(report["failed"]),
            "statistics": dg.MetadataValue.json(report["statistics"]),
            "report": PATHS.validation,
        },
    )
