"""The benchmarks' project: a throwaway clone with a registered model, and synthetic data.

:func:`prepare` copies the working tree (tracked and untracked-but-not-ignored files, as
``tests/support.py`` does) into a temporary directory, commits it in a fresh git repository so
lineage names a real, clean commit, and runs the governed pipeline's stages in-process in a
fresh interpreter (``python -m bench.project build ROOT``, timed per stage: the cold pipeline
figure of the ``pipeline`` benchmark). The result is ``mortgage-denial`` version 1 with alias
``candidate`` in ``ROOT/.governance``.

:func:`synthetic` makes large sets of applications from the real HMDA rows: a seeded bootstrap
of rows with small seeded jitter on the continuous features, clipped to the ranges of the
project's Great Expectations suite (``expectations/hmda.json``). They are labelled synthetic
wherever they are reported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import log
from governance import testkit

REPO = Path(__file__).resolve().parents[1]
MODEL = "mortgage-denial"
ALIAS = "candidate"
STAGES = (
    "ingest",
    "validate",
    "split",
    "train",
    "evaluate",
    "fairness",
    "alternatives",
    "model_card",
    "register",
)
SYNTHETIC_LABEL = "synthetic (bootstrap of the 2,380 real HMDA rows + seeded jitter)"
JITTER = 0.05  # noise sd as a fraction of each continuous feature's sd


def clone_project(dest: Path, *, who: str = "bench") -> Path:
    """Copy the working tree into ``dest`` and commit it there (see :mod:`governance.testkit`)."""
    return testkit.clone_project(dest, who=who)


def subprocess_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for tools run in the project: none of the caller's GOVERNANCE_/MLFLOW_
    settings, the main environment's tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["GOVERNANCE_PROJECT"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def build_pipeline(root: Path) -> dict[str, Any]:
    """Run the stages in a fresh interpreter; return ``{"stages": {name: s}, "total": s}``."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.project", "build", str(root)],
        cwd=REPO,
        env=subprocess_env(root),
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"building the benchmark project failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = wall  # includes the interpreter's start and imports: the cold figure
    return result


def _build_in_process(root: Path) -> None:
    t0 = time.perf_counter()
    from governance.pipeline import stages

    ws = stages.Workspace.open(root)
    timings: dict[str, float] = {"import": time.perf_counter() - t0}
    for name, stage in stages.STAGES.items():
        t = time.perf_counter()
        result = stage(ws, None)
        timings[name] = time.perf_counter() - t
        if not result.passed:
            raise SystemExit(f"stage {name} did not pass: {result.message}")
    print(json.dumps({"stages": timings, "total": time.perf_counter() - t0}))


@dataclass
class Context:
    """Everything the benchmarks share in one run."""

    quick: bool
    tmp: Path
    root: Path
    applications: pd.DataFrame
    features: tuple[str, ...]
    pipeline: dict[str, Any]
    pg: str | None  # None when PostgreSQL is usable, else why not
    profile_dir: Path | None = None
    loadgen: str = "python"
    shared: dict[str, Any] = field(default_factory=dict)
    sample_records: list[bytes] = field(default_factory=list)
    model: str = MODEL
    alias: str = ALIAS

    def settings(self, ledger_url: str | None = None, home: Path | None = None) -> Any:
        """Settings of the project, with the ledger at ``ledger_url`` (default: the project's)."""
        from governance.settings import Settings

        env: dict[str, str] = {}
        if ledger_url:
            env["GOVERNANCE_LEDGER_URL"] = ledger_url
        if home:
            env["GOVERNANCE_HOME"] = str(home)
        return Settings.resolve(self.root, env=env)

    def path(self, name: str) -> Path:
        """A fresh path in the run's temporary directory (the file does not exist)."""
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        for old in p.parent.glob(p.name + "*"):
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
        return p

    def synthetic(self, n: int, seed: int = 0) -> pd.DataFrame:
        return synthetic(
            self.applications, n, seed=seed, suite=self.root / "expectations" / "hmda.json"
        )


