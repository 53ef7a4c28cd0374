"""Smoke run of every benchmark at tiny sizes, so that ``bench/`` cannot rot.

This checks that each benchmark ran and produced its rows, with positive figures and its
baselines measured in the same run. It never checks a timing: benchmarks are not tests.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS
from bench.project import STAGES
from governance.pipeline import stages

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
HAVE_DVC = (REPO / ".venv-dvc" / "bin" / "dvc").exists() or shutil.which("dvc") is not None

EXPECTED = {
    "decisions": {"mlflow-run", "sqlite-raw", "sqlite-1", "sqlite-8", "sqlite-append-1"},
    "batch": {"sqlite-raw", "sqlite", "sqlite-schema"},
    "http": {
        "mlflow-c1",
        "ours-c1",
        "mlflow-c8",
        "ours-c8",
        "mlflow-c1-p50",
        "ours-c1-p50",
        "mlflow-c1-p99",
        "ours-c1-p99",
        "mlflow-c8-p50",
        "ours-c8-p50",
        "mlflow-c8-p99",
        "ours-c8-p99",
    },
    "audit": {
        "verify-raw",
        "verify",
        "verify-cli",
        "get-raw",
        "trace-p50",
        "trace-p99",
        "subject-raw",
        "find-p50",
        "find-p99",
    },
    "ui": {
        "api-find-p50",
        "api-find-p99",
        "api-trace-p50",
        "api-trace-p99",
        "decision-first",
        "decision-p50",
        "decision-p99",
        "integrity-p50",
        "integrity-p99",
        "model-p50",
        "model-p99",
        "proof-ready",
        "search-first-p50",
        "search-first-p99",
        "search-model-p50",
        "search-model-p99",
        "search-model-key-p50",
        "search-model-key-p99",
        "search-model-first",
        "search-outcome-p50",
        "search-outcome-p99",
        "search-paged-p50",
        "search-paged-p99",
        "search-subject-p50",
        "search-subject-p99",
        "search-time-p50",
        "search-time-p99",
    },
    "witness": {
        "checkpoint-local-p50",
        "checkpoint-local-p99",
        "checkpoint-2w-p50",
        "checkpoint-2w-p99",
        "decide-off",
        "decide-on",
        "decide-off-threads",
        "decide-on-threads",
        "bundle-raw",
        "verify-bundle",
        "bundle-write",
    },
    "shards": set(),  # PostgreSQL only
    "pipeline": {"inprocess", "dvc-cold", "dvc-noop", "dvc-version"},
    "growth": {
        "total-2000",
        "total-20000",
        "growth",
        *(
            f"{stage}-{n}{peak}"
            for stage in ("ingest", "validate", "fairness", "register")
            for n in (2000, 20000)
            for peak in ("", "-peak")
        ),
    },
}
POSTGRES = {
    "decisions": {"postgres-raw", "postgres-1", "postgres-8", "postgres-append-1"},
    "batch": {"postgres-raw", "postgres", "postgres-schema"},
    "shards": {"shards-1", "shards-2", "shards-4"},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GOVERNANCE_", "MLFLOW_"))
        or k.startswith(("GOVERNANCE_BENCH_", "GOVERNANCE_TEST_PG"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    proc = subprocess.run(
        # the Python load generator: the one every machine has (wrk is optional)
        [sys.executable, "-m", "bench", "--quick", "--loadgen", "python", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"python -m bench --quick failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    )
    doc = json.loads(out.read_text())
    doc["stdout"] = proc.stdout
    return doc


def _postgres(results: dict) -> bool:
    return not str(results["machine"].get("postgresql", "not used")).startswith("not used")


def _rows(results: dict, bench: str) -> dict[str, dict]:
    return {r["key"]: r for r in results["rows"] if r["bench"] == bench}


def test_every_benchmark_ran_without_errors(results: dict) -> None:
    assert results["errors"] == {}
    assert set(results["benchmarks"]) == set(BENCHMARKS)
    assert results["quick"] is True


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_benchmark_rows_and_baselines(results: dict, bench: str) -> None:
    rows = _rows(results, bench)
    expected = set(EXPECTED[bench])
    if _postgres(results):
        expected |= POSTGRES.get(bench, set())
    if not expected:
        pytest.skip(f"{bench} has PostgreSQL rows only: {results['machine'].get('postgresql')}")
    if bench == "pipeline" and not HAVE_DVC:  # `make test` builds .venv-dvc; a bare venv may not
        expected = {"inprocess"}
    assert expected <= set(rows), f"{bench}: missing rows {sorted(expected - set(rows))}"
    assert any(r["is_baseline"] for r in rows.values()), f"{bench} has no baseline row"
    for key, row in rows.items():
        assert row["runs"], f"{bench}/{key}: no runs"
        assert all(isinstance(v, float | int) and v > 0 and math.isfinite(v) for v in row["runs"])
        assert row["value"] > 0
        if row["baseline"]:
            assert row["baseline"] in rows, f"{bench}/{key}: baseline {row['baseline']} missing"
            assert row["ratios"][row["baseline"]] > 0
        # the table shows every row
        assert row["label"] in results["stdout"]


def test_shards_every_reported_decision_is_in_a_shard(results: dict) -> None:
    if not _postgres(results):
        pytest.skip(f"PostgreSQL only: {results['machine'].get('postgresql')}")
    rows = _rows(results, "shards")
    for k in (1, 2, 4):
        extra = rows[f"shards-{k}"]["extra"]
        assert extra["shards"] == k
        assert len(extra["records_per_shard"]) == len(extra["decisions_per_shard"]) == k
        assert extra["ledger_equals_reported"] is True
        assert sum(extra["decisions_per_shard"]) == extra["decisions_written"]
        assert extra["decisions_written"] == extra["decisions_reported"] + extra["processes"] > 0
        assert all(n > 0 for n in extra["decisions_per_shard"])


def test_http_every_answered_request_is_a_ledger_decision(results: dict) -> None:
    rows = _rows(results, "http")
    for c in (1, 8):
        row = rows[f"ours-c{c}"]
        assert row["extra"]["generator"] == "python"
        assert row["extra"]["ledger_equals_answered"] is True
        for check in row["extra"]["ledger_check"]:
            assert check["ledger_written"] == check["answered"] > 0


def test_results_say_where_they_ran(results: dict) -> None:
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["sqlite"]
    assert results["total_seconds"] > 0
    assert "synthetic" in results["note"].lower()


def test_bench_times_the_pipeline_stages_by_their_names() -> None:
    assert tuple(stages.STAGES) == STAGES


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        ([], "latest.json"),
        (["--quick"], "latest.json"),
        (["--only", "audit"], "latest-only.json"),
        (["--only", "audit", "--json", "/tmp/x.json"], "x.json"),
    ],
)
def test_a_partial_run_never_replaces_the_full_runs_results(argv: list[str], name: str) -> None:
    from bench.__main__ import _parse

    assert _parse(argv).json.name == name


def test_the_readme_takes_a_full_runs_tables_and_nothing_else(
    results: dict, tmp_path: Path
) -> None:
    from bench import readme

    doc = {k: v for k, v in results.items() if k != "stdout"}
    with pytest.raises(readme.RefusedError, match="quick"):
        readme.section(doc)
    full = {**doc, "quick": False}
    body = readme.section(full)
    lines = body.splitlines()
    assert lines[0].startswith(f"The run below: {results['machine']['cores']} cores (")
    assert lines[-1].startswith(f"Total {results['total_seconds']:.0f} s on ")
    for name in BENCHMARKS:
        assert f"\n#### {name}: " in body
    table_rows = [line for line in results["table_markdown"].splitlines() if line.startswith("|")]
    assert [line for line in lines if line.startswith("|")] == table_rows
    partial = {**full, "benchmarks": {k: v for k, v in doc["benchmarks"].items() if k != "ui"}}
    with pytest.raises(readme.RefusedError, match="partial run: it has no ui"):
        readme.section(partial)
    with pytest.raises(readme.RefusedError, match="http failed"):
        readme.section({**full, "errors": {"http": "RuntimeError: no"}})

    original = readme.README.read_text()
    head, rest = original.split(readme.BEGIN)
    tail = rest.split(readme.END)[1]
    spliced = readme.splice(original, body)
    assert spliced == f"{head}{readme.BEGIN}\n{body}\n{readme.END}{tail}"
    assert readme.splice(spliced, body) == spliced
    with pytest.raises(readme.RefusedError, match="marker"):
        readme.splice(original.replace(readme.END, ""), body)

    # the command: a quick run's results leave the README as it was (exit 2, one line)
    target = tmp_path / "README.md"
    target.write_text(original)

    def command(doc: dict, name: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        argv = [sys.executable, "-m", "bench.readme", str(path), "--readme", str(target)]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)

    proc = command(doc, "quick.json")
    assert proc.returncode == 2 and target.read_text() == original
    assert proc.stderr.startswith(f"error: {tmp_path / 'quick.json'}: a quick run")
    assert proc.stderr.count("\n") == 1
    proc = command(full, "full.json")
    assert proc.returncode == 0, proc.stderr
    assert target.read_text() == spliced
