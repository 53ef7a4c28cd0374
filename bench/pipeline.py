"""5. The governed pipeline: cold run, and ``dvc repro`` with nothing changed.

* Cold, in-process: the eight stage functions (ingest … register) called in a fresh interpreter
  on a fresh clone, imports included (the benchmark project's own build is the first run).
* Cold, ``dvc repro`` in another fresh clone: every stage through the ``governance`` CLI, as
  ``make run`` does (compared with the in-process run: what the CLI processes and DVC add).
* No-op: ``dvc repro`` again with nothing changed (must say "Data and pipelines are up to
  date"), compared with the cold ``dvc repro`` and with ``dvc version`` (DVC's start-up alone).

``--quick`` reproduces only up to the ``split`` stage, to keep the smoke test short.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import Budget, Row, log
from bench.project import REPO, Context, build_pipeline, clone_project, subprocess_env

NAME = "pipeline"
TITLE = "The governed pipeline: cold run and no-op dvc repro"
UP_TO_DATE = "Data and pipelines are up to date"


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"target": ["split"], "cold_repeats": 1, "noop_repeats": 2, "budget": 60.0}
    return {"target": [], "cold_repeats": 2, "noop_repeats": 3, "budget": 100.0}


def dvc_executable() -> str | None:
    local = REPO / ".venv-dvc" / "bin" / "dvc"
    if local.exists():
        return str(local)
    return shutil.which("dvc")


def _timed_run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=subprocess_env(cwd), capture_output=True, text=True, timeout=900
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def run(ctx: Context) -> list[Row]:
    s = sizes(ctx)
    rows: list[Row] = []
    in_process = [ctx.pipeline["wall"]]
    stages = ctx.pipeline["stages"]
    if not ctx.quick:
        for r in Budget(s["cold_repeats"], s["budget"] / 2):
            if r == 0:
                continue  # the benchmark project's own build was the first run
            fresh = clone_project(ctx.path(f"pipeline/inproc-{r}"))
            in_process.append(build_pipeline(fresh)["wall"])
            log(f"pipeline: in-process cold run {r + 1}: {in_process[-1]:.1f} s")
    slowest = sorted(stages.items(), key=lambda kv: -kv[1])[:3]
    rows.append(
        Row(
            NAME,
            "inprocess",
            "cold pipeline, in-process stage calls (fresh interpreter)",
            "s",
            in_process,
            is_baseline=True,
            extra={
                "stages_first_run": stages,
                "slowest": ", ".join(f"{k} {v:.1f} s" for k, v in slowest),
            },
        )
    )
    dvc = dvc_executable()
    if dvc is None:
        log("pipeline: no dvc executable (make env builds .venv-dvc); dvc rows skipped")
        return rows
    target = s["target"]
    what = "dvc repro" + (f" {' '.join(target)}" if target else "")
    cold: list[float] = []
    clone: Path | None = None
    for r in Budget(s["cold_repeats"], s["budget"]):
        clone = clone_project(ctx.path(f"pipeline/dvc-{r}"))
        elapsed, _ = _timed_run([dvc, "repro", "-q", *target], clone)
        cold.append(elapsed)
        log(f"pipeline: cold {what} run {r + 1}: {elapsed:.1f} s")
    assert clone is not None
    noop: list[float] = []
    version: list[float] = []
    for _ in range(s["noop_repeats"]):
        elapsed, out = _timed_run([dvc, "repro", *target], clone)
        if UP_TO_DATE not in out:
            raise AssertionError(f"a second {what} did something:\n{out[-2000:]}")
        noop.append(elapsed)
        version.append(_timed_run([dvc, "version"], clone)[0])
    log(f"pipeline: no-op {what}: {min(noop):.2f} s")
    scope = "" if not target else f" (quick: stages up to {target[-1]})"
    rows += [
        Row(
            NAME,
            "dvc-cold",
            f"cold {what} in a fresh clone, via the governance CLI{scope}",
            "s",
            cold,
            baseline="inprocess" if not target else None,
        ),
        Row(
            NAME, "dvc-version", "dvc version (DVC start-up alone)", "s", version, is_baseline=True
        ),
        Row(
            NAME,
            "dvc-noop",
            f'{what} with nothing changed ("up to date"){scope}',
            "s",
            noop,
            baseline="dvc-cold",
            also=["dvc-version"],
        ),
    ]
    return rows
