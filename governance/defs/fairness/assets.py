from typing import Any

import dagster as dg

from governance.defs.metadata import group_table, run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="fairness",
    deps=["evaluate"],
    kinds={"fairlearn"},
    description="fairlearn MetricFrame by each sensitive attribute and their intersection: "
    "approval rate, TPR, FPR, demographic-parity and equalized-odds differences with intervals. "
    "Its blocking check applies the thresholds in params.yaml `fairness`.",
)
def fairness(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``fairness`` stage through the runner, with the metrics by group."""
    result = runner.run(project.workspace(), "fairness", run_context(context))
    report = result.evidence["report"]
    meta: dict[str, Any] = {"gate": result.message}
    for g in report["groupings"]:
        meta[f"by {g['name']}"] = group_table(g["by_group"])
        meta[f"{g['name']} approval_ratio"] = g["approval_ratio"]
        meta[f"{g['name']} equalized_odds_difference"] = g["equalized_odds_difference"]
    return dg.MaterializeResult(metadata=meta)