def _suite_ranges(suite: Path) -> dict[str, tuple[float | None, float | None]]:
    doc = json.loads(suite.read_text())
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for e in doc.get("expectations", []):
        kw = e.get("kwargs", {})
        if e.get("type") == "expect_column_values_to_be_between" and "column" in kw:
            ranges[kw["column"]] = (kw.get("min_value"), kw.get("max_value"))
    return ranges


def synthetic(real: pd.DataFrame, n: int, *, seed: int, suite: Path) -> pd.DataFrame:
    """``n`` synthetic applications from the real ones (see the module docstring).

    Continuous features (float columns with a range in the suite) get Gaussian jitter of
    ``JITTER`` times their standard deviation, clipped to the suite's range; the other columns
    are bootstrapped as they are; ``application_id`` becomes ``1..n`` (unique).
    """
    rng = np.random.default_rng(seed)
    out = real.iloc[rng.integers(0, len(real), n)].reset_index(drop=True)
    ranges = _suite_ranges(suite)
    for column, (lo, hi) in ranges.items():
        if column not in out.columns or not pd.api.types.is_float_dtype(out[column]):
            continue
        values = out[column].to_numpy(dtype=float)
        values = values + rng.normal(0.0, JITTER * float(real[column].std()), n)
        out[column] = np.clip(
            values, lo if lo is not None else -np.inf, hi if hi is not None else np.inf
        )
    if "application_id" in out.columns:
        out["application_id"] = np.arange(1, n + 1, dtype=np.int64)
    return out


def prepare(
    *, quick: bool, keep: bool, profile_dir: Path | None, loadgen: str, pg: str | None
) -> Context:
    """Clone the project, build and register the model, and load what the benchmarks need."""
    tmp = Path(tempfile.mkdtemp(prefix="governance-bench-"))
    log(f"working in {tmp}{' (kept afterwards)' if keep else ''}")
    root = clone_project(tmp / "project")
    log("building the model: the governed pipeline, in-process, cold interpreter")
    pipeline = build_pipeline(root)
    log(f"pipeline built in {pipeline['wall']:.1f} s")
    applications = pd.read_csv(root / "data" / "raw" / "applications.csv")
    ctx = Context(
        quick=quick,
        tmp=tmp,
        root=root,
        applications=applications,
        features=(),
        pipeline=pipeline,
        pg=pg,
        profile_dir=profile_dir,
        loadgen=loadgen,
    )
    ctx.sample_records = _sample_records(ctx)
    return ctx


def _sample_records(ctx: Context, n: int = 2000) -> list[bytes]:
    """Real decision records (canonical bytes) for the raw-storage baselines' record sizes.

    Only the ``decision`` records: the linked ``recourse`` events of the adverse ones are not
    decisions, and the audit and explorer benchmarks replay these bodies as decisions.
    """
    from governance.decisions.service import DecisionService

    path = ctx.path("samples/ledger.db")
    with DecisionService.open(ctx.settings(f"sqlite:///{path}")) as svc:
        loaded, _ = svc.model(ctx.model, alias=ctx.alias)
        ctx.features = tuple(loaded.scorecard.order)
        frame = ctx.synthetic(n, seed=99)
        for _ in svc.score_frame(
            ctx.model,
            frame,
            subject_column="application_id",
            alias=ctx.alias,
            caller="bench",
            purpose="benchmark sample",
        ):
            pass
        return [bytes(r.data) for r in svc.ledger.iter_records() if r.type == "decision"]


def decision_seqs(path: str | Path) -> list[int]:
    """The ledger positions of the ``decision`` records in a SQLite ledger file, in order.

    The big ledgers hold subject ``str(k + 1)`` at the k-th decision; the batch one also holds
    a linked ``recourse`` event after each adverse decision, so seq and k differ there.
    """
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq FROM records WHERE type = 'decision' ORDER BY seq")
        return [seq for (seq,) in rows]
    finally:
        conn.close()


def cleanup(ctx: Context) -> None:
    shutil.rmtree(ctx.tmp, ignore_errors=True)


if __name__ == "__main__":  # python -m bench.project build ROOT
    if len(sys.argv) != 3 or sys.argv[1] != "build":
        raise SystemExit("usage: python -m bench.project build ROOT")
    _build_in_process(Path(sys.argv[2]))
