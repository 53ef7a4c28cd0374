"""Test support: throwaway clones of the project and ways to change them."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from governance import testkit
from governance.core.dataset import load_spec, read_source
from governance.pipeline import runner, stages
from governance.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def _pipeline_assets() -> list[object]:
    from governance.defs.alternatives import assets as alternatives
    from governance.defs.alternatives import checks as alternatives_checks
    from governance.defs.evaluate import assets as evaluate
    from governance.defs.fairness import assets as fairness
    from governance.defs.fairness import checks as fairness_checks
    from governance.defs.ingest import assets as ingest
    from governance.defs.model_card import assets as model_card
    from governance.defs.register import assets as register
    from governance.defs.split import assets as split
    from governance.defs.train import assets as train
    from governance.defs.validate import assets as validate
    from governance.defs.validate import checks as validate_checks

    return [
        ingest.ingest,
        validate.validate,
        validate_checks.expectations_pass,
        split.split,
        train.train,
        evaluate.evaluate,
        fairness.fairness,
        fairness_checks.fairness_gate,
        alternatives.alternatives,
        alternatives_checks.lda_gate,
        model_card.model_card,
        register.register,
    ]


ASSETS = _pipeline_assets()


def copy_state(home: Path, dest: Path, *, leave_out: tuple[str, ...] = ()) -> Path:
    """Copy a state directory whose SQLite ledger may be open in this very process.

    A file copy of a live SQLite database is unsafe twice over: it can miss pages still in the
    WAL, and closing this process's file descriptor on ``ledger.db`` drops every POSIX lock the
    process's open connections hold on it (fcntl semantics). Another process closing the ledger
    then takes itself for the last user and deletes the WAL under them; the next connection
    opened here fails with "disk I/O error". So the ledger goes through SQLite's online backup,
    and everything else (keys, checkpoints, tiles, ...) file by file, ``leave_out`` aside.
    """
    shutil.copytree(home, dest, ignore=shutil.ignore_patterns("ledger.db*", *leave_out))
    if (home / "ledger.db").exists():
        source = sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True)
        target = sqlite3.connect(dest / "ledger.db")
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    return dest


def clone_project(dest: Path) -> Path:
    """A committed copy of the working tree (see :func:`governance.testkit.clone_project`)."""
    return testkit.clone_project(dest, who="test")


def build_trained_project(base: Path) -> tuple[Path, Settings]:
    """Clone the project into ``base`` and run every stage in-process (registers v1)."""
    dest = base / "project"
    dest.mkdir()
    root = clone_project(dest)
    settings = Settings.resolve(root, env={})
    run_stages(root, settings)
    return root, settings


def run_stages(root: Path, settings: Settings) -> None:
    """Run the whole pipeline in-process, as the CLI stages would."""
    ws = stages.Workspace.open(root, settings=settings)
    for name in stages.STAGES:
        result = runner.run(ws, name)
        assert result.passed, f"{result.stage}: {result.message}"


def set_params(project: Path, **changes: object) -> None:
    """Change dotted keys of a project's params.yaml (as `dvc exp run -S` would)."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commit_all(project: Path, message: str = "change") -> str:
    testkit.git(project, "add", "-A")
    testkit.git(
        project,
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "commit",
        "-qm",
        message,
    )
    return testkit.git(project, "rev-parse", "HEAD").strip()


