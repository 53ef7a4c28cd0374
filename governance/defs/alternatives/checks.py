import json

import dagster as dg

from governance.defs.resources import GovernanceProject


@dg.asset_check(
    asset="alternatives",
    blocking=True,
    description="LDA gate: no exactly explainable alternative is less discriminatory beyond "
    "the tolerance at an AUC within the tolerance (params.yaml `alternatives.gate`).",
)
def lda_gate(project: GovernanceProject) -> dg.AssetCheckResult:
    """The LDA gate's verdict as written by the ``alternatives`` stage."""
    doc = json.loads(project.workspace().path("alternatives").read_text())
    gate = doc["gate"]
    return dg.AssetCheckResult(
        passed=bool(gate["passed"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description=gate["message"],
        metadata={
            "blocking": dg.MetadataValue.json(gate["blocking"]),
            "checked": dg.MetadataValue.json(gate["checked"]),
            "tolerances": dg.MetadataValue.json(doc["tolerances"]),
        },
    )
