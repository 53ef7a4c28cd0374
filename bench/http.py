"""3. HTTP: ``governance serve`` against ``mlflow models serve`` on the same registered model.

Both serve ``mortgage-denial`` version 1 of the benchmark project with one uvicorn worker on
127.0.0.1; both get the same request bytes (MLflow's ``dataframe_split`` with one application,
plus our ``Authorization: Bearer`` scorer key, which MLflow ignores) from the same load
generator, at 1 and at 8 concurrent keep-alive connections, in interleaved runs bounded in time
and count. Ours writes every decision to its ledger before answering; the row records, per run,
the ledger records written against the requests answered. ``mlflow models serve`` logs nothing.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Budget, Row, log
from bench.loadgen import HOST, LoadResult, python_load, wrk_available, wrk_load
from bench.project import Context, subprocess_env

NAME = "http"
TITLE = "HTTP /invocations, one application per request: ours vs mlflow models serve"
CONCURRENCY = (1, 8)
GOAL_RATIO = {1: 5.0, 8: 10.0}  # times mlflow models serve, requests/s (issue 12)


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"seconds": 0.6, "repeats": 2, "warmup": 0.2, "max_requests": 20_000}
    return {"seconds": 3.0, "repeats": 3, "warmup": 1.0, "max_requests": 200_000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


class Server:
    """A server process in its own session (so it and its children stop together)."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, ready: str, log_path: Path
    ) -> None:
        self.name, self.cmd, self.env, self.port, self.ready = name, cmd, env, port, ready
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n"
                    f"{self.log_path.read_text()[-3000:]}"
                )
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", self.ready)
                if c.getresponse().status == 200:
                    c.close()
                    return
                c.close()
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.ready} within {timeout:.0f} s")

    def worker_pid(self) -> int | None:
        """The process that runs the Python server (ours: itself; MLflow: its uvicorn child)."""
        if self.proc is None:
            return None
        todo, seen = [self.proc.pid], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo += _children(pid)
        for pid in reversed(seen):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"uvicorn" in cmdline or b"serve" in cmdline:
                return pid
        return self.proc.pid

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        c = http.client.HTTPConnection(HOST, self.port, timeout=30)
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
            except ProcessLookupError:
                pass
        self.log_file.close()
        self.proc = None


def _body(ctx: Context) -> bytes:
    test = ctx.root / "data" / "split" / "test.csv"
    import pandas as pd

    row = pd.read_csv(test).iloc[0]
    values = [row[c].item() if hasattr(row[c], "item") else row[c] for c in ctx.features]
    return json.dumps(
        {"dataframe_split": {"columns": list(ctx.features), "data": [values]}}
    ).encode()


def _pyspy() -> str | None:
    """py-spy: as configured, else on ``PATH``, else beside this interpreter (an unactivated
    virtual environment's ``bin``)."""
    beside = Path(sys.executable).parent / "py-spy"
    return (
        os.environ.get("GOVERNANCE_BENCH_PYSPY")
        or shutil.which("py-spy")
        or (str(beside) if os.access(beside, os.X_OK) else None)
    )


