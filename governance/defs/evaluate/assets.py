import dagster as dg

from governance.defs.resources import GovernanceProject
from governance.pipeline import stages


@dg.asset(
    group_name="evaluation",
    deps=["train"],
    kinds={"scikitlearn"},
    description="AUC, accuracy, Brier score and calibration on the held-out split, with "
    "bootstrap confidence intervals.",
)
def evaluate(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.evaluate(project.workspace())
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
