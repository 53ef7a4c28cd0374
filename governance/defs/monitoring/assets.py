"""The ``production_monitoring`` asset: one model version's behaviour on real decisions.

No ``from __future__ import annotations`` here: Dagster reads the config class from the
asset function's annotations at definition time.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from governance.defs.metadata import table
from governance.defs.monitoring.checks import CHECK_SPECS, check_results
from governance.defs.resources import GovernanceProject
from governance.lifecycle import monitoring


class MonitoringConfig(dg.Config):
    """Which model version and which decisions to monitor (every field optional)."""

    model: str = Field(
        default="", description="Registered model. Default: the model of the project's dataset"
    )
    version: str = Field(default="", description="A version to monitor (instead of an alias)")
    alias: str = Field(
        default="",
        description="An alias to monitor. Default: champion, else candidate (before any "
        "promotion the candidate is what serves)",
    )
    since: str = Field(default="", description="Decisions at or after (ISO 8601, with zone)")
    until: str = Field(default="", description="Decisions before (ISO 8601, with zone)")
    purpose: str = Field(default="", description="Only decisions recorded with this purpose")


def _scalar(value: Any) -> Any:
    return dg.MetadataValue.null() if value is None else value


def drift_table(doc: dict[str, Any]) -> dg.TableMetadataValue:
    """Per-feature PSI (and the score's) as a Dagster table."""
    p = doc["params"]
    rows = [(e, p["psi_max"]) for e in doc["drift"]["features"]]
    if doc["drift"]["score"]:
        rows.append((doc["drift"]["score"], p["score_psi_max"]))
    records = [
        {
            "feature": e["feature"],
            "kind": e["kind"],
            "psi": round(float(e["psi"]), 6),
            "threshold": float(limit),
            "decisions": int(e["n_production"]),
            "status": "over" if e["psi"] > limit else "ok",
        }
        for e, limit in rows
    ]
    return table(
        records,
        [
            ("feature", "string"),
            ("kind", "string"),
            ("psi", "float"),
            ("threshold", "float"),
            ("decisions", "int"),
            ("status", "string"),
        ],
    )


def fairness_table(grouping: dict[str, Any]) -> dg.TableMetadataValue:
    """One grouping's approval rates (and TPR / FPR with outcomes) by group."""
    outcomes = {r["group"]: r for r in (grouping["outcomes"] or {}).get("by_group", [])}
    records = []
    for row in grouping["approval"]["by_group"]:
        o = outcomes.get(row["group"], {})
        records.append(
            {
                "group": row["group"],
                "decisions": int(row["count"]),
                "approval_rate": float(row["approval_rate"]),
                "outcomes": int(o.get("count", 0)),
                "tpr": o.get("tpr"),
                "fpr": o.get("fpr"),
                "compared": not row["excluded"],
            }
        )
    return table(
        records,
        [
            ("group", "string"),
            ("decisions", "int"),
            ("approval_rate", "float"),
            ("outcomes", "int"),
            ("tpr", "float"),
            ("fpr", "float"),
            ("compared", "bool"),
        ],
    )


def report_metadata(result: monitoring.MonitoringRun) -> dict[str, Any]:
    """The report as Dagster metadata: tables, headline numbers, the Markdown, the files."""
    doc = result.doc
    m, c, perf = doc["model"], doc["counts"], doc["performance"]
    meta: dict[str, Any] = {
        "model": m["name"],
        "version": m["version"],
        "alias": _scalar(m["alias"]),
        "window": dg.MetadataValue.json(doc["window"]),
        "decisions": c["decisions"],
        "decisions_with_outcome": c["with_outcome"],
        "decisions_with_sensitive_attributes": c["with_sensitive"],
        "overridden": c["overridden"],
        "drift": drift_table(doc),
        "max_feature_psi": _scalar(max((e["psi"] for e in doc["drift"]["features"]), default=None)),
        "score_psi": _scalar(doc["drift"]["score"]["psi"] if doc["drift"]["score"] else None),
        "auc": _scalar(perf["auc"]),
        "brier": _scalar(perf["brier"]),
        "calibration_error": _scalar(perf["calibration_error"]),
        "performance": dg.MetadataValue.json(perf),
    }
    for g in doc["fairness"]:
        if g["approval"]:
            meta[f"fairness by {g['name']}"] = fairness_table(g)
            meta[f"{g['name']} approval_ratio"] = _scalar(g["approval"]["approval_ratio"])
        if g["outcomes"]:
            meta[f"{g['name']} equalized_odds_difference"] = _scalar(
                g["outcomes"]["equalized_odds_difference"]
            )
    meta["checks"] = dg.MetadataValue.json({k: v["message"] for k, v in doc["checks"].items()})
    meta["report"] = dg.MetadataValue.md(result.markdown)
    meta["report_html"] = dg.MetadataValue.path(str(result.paths["html"]))
    meta["report_json"] = dg.MetadataValue.path(str(result.paths["json"]))
    meta["reference_bins"] = dg.MetadataValue.path(str(result.paths["reference"]))
    return meta


@dg.asset(
    group_name="monitoring",
    deps=["register"],
    kinds={"pandas", "fairlearn"},
    check_specs=list(CHECK_SPECS),
    description="Production monitoring of one registered model version from the decision "
    "ledger: input drift per feature and score drift (PSI against its training split, bins "
    "stored), performance once outcomes arrive (AUC, calibration), fairness of the effective "
    "decisions (approval rate by group, TPR/FPR with outcomes). Report under "
    "reports/monitoring/; thresholds in params.yaml `monitoring`.",
)
def production_monitoring(
    context: dg.AssetExecutionContext, config: MonitoringConfig, project: GovernanceProject
) -> dg.MaterializeResult:
    """Monitor one registered version from the ledger; the checks judge this report."""
    ws = project.workspace()
    model = config.model or ws.spec.model_name
    result = monitoring.run(
        ws.settings,
        ws.params,
        model,
        version=config.version or None,
        alias=config.alias or None,
        since=config.since or None,
        until=config.until or None,
        purpose=config.purpose or None,
    )
    report = result.report
    context.log.info(
        "monitored %s v%s: %d decisions; %s",
        model,
        report.model["version"],
        report.counts["decisions"],
        "; ".join(c.message for c in report.checks.values()),
    )
    return dg.MaterializeResult(
        metadata=report_metadata(result), check_results=check_results(report)
    )
