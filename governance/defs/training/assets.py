import dagster as dg

from governance import stages
from governance.defs.evidence import metadata
from governance.defs.resources import GovernanceProject


@dg.asset(
    group_name="training",
    deps=["validation_report"],
    kinds={"pandas", "csv"},
    description="Seeded, stratified train/test split of the validated data.",
)
def train_test_split(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.split(project.workspace())
    return dg.MaterializeResult(metadata=metadata(result))


@dg.asset(
    group_name="training",
    deps=["train_test_split"],
    kinds={"scikitlearn"},
    description="Regularised logistic scorecard (params.yaml `train`), compiled to exact "
    "per-feature contributions and checked against scikit-learn on every row.",
)
def trained_model(project: GovernanceProject) -> dg.MaterializeResult:
    result = stages.train(project.workspace())
    return dg.MaterializeResult(metadata=metadata(result))


@dg.asset(
    group_name="evaluation",
    deps=["trained_model"],
    kinds={"scikitlearn"},
    description="AUC, accuracy, Brier score and calibration on the held-out split, with "
    "bootstrap confidence intervals.",
)
def evaluation(project: GovernanceProject) -> dg.MaterializeResult:
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
