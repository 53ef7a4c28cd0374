"""7. How the governed pipeline's cost grows with the data: wall time and peak memory per stage.

For each size (10,000, 100,000 and 1,000,000 applications; ``--quick``: 2,000 and 20,000) a
fresh clone gets a synthetic data set (a seeded bootstrap of the 2,380 real HMDA rows with
jitter, :func:`bench.project.synthetic`, labelled synthetic) as Parquet under ``sources/``, and
the nine stages (ingest … register: GX validation, fairness with bootstrap intervals, the
model card, MLflow registration) run in process in a fresh interpreter, one per size. Each
stage is timed, with its peak resident memory (``VmHWM``, reset before the stage).

Rows: the total and every stage per size; the growth from the middle to the largest size
relative to the growth in rows (at most 1 is no worse than linear); the largest run's total
against the 3-minute goal.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Row, log
from bench.project import REPO, STAGES, SYNTHETIC_LABEL, Context, clone_project, subprocess_env

NAME = "growth"
TITLE = "The governed pipeline at 10k / 100k / 1M synthetic applications: time and peak memory"
GOAL_SECONDS = 180.0  # the largest run, ingest to register
SOURCE = "sources/synthetic-applications.parquet"


def sizes(ctx: Context) -> list[int]:
    return [2_000, 20_000] if ctx.quick else [10_000, 100_000, 1_000_000]


def _peak_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # Linux: reset VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")


def _run_in_process(root: Path, real_csv: Path, n: int) -> None:
    """Make the data set, then run and measure every stage (the child process's main)."""
    import pandas as pd

    from bench.project import synthetic
    from governance.pipeline import stages

    real = pd.read_csv(real_csv)
    frame = synthetic(real, n, seed=20240611, suite=root / "expectations" / "hmda.json")
    (root / SOURCE).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / SOURCE, index=False)
    del frame, real
    ws = stages.Workspace.open(root, overrides={"ingest": {"dataset": "hmda", "source": SOURCE}})
    measured: dict[str, dict[str, float]] = {}
    for name in STAGES:
        _reset_peak()
        started = time.perf_counter()
        result = getattr(stages, name)(ws)
        measured[name] = {"s": time.perf_counter() - started, "peak": _peak_bytes()}
        if not result.passed:
            raise SystemExit(f"stage {name} did not pass at {n} rows: {result.message}")
    print(json.dumps(measured))


def measure(ctx: Context, n: int) -> dict[str, dict[str, float]]:
    """Run the pipeline on ``n`` synthetic applications in a fresh clone and interpreter."""
    root = clone_project(ctx.path(f"growth/{n}"))
    real_csv = ctx.path(f"growth/real-{n}.csv")
    ctx.applications.to_csv(real_csv, index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.growth", str(root), str(real_csv), str(n)],
        cwd=REPO,
        env=subprocess_env(root),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the pipeline at {n:,} rows failed:\n{proc.stderr[-3000:]}")
    result: dict[str, dict[str, float]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _label(n: int) -> str:
    return f"{n:,} synthetic applications"


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    totals: dict[int, float] = {}
    ordered = sizes(ctx)
    for n in ordered:
        log(f"growth: the pipeline at {n:,} {SYNTHETIC_LABEL}")
        measured = measure(ctx, n)
        totals[n] = sum(m["s"] for m in measured.values())
        peak = max(m["peak"] for m in measured.values()) / 2**20
        slowest = max(measured, key=lambda k: measured[k]["s"])
        log(f"growth: {n:,} rows in {totals[n]:.1f} s (slowest: {slowest}), peak {peak:.0f} MiB")
        largest = n == ordered[-1] and not ctx.quick
        smallest = n == ordered[0]
        rows.append(
            Row(
                NAME,
                f"total-{n}",
                f"pipeline, ingest to register, {_label(n)}",
                "s",
                [totals[n]],
                baseline=None if smallest else f"total-{ordered[0]}",
                goal=(f"≤ {GOAL_SECONDS:.0f} s", "value", GOAL_SECONDS) if largest else None,
                extra={"peak_mib": peak, "slowest": slowest, "synthetic": SYNTHETIC_LABEL},
                is_baseline=smallest,
            )
        )
        for stage, m in measured.items():
            rows.append(Row(NAME, f"{stage}-{n}", f"{stage}, {_label(n)}", "s", [m["s"]]))
            rows.append(
                Row(
                    NAME,
                    f"{stage}-{n}-peak",
                    f"{stage}, peak memory, {_label(n)}",
                    "MiB",
                    [m["peak"] / 2**20],
                )
            )
    middle, largest_n = ordered[-2], ordered[-1]
    growth = (totals[largest_n] / totals[middle]) / (largest_n / middle)
    rows.append(
        Row(
            NAME,
            "growth",
            f"time growth {middle:,} → {largest_n:,} rows, relative to the growth in rows"
            " (1× = linear)",
            "×",
            [growth],
            goal=("≤ 1× (no worse than linear)", "value", 1.0),
            extra={"totals": {str(k): v for k, v in totals.items()}},
        )
    )
    return rows


if __name__ == "__main__":  # python -m bench.growth ROOT REAL_CSV N
    if len(sys.argv) != 4:
        raise SystemExit("usage: python -m bench.growth ROOT REAL_CSV N")
    _run_in_process(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