def run(ctx: Context) -> list[Row]:
    from governance.ledger import Ledger
    from governance.service.auth import KeyStore

    s = sizes(ctx)
    settings = ctx.settings()
    key = KeyStore.for_home(settings.home).create(f"bench-{os.getpid()}-{time.time_ns()}", "scorer")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    body = _body(ctx)
    generator = ctx.loadgen
    if generator == "auto":
        generator = "wrk" if wrk_available() else "python"
    log(f"http: load generator {generator}")

    def load(port: int, connections: int, seconds: float) -> LoadResult:
        if generator == "wrk":
            return wrk_load(
                port, "/invocations", body, headers, connections=connections, seconds=seconds
            )
        return python_load(
            port,
            "/invocations",
            body,
            headers,
            connections=connections,
            seconds=seconds,
            max_requests=s["max_requests"],
        )

    env = subprocess_env(ctx.root)
    ours_port, mlflow_port = free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    ours = Server(
        "governance serve",
        [
            str(bin_dir / "governance"),
            "serve",
            "--project",
            str(ctx.root),
            "--host",
            HOST,
            "--port",
            str(ours_port),
            "--model",
            ctx.model,
            "--alias",
            ctx.alias,
        ],
        env,
        ours_port,
        "/healthz",
        ctx.path("http/ours.log"),
    )
    # The baseline is MLflow's server as teams run it today, logging nothing: the registered
    # pyfunc records every prediction unless told not to, so tell it.
    mlflow_env = {
        **env,
        "MLFLOW_TRACKING_URI": settings.mlflow_uri,
        "GOVERNANCE_PYFUNC_LEDGER": "off",
    }
    mlflow = Server(
        "mlflow models serve",
        [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{ctx.model}/1",
            "--env-manager",
            "local",
            "-h",
            HOST,
            "-p",
            str(mlflow_port),
        ],
        mlflow_env,
        mlflow_port,
        "/ping",
        ctx.path("http/mlflow.log"),
    )
    ledger = Ledger.open(settings.ledger_url, home=settings.home)
    results: dict[tuple[str, int], list[LoadResult]] = {}
    checks: dict[int, list[dict[str, int]]] = {}
    try:
        log("http: starting both servers")
        ours.start()
        mlflow.start()
        status, answer = ours.post("/invocations", body, headers)
        if status != 200 or len(answer.get("decision_ids", [])) != 1:
            raise RuntimeError(f"ours answered {status}: {answer}")
        status, answer = mlflow.post("/invocations", body, headers)
        if status != 200 or "predictions" not in answer:
            raise RuntimeError(f"mlflow models serve answered {status}: {answer}")
        for c in CONCURRENCY:
            load(mlflow_port, c, s["warmup"])
            load(ours_port, c, s["warmup"])
            checks[c] = []
            for _ in Budget(s["repeats"], seconds=60 if not ctx.quick else 20):
                results.setdefault(("mlflow", c), []).append(load(mlflow_port, c, s["seconds"]))
                before = ledger.size()
                res = load(ours_port, c, s["seconds"])
                time.sleep(0.3)  # wrk may cut requests in flight: let the server finish them
                written = ledger.size() - before
                results.setdefault(("ours", c), []).append(res)
                checks[c].append(
                    {"answered": res.answered, "ledger_written": written, "failed": res.failed}
                )
                log(
                    f"http c={c}: mlflow {results[('mlflow', c)][-1].rps:,.0f}/s,"
                    f" ours {res.rps:,.0f}/s (ledger +{written}, answered {res.answered})"
                )
        if ctx.profile_dir is not None:
            _profile(ctx, ours, mlflow, load, ours_port, mlflow_port)
    finally:
        ours.stop()
        mlflow.stop()
        ledger.close()
    rows: list[Row] = []
    for c in CONCURRENCY:
        m, o = results[("mlflow", c)], results[("ours", c)]
        exact = generator == "python"
        ok = all(
            (x["ledger_written"] == x["answered"])
            if exact
            else (x["answered"] <= x["ledger_written"] <= x["answered"] + c)
            for x in checks[c]
        )
        written = sum(x["ledger_written"] for x in checks[c])
        answered = sum(x["answered"] for x in checks[c])
        note = f"ledger +{written:,} for {answered:,} answered" + (
            "" if exact else f" (wrk cuts ≤ {c} in flight per run)"
        )
        common = {"generator": generator, "connections": c}
        rows += [
            Row(
                NAME,
                f"mlflow-c{c}",
                f"mlflow models serve, {c} conn., requests/s",
                "/s",
                [r.rps for r in m],
                is_baseline=True,
                extra={**common, "failed": sum(r.failed for r in m)},
            ),
            Row(
                NAME,
                f"ours-c{c}",
                f"ours (governance serve, ledger), {c} conn., requests/s; {note}",
                "/s",
                [r.rps for r in o],
                baseline=f"mlflow-c{c}",
                goal=(f"≥ {GOAL_RATIO[c]:.0f}× mlflow models serve", "ratio", GOAL_RATIO[c]),
                extra={
                    **common,
                    "ledger_check": checks[c],
                    "ledger_equals_answered": ok,
                    "failed": sum(r.failed for r in o),
                },
            ),
            Row(
                NAME,
                f"mlflow-c{c}-p50",
                f"mlflow models serve, {c} conn., p50",
                "ms",
                [r.p50_ms for r in m],
                is_baseline=True,
                extra=common,
            ),
            Row(
                NAME,
                f"ours-c{c}-p50",
                f"ours, {c} conn., p50",
                "ms",
                [r.p50_ms for r in o],
                baseline=f"mlflow-c{c}-p50",
                extra=common,
            ),
            Row(
                NAME,
                f"mlflow-c{c}-p99",
                f"mlflow models serve, {c} conn., p99",
                "ms",
                [r.p99_ms for r in m],
                is_baseline=True,
                extra=common,
            ),
            Row(
                NAME,
                f"ours-c{c}-p99",
                f"ours, {c} conn., p99",
                "ms",
                [r.p99_ms for r in o],
                baseline=f"mlflow-c{c}-p50",
                also=[f"mlflow-c{c}-p99"],
                goal=("> 1× (our p99 below its p50)", "ratio", 1.0),
                extra=common,
            ),
        ]
    return rows


def _profile(
    ctx: Context, ours: Server, mlflow: Server, load: Any, ours_port: int, mlflow_port: int
) -> None:
    """Sample both servers with py-spy (if installed) during one extra 8-connection run."""
    spy = _pyspy()
    if spy is None or ctx.profile_dir is None:
        log("http: py-spy not found; servers not profiled")
        return
    for name, server, port in (("ours", ours, ours_port), ("mlflow", mlflow, mlflow_port)):
        pid = server.worker_pid()
        # wall-clock samples of every thread, then only the thread holding the GIL (CPU work)
        for mode, flags in (("wall", []), ("gil", ["--gil"])):
            out = ctx.profile_dir / f"http-{name}-c8-{mode}.txt"
            seconds = 4
            rec = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "-d",
                    str(seconds + 1),
                    "-r",
                    "250",
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "--nonblocking",
                    *flags,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            load(port, 8, seconds)
            rec.wait(timeout=60)
            log(f"http: py-spy profile ({mode}) of {name} in {out}")
