from typing import Any

import dagster as dg

from governance.defs.metadata import run_context, table
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="fairness",
    deps=["fairness"],
    kinds={"fairlearn", "scikit-learn"},
    description="Search for less discriminatory alternatives (params.yaml `alternatives`): "
    "other regularisation strengths, the model without likely proxies, fairlearn reductions; "
    "each judged on the same held-out rows with the same metrics and intervals. The frontier "
    "goes in the model card; the blocking LDA check refuses registration when an alternative "
    "is less discriminatory beyond the tolerances.",
)
def alternatives(
    context: dg.AssetExecutionContext, project: GovernanceProject
) -> dg.MaterializeResult:
    """The ``alternatives`` stage through the runner, with the frontier as a table."""
    result = runner.run(project.workspace(), "alternatives", run_context(context))
    doc = result.evidence
    rows = [
        {
            "model": r["name"],
            "description": r["description"],
            "auc": r["metrics"]["auc"],
            "worst": r["worst"],
            "explainable": r["explainable"],
            "frontier": r["name"] in doc["frontier"],
        }
        for r in [doc["baseline"], *doc["alternatives"]]
    ]
    meta: dict[str, Any] = {
        "gate": result.message,
        "measure": doc["measure_label"],
        "frontier": ", ".join(doc["frontier"]),
        "models": table(
            rows,
            [
                ("model", "string"),
                ("description", "string"),
                ("auc", "float"),
                ("worst", "float"),
                ("explainable", "bool"),
                ("frontier", "bool"),
            ],
        ),
    }
    return dg.MaterializeResult(metadata=meta)
