"""8. Witnessed checkpoints at 1,000,000 decisions: publishing, decisions/s, bundle verify.

Two witnesses run as separate processes (``governance witness serve`` on loopback ports), each
trusting the ledgers' keys (issue 9, acceptance 4).

* **Checkpoint with 2 witnesses**, on the ledger the ``batch`` benchmark filled with 1,000,000
  decisions (run alone: built like the ``audit`` benchmark's). Rounds alternate: append 100
  decisions, publish with no witnesses (the baseline: sign the tree head, store and export it,
  write the new tiles); append 100 more, publish to both witnesses (the same, plus a
  consistency proof from each witness's last size and its cosignature over HTTP). p50 / p99.
* **Decisions/s with witnessing on vs off**: ``DecisionService.decide`` at 1 thread and at N
  threads on a fresh SQLite ledger; *on* runs have ``governance audit checkpoint --every S``
  publishing to both witnesses in its own process for the whole measurement (every round
  checks that it published). Off and on runs alternate, off first in even repeats and on
  first in odd ones, so a drift of the machine's speed during the run does not favour one.
  The goal is no measurable difference: witnessing is never on a decision's path.
* **Verify a 1,000,000-decision bundle**: ``governance audit verify --bundle DIR --json`` (the
  command line, start-up included, asking both witnesses for their latest checkpoints) on a
  bundle of the same ledger, against reading the bundle's ``records.jsonl`` and hashing every
  record (sha256 leaf hash) with nothing else. Writing the bundle is shown too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Budget, Row, log, percentile, run_for
from bench.decisions import Decider
from bench.project import Context, subprocess_env

NAME = "witness"
TITLE = "Witnessed checkpoints: publishing to 2 witnesses, decisions/s on vs off, bundle verify"
GOVERNANCE = str(Path(sys.executable).parent / "governance")
WITNESSES = ("w1", "w2")
APPENDED = 100  # decisions between two checkpoints
ON_GOAL = 0.9  # decisions/s with witnessing on, as a fraction of off (no measurable difference)


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {
            "records": 20_000,
            "rounds": 10,
            "seconds": 0.5,
            "repeats": 2,
            "threads": 8,
            "every": 0.2,
        }
    return {
        "records": 1_000_000,
        "rounds": 30,
        "seconds": 2.0,
        "repeats": 3,
        "threads": 32,
        "every": 1.0,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WitnessProcess:
    """A witness home and ``governance witness serve`` on a loopback port."""

    def __init__(self, root: Path, name: str, log_vkeys: list[str]) -> None:
        from governance.witness import WitnessHome

        self.home = WitnessHome.init(root / name, f"bench.witness/{name}")
        for vkey in log_vkeys:
            self.home.add_log(vkey)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = root / f"{name}.log"
        home, port = str(self.home.path), str(self.port)
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [GOVERNANCE, "witness", "serve", "--quiet", "--home", home, "--port", port],
                stderr=err,
                stdout=subprocess.DEVNULL,
            )

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not re.search(r"listening on http://", self.stderr.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"witness did not start: {self.stderr.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _big_ledger(ctx: Context, n: int) -> dict[str, Any]:
    from bench.audit import build_ledger

    big = ctx.shared.get("big_ledger")
    if big and big.get("records") == n:
        log(f"witness: using the batch benchmark's {n:,}-decision ledger")
        return big
    log(f"witness: building a {n:,}-decision ledger with append_many")
    t = time.perf_counter()
    big = build_ledger(ctx, n)
    log(f"witness: built in {time.perf_counter() - t:.1f} s")
    return big


def _checkpoints(ledger: Any, config: Any, tiles: Path, bodies: list[Any], rounds: int) -> Any:
    """Alternate publishing without and with the witnesses; milliseconds of each."""
    from governance.ledger import Entry
    from governance.transparency import WitnessConfig, publish

    alone = WitnessConfig()
    times: dict[str, list[float]] = {"local": [], "2w": []}
    for r in range(2 * rounds):
        ledger.append_many(
            Entry("decision", bodies[(r + i) % len(bodies)]) for i in range(APPENDED)
        )
        which, cfg = ("local", alone) if r % 2 == 0 else ("2w", config)
        t = time.perf_counter()
        result = publish(ledger, cfg, tiles_dir=tiles)
        times[which].append((time.perf_counter() - t) * 1000)
        if not result.published or result.checkpoint.size != ledger.size():
            raise AssertionError(f"checkpoint round {r} not published: {result.errors}")
        if which == "2w" and len(result.cosignatures) != len(WITNESSES):
            raise AssertionError(f"checkpoint round {r}: cosigned by {result.cosignatures}")
    return times


class Checkpointer:
    """``governance audit checkpoint --every S --json`` in its own process, its rounds in a file."""

    def __init__(self, ctx: Context, home: Path, url: str, every: float, out: Path) -> None:
        self.out = out
        env = subprocess_env(ctx.root, GOVERNANCE_HOME=str(home), GOVERNANCE_LEDGER_URL=url)
        with out.open("wb") as fh:
            self.proc = subprocess.Popen(
                [GOVERNANCE, "audit", "checkpoint", "--every", str(every), "--json"],
                cwd=ctx.root,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while not self.rounds():  # started and published once: from now on it is "on"
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"the checkpointer did not start: {out.read_text()[-2000:]}")
            time.sleep(0.05)

    def rounds(self) -> list[dict[str, Any]]:
        complete = self.out.read_text().split("\n")[:-1]  # after the last newline: partial
        return [json.loads(x) for x in complete if x.startswith("{")]

    def stop(self) -> list[dict[str, Any]]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if code != 0:
            raise RuntimeError(f"the checkpointer exited {code}: {self.out.read_text()[-2000:]}")
        text = self.out.read_text().splitlines()
        return [json.loads(x) for x in text if x.startswith("{")]


def _decisions(
    ctx: Context, s: dict[str, Any], witnesses: list[WitnessProcess], vkey_of: Any
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Decisions/s, witnessing off and on, alternating."""
    from governance.decisions.service import DecisionService
    from governance.transparency import WitnessConfig

    home = ctx.path("witness/home")
    url = f"sqlite:///{ctx.path('witness/decisions.db')}"
    settings = dataclasses.replace(ctx.settings(url), home=home)
    runs: dict[str, list[float]] = {"off": [], "on": [], "off-n": [], "on-n": []}
    published: list[int] = []
    with DecisionService.open(settings) as svc:
        decider = Decider(ctx, svc)
        decider.one()  # load the model, create the ledger
        for w in witnesses:
            vkey = vkey_of(svc.ledger)
            w.home.add_log(vkey)  # the serving process reads its logs at each request
        config = WitnessConfig()
        for w in witnesses:
            config.add(w.url, w.home.vkey)
        config.quorum = len(witnesses)
        config.save(home / "witnesses.json")

        def measure(mode: str) -> None:
            runs[mode].append(run_for(s["seconds"], decider.one))
            runs[f"{mode}-n"].append(decider.threaded(s["threads"], s["seconds"]))

        for k in Budget(s["repeats"], seconds=120 if not ctx.quick else 30):
            # Off first in even repeats, on first in odd ones: the disk's latency drifts a lot
            # during a run (fsync p50 10 ms at the start, 0.16 ms at the end of one), and
            # always measuring off first turned that drift into a ratio (1.57x "on" in one
            # quick run, 0.86x in a 1M one).
            if k % 2 == 0:
                measure("off")
            out = ctx.path(f"witness/checkpointer-{k}.jsonl")
            checkpointer = Checkpointer(ctx, home, url, s["every"], out)
            try:
                started = len(checkpointer.rounds())
                measure("on")
            finally:
                rounds = checkpointer.stop()
            if k % 2 == 1:
                measure("off")
            during = [r for r in rounds[started:] if r["published"]]
            if not during:
                raise AssertionError("witnessing was on but no checkpoint was published meanwhile")
            published.append(len(during))
        size = svc.ledger.size()
    return runs, {"published_rounds_during_on_runs": published, "ledger_records": size}


