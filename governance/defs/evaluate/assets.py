import dagster as dg

from governance.defs.metadata import run_context
from governance.defs.resources import GovernanceProject
from governance.pipeline import runner


@dg.asset(
    group_name="evaluation",
    deps=["train"],
    kinds={"scikitlearn"},
    description="AUC, accuracy, Brier score and calibration on the held-out split, with "
    "bootstrap confidence intervals.",
)
def evaluate(context: dg.AssetExecutionContext, project: GovernanceProject) -> dg.MaterializeResult:
    """The ``evaluate`` stage through the runner, with its metrics as a Markdown table."""
    result = runner.run(project.workspace(), "evaluate", run_context(context))
    ev = result.evidence
    table = "\n".join(
        ["| metric | value | interval |", "|---|---|---|"]
        + [
            f"| {k} | {v:.4f} | {ev['intervals'][k][0]:.4f} – {ev['intervals'][k][1]:.4f} |"
            for k, v in ev["metrics"].items()
        ]
    )
    return dg.MaterializeResult(
        metadata={
            **{k: float(v) for k, v in ev["metrics"].items()},
            "metrics": dg.MetadataValue.md(table),
            "n": ev["n"],
        }
    )
