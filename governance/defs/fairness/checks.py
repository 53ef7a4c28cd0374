import json

import dagster as dg

from governance.defs.resources import GovernanceProject


@dg.asset_check(
    asset="fairness",
    blocking=True,
    description="Four-fifths rule on approval rates and the equalized-odds bound (params.yaml).",
)
def fairness_gate(project: GovernanceProject) -> dg.AssetCheckResult:
    """Pass when the fairness report's gate passed."""
    doc = json.loads(project.workspace().path("fairness").read_text())
    gate = doc["gate"]
    return dg.AssetCheckResult(
        passed=bool(gate["passed"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate["message"],
        metadata={
            "failures": dg.MetadataValue.json(gate["failures"]),
            "checked": dg.MetadataValue.json(gate["checked"]),
            "thresholds": dg.MetadataValue.json(doc["thresholds"]),
        },
    )
