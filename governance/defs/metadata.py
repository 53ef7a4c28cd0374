"""Turning a stage's evidence into Dagster metadata."""

from __future__ import annotations

from typing import Any

import dagster as dg

from governance.pipeline.workspace import StageResult


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


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> dg.TableMetadataValue:
    """Rows as a Dagster table with the given ``(name, type)`` columns; NaN becomes null."""
    records = [
        dg.TableRecord({c: (r.get(c) if r.get(c) == r.get(c) else None) for c, _ in columns})
        for r in rows
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    return dg.MetadataValue.table(records, schema=schema)


def group_table(rows: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """A fairness MetricFrame's rows as a Dagster table."""
    return table(
        rows,
        [("group", "string"), ("count", "int")]
        + [(c, "float") for c in ("approval_rate", "selection_rate", "tpr", "fpr")],
    )


def run_context(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> dict[str, str]:
    """Who runs a stage from Dagster: the run id, recorded in lineage."""
    return {"source": "dagster", "id": context.run.run_id}