def _raw_bundle(path: Path) -> float:
    import hashlib

    sha = hashlib.sha256
    start = time.perf_counter()
    with (path / "records.jsonl").open("rb") as fh:
        for line in fh:
            sha(b"\x00" + line[:-1]).digest()
    return time.perf_counter() - start


def _cli_verify_bundle(ctx: Context, bundle: Path, n: int) -> float:
    env = subprocess_env(ctx.root)
    start = time.perf_counter()
    proc = subprocess.run(
        [GOVERNANCE, "audit", "verify", "--bundle", str(bundle), "--json"],
        cwd=ctx.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    elapsed = time.perf_counter() - start
    doc = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or not doc.get("ok") or doc.get("records") != n:
        raise AssertionError(f"governance audit verify --bundle: {proc.stderr.strip()} {doc}")
    if len(doc.get("answered", [])) != len(WITNESSES):
        raise AssertionError(f"governance audit verify --bundle: witnesses {doc['witnesses']}")
    return elapsed


def run(ctx: Context) -> list[Row]:
    from governance.ledger import Ledger
    from governance.ledger.checkpoint import verifier_key
    from governance.transparency import WitnessConfig, publish, write_bundle

    def vkey_of(ledger: Any) -> str:
        return verifier_key(ledger.origin, ledger.public_key)

    s = sizes(ctx)
    n = s["records"]
    big = _big_ledger(ctx, n)
    settings = ctx.settings(big["url"])
    bodies = [json.loads(data)["body"] for data in ctx.sample_records]
    for b in bodies:
        b.pop("subject_key", None)
    root = ctx.path("witness/witnesses")
    root.mkdir()
    witnesses: list[WitnessProcess] = []
    bundle = ctx.path("witness/bundle")
    try:
        with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
            for name in WITNESSES:  # started together, then waited for
                witnesses.append(WitnessProcess(root, name, [vkey_of(ledger)]))
            for w in witnesses:
                w.wait_ready()
            config = WitnessConfig()
            for w in witnesses:
                config.add(w.url, w.home.vkey)
            config.quorum = len(witnesses)
            tiles = ctx.path("witness/tiles")
            log(f"witness: first publication of {ledger.size():,} records (tiles, not timed)")
            t = time.perf_counter()
            first = publish(ledger, config, tiles_dir=tiles)
            if not first.published:
                raise AssertionError(f"the first checkpoint was not published: {first.errors}")
            log(f"witness: first publication took {time.perf_counter() - t:.1f} s")
            times = _checkpoints(ledger, config, tiles, bodies, s["rounds"])
            log(
                "witness: checkpoint p50 {:.1f} ms alone, {:.1f} ms with 2 witnesses".format(
                    percentile(times["local"], 50), percentile(times["2w"], 50)
                )
            )
            t = time.perf_counter()
            summary = write_bundle(
                bundle,
                store=ledger.store,
                meta=ledger.store.meta(),
                public_key=ledger.public_key,
                folder=ledger.checkpoint_dir.path,
                config=config,
                tiles_dir=tiles,
            )
            write_s = time.perf_counter() - t
        raw_runs = [_raw_bundle(bundle)]
        verify_runs = [_cli_verify_bundle(ctx, bundle, summary.records)]
        log(
            f"witness: bundle verify {verify_runs[0]:.2f} s (raw read + sha256 {raw_runs[0]:.2f} s)"
        )
        decisions, checks = _decisions(ctx, s, witnesses, vkey_of)
    finally:
        for w in witnesses:
            w.stop()
        shutil.rmtree(bundle, ignore_errors=True)
    label = f"{n:,} decisions ({summary.records:,} records)"
    rounds = s["rounds"]
    threads = s["threads"]
    every = s["every"]
    on_goal = (f"≥ {ON_GOAL}× off (no measurable difference)", "ratio", ON_GOAL)
    on_extra = {**checks, "checkpoint_every_s": every}
    return [
        Row(
            NAME,
            "checkpoint-local-p50",
            f"checkpoint, no witnesses (sign + store + tiles), p50 of {rounds}, {label}",
            "ms",
            [percentile(times["local"], 50)],
            is_baseline=True,
        ),
        Row(
            NAME,
            "checkpoint-local-p99",
            f"checkpoint, no witnesses, p99 of {rounds}",
            "ms",
            [percentile(times["local"], 99)],
            is_baseline=True,
        ),
        Row(
            NAME,
            "checkpoint-2w-p50",
            f"checkpoint cosigned by 2 witnesses (separate processes), p50 of {rounds}, {label}",
            "ms",
            [percentile(times["2w"], 50)],
            baseline="checkpoint-local-p50",
            extra={"appended_between": APPENDED},
        ),
        Row(
            NAME,
            "checkpoint-2w-p99",
            f"checkpoint cosigned by 2 witnesses, p99 of {rounds}",
            "ms",
            [percentile(times["2w"], 99)],
            baseline="checkpoint-local-p99",
        ),
        Row(
            NAME,
            "decide-off",
            "decisions/s, 1 thread, witnessing off",
            "/s",
            decisions["off"],
            is_baseline=True,
        ),
        Row(
            NAME,
            "decide-on",
            f"decisions/s, 1 thread, witnessing on (checkpoint --every {every} s, 2 witnesses)",
            "/s",
            decisions["on"],
            baseline="decide-off",
            goal=on_goal,
            extra=on_extra,
        ),
        Row(
            NAME,
            "decide-off-threads",
            f"decisions/s, {threads} threads, witnessing off",
            "/s",
            decisions["off-n"],
            is_baseline=True,
        ),
        Row(
            NAME,
            "decide-on-threads",
            f"decisions/s, {threads} threads, witnessing on (every {every} s)",
            "/s",
            decisions["on-n"],
            baseline="decide-off-threads",
            goal=on_goal,
        ),
        Row(
            NAME,
            "bundle-raw",
            f"raw limit: read the bundle's records + sha256 each, {label}",
            "s",
            raw_runs,
            is_baseline=True,
        ),
        Row(
            NAME,
            "verify-bundle",
            f"governance audit verify --bundle (CLI, incl. start-up, 2 witnesses asked), {label}",
            "s",
            verify_runs,
            baseline="bundle-raw",
        ),
        Row(
            NAME,
            "bundle-write",
            f"governance audit bundle's write_bundle, {label}",
            "s",
            [write_s],
            baseline="bundle-raw",
        ),
    ]
