"""The one table (Markdown, so it can go into the README as printed) and the JSON results."""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import Row


def ratio(row: Row, base: Row) -> float:
    """How many times better than ``base`` (> 1 is better), from the two medians."""
    a, b = row.value, base.value
    if not (a > 0 and b > 0) or math.isnan(a) or math.isnan(b):
        return float("nan")
    return a / b if row.higher_is_better else b / a


def goal_met(row: Row, ratios: dict[str, float]) -> bool | None:
    if row.goal is None:
        return None
    text, kind, threshold = row.goal
    if kind == "ratio":
        r = ratios.get(row.baseline or "", float("nan"))
        if math.isnan(r):
            return None
        return r > threshold if text.startswith(">") else r >= threshold
    v = row.value
    return v >= threshold if row.higher_is_better else v <= threshold


def fmt_value(v: float, unit: str) -> str:
    if math.isnan(v):
        return "–"
    if unit.startswith("/"):
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def fmt_ratio(r: float) -> str:
    if math.isnan(r):
        return "–"
    if r >= 100:
        return f"{r:,.0f}×"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def resolve(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as dicts with their ratios and goal verdicts computed from this run's medians."""
    by_key = {(r.bench, r.key): r for r in rows}
    out = []
    for r in rows:
        ratios: dict[str, float] = {}
        for key in ([r.baseline] if r.baseline else []) + r.also:
            base = by_key.get((r.bench, key))
            if base is not None:
                ratios[key] = ratio(r, base)
        d = r.to_dict()
        d["ratios"] = ratios
        d["goal_met"] = goal_met(r, ratios)
        out.append(d)
    return out


def table(resolved: list[dict[str, Any]], titles: dict[str, str]) -> str:
    lines: list[str] = []
    current = None
    header = "| measurement | median | unit | runs | vs baseline (> 1× = better) | goal | met |"
    for d in resolved:
        if d["bench"] != current:
            current = d["bench"]
            lines += [
                "",
                f"### {current}: {titles.get(current, '')}",
                "",
                header,
                "|---|--:|---|--:|---|---|---|",
            ]
        parts = [f"{fmt_ratio(v)} {k}" for k, v in d["ratios"].items()]
        vs = "; ".join(parts) if parts else ("*baseline*" if d["is_baseline"] else "")
        goal = d["goal"][0] if d["goal"] else ""
        met = {True: "yes", False: "**no**", None: ""}[d["goal_met"]]
        unit = d["unit"] if not d["unit"].startswith("/") else "per s"
        lines.append(
            f"| {d['label']} | {fmt_value(d['value'], d['unit'])} | {unit} | {len(d['runs'])}"
            f" | {vs} | {goal} | {met} |"
        )
    return "\n".join(lines).lstrip("\n")


def fsync_ms(directory: Path, n: int = 50) -> float:
    """Median time of a 4 KiB write + fsync where the benchmarks write (context for readers)."""
    path = directory / "fsync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return times[len(times) // 2]


def machine(tmp: Path, pg_reason: str | None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "fsync_ms_p50": round(fsync_ms(tmp), 3),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    if pg_reason is None:
        try:
            import psycopg

            from bench.common import pg_base_url

            with psycopg.connect(pg_base_url()) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                info["postgresql"] = row[0] if row else "unknown"
        except Exception:
            pass
    else:
        info["postgresql"] = f"not used: {pg_reason}"
    return info


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_finite(doc), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
