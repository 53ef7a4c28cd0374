"""Turning a stage's evidence into Dagster metadata."""

from __future__ import annotations

from typing import Any

import dagster as dg

from governance.stages import StageResult


def metadata(result: StageResult, **extra: Any) -> dict[str, Any]:
    """Scalars as they are, nested evidence as JSON."""
    out: dict[str, Any] = {}
    for key, value in result.evidence.items():
        if isinstance(value, bool | int | float | str) or value is None:
            out[key] = value if value is not None else dg.MetadataValue.null()
        else:
            out[key] = dg.MetadataValue.json(value)
    out.update(extra)
    return out


def group_table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """A fairness MetricFrame's rows as a Dagster table."""
    columns = ["group", "count", "approval_rate", "selection_rate", "tpr", "fpr"]
    records = [
        dg.TableRecord({c: (r.get(c) if r.get(c) == r.get(c) else None) for c in columns})
        for r in rows
    ]
    schema = dg.TableSchema(
        columns=[dg.TableColumn("group", "string"), dg.TableColumn("count", "int")]
        + [dg.TableColumn(c, "float") for c in columns[2:]]
    )
    return dg.MetadataValue.table(records, schema=schema)


def run_context(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> dict[str, str]:
    return {"source": "dagster", "id": context.run.run_id}