def cli_env(project: Path) -> dict[str, str]:
    """Environment for subprocesses run in a project: our venv's tools first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "MLFLOW_"))}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["GOVERNANCE_PROJECT"] = str(project)
    return env


# -- corrupted raw data: each case and the failed expectation its message must name ----------


def _hmda_frame() -> pd.DataFrame:
    spec = load_spec("hmda")
    return read_source(spec.source).rename(columns=spec.rename)


def _drop_column(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["pirat"])


def _null_target(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[:3], "deny"] = None
    return df


def _ratio_out_of_range(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[5], "pirat"] = 7.5
    return df


def _unknown_category(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[7], "afam"] = "maybe"
    return df


def _duplicate_ids(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[df.index[1], "application_id"] = df.loc[df.index[0], "application_id"]
    return df


def _wrong_type(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy().astype({"lvrat": object})
    df.loc[df.index[2], "lvrat"] = "high"
    return df


CORRUPTIONS = {
    "missing column": (_drop_column, "expect_table_columns_to_match_set"),
    "null target": (_null_target, "expect_column_values_to_not_be_null(deny)"),
    "ratio out of range": (_ratio_out_of_range, "expect_column_values_to_be_between(pirat)"),
    "unknown category": (_unknown_category, "expect_column_values_to_be_in_set(afam)"),
    "duplicated ids": (_duplicate_ids, "expect_column_values_to_be_unique(application_id)"),
    "wrong type": (_wrong_type, "expect_column_values_to_be_in_type_list(lvrat)"),
}


def write_corrupted_source(project: Path, corrupt: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = corrupt(_hmda_frame())
    frame.to_csv(project / "sources" / "applications.csv", index=False)
    set_params(project, **{"ingest.source": "sources/applications.csv"})


def check_event_log(
    settings: Settings, model: str, version: str, *, via: str, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Every event of the OpenLineage log reads back against the client's schema classes, every
    stage has a START and a COMPLETE by ``via``, and the log alone rebuilds the chain data md5
    -> stage -> model version, with the md5s the registry recorded. Returns the chain."""
    from governance.core import openlineage as ol
    from governance.core.provenance import stage_records
    from governance.lifecycle.provenance import read_event_log
    from governance.registry import mlflow as registry

    events = read_event_log(settings.openlineage_log)
    for event in events:
        ol.parse_event(event)
    done = {
        e["job"]["name"]
        for e in events
        if e["eventType"] == "COMPLETE" and e["run"]["facets"]["governance"]["via"] == via
    }
    assert done == set(stages.STAGES), done
    chain = stage_records(
        events,
        namespace=settings.mlflow_uri,
        model=model,
        version=version,
        root=str(settings.project_dir),
    )
    assert {c["stage"] for c in chain} == set(stages.STAGES)
    lineage = registry.resolve(settings, model, version)
    recorded = {d["path"]: d["md5"] for d in lineage["datasets"]}
    written = {o["path"]: o["md5"] for c in chain for o in c["outputs"]}
    assert {p: written[p] for p in recorded} == recorded
    register = next(c for c in chain if c["stage"] == "register")
    assert register["writes"] == ["model"] and register["via"] == via
    if run_id is not None:
        complete = [
            e
            for e in events
            if e["eventType"] == "COMPLETE" and e["run"]["runId"] == register["run_id"]
        ]
        assert complete[0]["run"]["facets"]["governance"]["dagsterRunId"] == run_id
    return chain


def subjects_per_shard(ledger: Any, per_shard: int, prefix: str = "applicant-") -> list[str]:
    """Subject ids, ``per_shard`` routed to each shard of a sharded ledger, shard by shard.

    Routing keys are HMACs under the home's own key, so fixed ids land in random shards; a
    test that needs every shard populated picks its subjects with this.
    """
    k = len(ledger.shards)
    chosen: dict[int, list[str]] = {i: [] for i in range(k)}
    n = 0
    while any(len(got) < per_shard for got in chosen.values()):
        name = f"{prefix}{n}"
        n += 1
        got = chosen[ledger.shard_for_subject(ledger.subject_key(name))]
        if len(got) < per_shard:
            got.append(name)
    return [name for i in range(k) for name in chosen[i]]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """One ``governance serve --model MODEL --alias ALIAS`` process on a project's ledger."""

    STARTUP_SECONDS = 120.0

    def __init__(self, root: Path, model: str, alias: str, ledger_url: str | None = None) -> None:
        self.port = free_port()
        env = cli_env(root)
        if ledger_url:
            env["GOVERNANCE_LEDGER_URL"] = ledger_url
        self.proc = subprocess.Popen(
            [
                str(REPO / ".venv/bin/governance"),
                *("serve", "--model", model, "--alias", alias, "--port", str(self.port)),
            ],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)  # polling for readiness, not ordering anything under test
        raise AssertionError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def count_appends(ledger: Any, monkeypatch: Any) -> list[int]:
    """Make ``ledger.append_many`` note how many entries each call appends (the calls are
    still made); return the list it fills."""
    appends: list[int] = []
    original = ledger.append_many

    def counted(entries: Any, **kw: Any) -> Any:
        entries = list(entries)
        appends.append(len(entries))
        return original(entries, **kw)

    monkeypatch.setattr(ledger, "append_many", counted)
    return appends
