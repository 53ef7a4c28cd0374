"""What changed between two model cards: data, parameters, metrics, fairness."""

from __future__ import annotations

from typing import Any


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return out


def _numbers(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        delta = y - x if isinstance(x, int | float) and isinstance(y, int | float) else None
        rows.append({"name": key, "a": x, "b": y, "delta": delta, "changed": x != y})
    return rows


def diff_cards(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Compare two model-card documents (``model_card.json``), version ``a`` then ``b``."""
    data_a = {d["name"]: d for d in a["lineage"]["datasets"]}
    data_b = {d["name"]: d for d in b["lineage"]["datasets"]}
    data = [
        {
            "name": name,
            "path": (data_b.get(name) or data_a.get(name, {})).get("path"),
            "a_md5": data_a.get(name, {}).get("md5"),
            "b_md5": data_b.get(name, {}).get("md5"),
            "a_rows": data_a.get(name, {}).get("rows"),
            "b_rows": data_b.get(name, {}).get("rows"),
            "changed": data_a.get(name, {}).get("md5") != data_b.get(name, {}).get("md5"),
        }
        for name in sorted(set(data_a) | set(data_b))
    ]
    params_a = _flatten(a["lineage"]["params"])
    params_b = _flatten(b["lineage"]["params"])
    params = [
        {"name": k, "a": params_a.get(k), "b": params_b.get(k)}
        for k in sorted(set(params_a) | set(params_b))
        if params_a.get(k) != params_b.get(k)
    ]
    fairness_a = a["lineage"]["fairness"]["metrics"]
    fairness_b = b["lineage"]["fairness"]["metrics"]
    summary = [k for k in set(fairness_a) | set(fairness_b) if k.count(".") == 1]
    return {
        "a": {
            "version": (a.get("registration") or {}).get("version"),
            "git_commit": a["lineage"]["git_commit"],
        },
        "b": {
            "version": (b.get("registration") or {}).get("version"),
            "git_commit": b["lineage"]["git_commit"],
        },
        "code_changed": a["lineage"]["git_commit"] != b["lineage"]["git_commit"],
        "data": data,
        "params": params,
        "metrics": _numbers(a["metrics"]["estimates"], b["metrics"]["estimates"]),
        "fairness": _numbers(
            {k: fairness_a.get(k) for k in summary}, {k: fairness_b.get(k) for k in summary}
        ),
        "gate": {
            "a": a["quantitative_analyses"]["gate"]["passed"],
            "b": b["quantitative_analyses"]["gate"]["passed"],
        },
    }
