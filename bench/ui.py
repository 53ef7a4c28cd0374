"""6. The decision explorer at 1,000,000 decisions: page loads over HTTP.

``governance serve`` (one uvicorn worker on 127.0.0.1, the explorer mounted under ``/ui``) on a
SQLite ledger of 1,000,000 decisions, filled with ``Ledger.append_many`` batches of 10,000
real-shaped decision bodies (subject ``str(seq + 1)`` at ``seq``, as the ``audit`` benchmark
does), with one signed checkpoint covering every record. An auditor signs in through the form;
each page is then fetched whole (status 200, body read) on one keep-alive connection, and the
time from request to last byte is recorded.

Pages measured, each on random targets drawn with a fixed seed:

* search, first page (no filter), and paged: 50 decisions from a random offset;
* search by subject, by model + version (random offset) and by a one-minute time range;
* search by model + version reaching the same pages by key (``after=SEQ``, the link the
  explorer's "next page" follows), which must be as fast deep in the ledger as at its start;
* search by effective outcome (``deny``, from a random offset: each decision's reviews are read);
* a decision page (inputs, reasons, chart, events, lineage chain, inclusion proof verified by
  the server) for a random decision;
* the model page (card, alias history, monitoring) and the integrity page (last result).

Reported on their own: the first decision page after the server starts (the explorer starts
building the ledger's Merkle tree in the background at sign-in, so that page shows its proof as
being prepared instead of waiting), the time from sign-in until the first inclusion proof is
shown (the tree walk checks every record once; later proofs only extend it), and the first
search by model + version, at its last page (the store walks the filter's index once to find
its offset marks; later pages at any offset walk from the nearest mark). Baselines, same
server, same run: the JSON API's ``GET /v1/decisions`` (same offsets) and
``GET /v1/decisions/{id}/trace``.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import Budget, Row, log, percentile
from bench.http import Server, free_port
from bench.loadgen import HOST
from bench.project import Context, decision_seqs, subprocess_env

NAME = "ui"
TITLE = "Decision explorer at scale: page loads over HTTP, to the last byte"
PAGE_GOAL_MS = 1000.0
LIMIT = 50
PAGES = (
    ("search-first", "search, first page, no filter"),
    ("search-paged", f"search, {LIMIT} decisions from a random offset"),
    ("search-subject", "search by subject"),
    ("search-model", "search by model + version, random offset"),
    ("search-model-key", "search by model + version, paged by key (after=SEQ) from a random place"),
    ("search-time", "search by a one-minute time range"),
    ("search-outcome", "search by effective outcome 'deny', random offset"),
    ("decision", "decision page (lineage, chart, proof checked by the server)"),
    ("model", "model page (card, alias history, monitoring)"),
    ("integrity", "integrity page (checkpoint, last verify result)"),
    ("api-find", f"JSON API GET /v1/decisions, {LIMIT} from a random offset"),
    ("api-trace", "JSON API GET /v1/decisions/{id}/trace"),
)
BASELINES = {"search-paged": "api-find", "decision": "api-trace"}
KEY_GOAL_MS = 50.0  # issue 12: search by model + version as fast deep in the ledger as at 0
KEY_GOAL_KINDS = ("search-model", "search-model-key")  # at a random offset, and by key


def sizes(ctx: Context) -> dict[str, Any]:
    if ctx.quick:
        return {"records": 20_000, "samples": 20, "repeats": 2, "seconds": 60}
    return {"records": 1_000_000, "samples": 40, "repeats": 2, "seconds": 90}


def build_ledger(ctx: Context, n: int) -> dict[str, Any]:
    """A fresh SQLite ledger of ``n`` decisions (subject ``str(seq + 1)``) and a checkpoint."""
    from governance.ledger import Entry, Ledger

    path = ctx.path("ui/ledger.db")
    settings = ctx.settings(f"sqlite:///{path}")
    bodies = [json.loads(data)["body"] for data in ctx.sample_records]
    for b in bodies:
        b.pop("subject_key", None)
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        for start in range(0, n, 10_000):
            ledger.append_many(
                Entry("decision", bodies[i % len(bodies)], subject_id=str(i + 1))
                for i in range(start, min(start + 10_000, n))
            )
        ledger.checkpoint()
    return {"path": str(path), "url": settings.ledger_url, "records": n}


class Browser:
    """One keep-alive connection holding the explorer's session cookie."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self.cookie = ""
        self.headers: dict[str, str] = {}

    def sign_in(self, key: str) -> None:
        body = urlencode({"key": key, "next": "/ui/decisions"})
        self.conn.request(
            "POST",
            "/ui/login",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        r = self.conn.getresponse()
        r.read()
        cookie = r.getheader("set-cookie") or ""
        if r.status != 303 or not cookie:
            raise RuntimeError(f"sign-in failed: HTTP {r.status}")
        self.cookie = cookie.split(";", 1)[0]
        self.headers["Cookie"] = self.cookie
        self.headers["Authorization"] = f"Bearer {key}"  # for the JSON API baselines

    def fetch(self, path: str) -> tuple[float, bytes]:
        """Fetch a page whole; return milliseconds to the last byte, and the page."""
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        elapsed = (time.perf_counter() - started) * 1000
        if r.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {r.status}: {data[:300]!r}")
        return elapsed, data

    def get(self, path: str) -> float:
        """Fetch a page whole; return milliseconds to the last byte."""
        return self.fetch(path)[0]

    def close(self) -> None:
        self.conn.close()


def _targets(
    ledger: Any, decided: list[int], count: int, rng: random.Random
) -> dict[str, list[str]]:
    """``count`` random request paths per page kind (``decided``: the decisions' seqs)."""
    from datetime import datetime, timedelta

    n = len(decided)
    ks = [rng.randrange(n) for _ in range(count)]
    records = [ledger.get_seq(decided[k]) for k in ks]
    ids = [r.id for r in records if r is not None]
    model = records[0].body["model"]
    offsets = [rng.randrange(max(1, n - LIMIT)) for _ in range(count)]
    windows = []
    for r in records:
        if r is None:
            continue
        since = datetime.fromisoformat(r.ts.replace("Z", "+00:00"))
        until = since + timedelta(minutes=1)
        windows.append(urlencode({"since": since.isoformat(), "until": until.isoformat()}))
    by_model = urlencode({"model": model["name"], "version": model["version"]})
    return {
        "search-first": ["/ui/decisions"] * count,
        "search-paged": [f"/ui/decisions?offset={o}" for o in offsets],
        "search-subject": [f"/ui/decisions?subject_id={k + 1}" for k in ks],
        "search-model": [f"/ui/decisions?{by_model}&offset={o}" for o in offsets],
        "search-model-last": [f"/ui/decisions?{by_model}&offset={max(0, n - LIMIT)}"],
        # the same pages reached by key: the decisions after the one just before offset o
        "search-model-key": [
            f"/ui/decisions?{by_model}" + (f"&after={decided[o - 1]}" if o else "") for o in offsets
        ],
        "search-time": [f"/ui/decisions?{w}" for w in windows],
        "search-outcome": [f"/ui/decisions?outcome=deny&offset={o}" for o in offsets],
        "decision": [f"/ui/decisions/{i}" for i in ids],
        "model": [f"/ui/models/{model['name']}/versions/{model['version']}"] * count,
        "integrity": ["/ui/integrity"] * count,
        "api-find": [f"/v1/decisions?limit={LIMIT}&offset={o}" for o in offsets],
        "api-trace": [f"/v1/decisions/{i}/trace" for i in ids],
    }


def run(ctx: Context) -> list[Row]:
    from governance.decisions.service import DecisionService
    from governance.service.auth import KeyStore

    s = sizes(ctx)
    n = s["records"]
    big = ctx.shared.get("big_ledger")
    if big and big.get("records") == n:
        log(f"ui: using the batch benchmark's {n:,}-record ledger (signing a checkpoint)")
        with DecisionService.open(ctx.settings(big["url"])) as svc:
            svc.ledger.checkpoint()
    else:
        log(f"ui: building a {n:,}-record ledger with append_many")
        t = time.perf_counter()
        big = build_ledger(ctx, n)
        log(f"ui: built in {time.perf_counter() - t:.1f} s")
    settings = ctx.settings(big["url"])
    key = KeyStore.for_home(settings.home).create(f"bench-ui-{uuid.uuid4().hex[:10]}", "auditor")
    rng = random.Random(6)
    with DecisionService.open(settings) as svc:
        decided = decision_seqs(big["path"])  # the k-th decision has subject str(k + 1)
        if len(decided) != n:
            raise AssertionError(f"the ledger holds {len(decided)} decisions, expected {n}")
        plans = [_targets(svc.ledger, decided, s["samples"], rng) for _ in range(s["repeats"])]
    port = free_port()
    env = subprocess_env(ctx.root, GOVERNANCE_LEDGER_URL=big["url"])
    cmd = [
        str(Path(sys.executable).parent / "governance"),
        "serve",
        "--project",
        str(ctx.root),
        "--host",
        HOST,
        "--port",
        str(port),
        "--model",
        ctx.model,
        "--alias",
        ctx.alias,
    ]
    server = Server("governance serve (explorer)", cmd, env, port, "/healthz", ctx.path("ui/s.log"))
    server.start()
    lat: dict[str, list[tuple[float, float]]] = {k: [] for k, _ in PAGES}
    cold: dict[str, float] = {}
    try:
        browser = Browser(port)
        signed_in = time.perf_counter()
        browser.sign_in(key)  # starts the Merkle tree walk in the background
        first = plans[0]
        cold["decision"], page = browser.fetch(first["decision"][0])
        while b"verified by the server" not in page:
            if time.perf_counter() - signed_in > 300:
                raise RuntimeError("the inclusion proof was not ready 300 s after sign-in")
            time.sleep(0.1)
            page = browser.fetch(first["decision"][0])[1]
        cold["proof_ready"] = (time.perf_counter() - signed_in) * 1000
        cold["model"] = browser.get(first["model"][0])
        cold["integrity"] = browser.get(first["integrity"][0])  # runs verify() once
        cold["search_model"] = browser.get(first["search-model-last"][0])  # finds the marks
        log(
            "ui: first decision page {decision:.0f} ms, its inclusion proof ready"
            " {proof_ready:.0f} ms after sign-in (Merkle tree built in the background),"
            " first model page {model:.0f} ms, first integrity page {integrity:.0f} ms"
            " (runs verify), first search by model + version at its last page"
            " {search_model:.0f} ms (finds the offset marks)".format(**cold)
        )
        for r in Budget(s["repeats"], seconds=s["seconds"]):
            plan = plans[r]
            for kind, _ in PAGES:  # kinds in turn, so drift affects them alike
                times = [browser.get(path) for path in plan[kind]]
                lat[kind].append((percentile(times, 50), percentile(times, 99)))
            log("ui: " + ", ".join(f"{k} p50 {v[-1][0]:.1f} ms" for k, v in lat.items() if v))
        browser.close()
    finally:
        server.stop()
    return _rows(n, s["samples"], lat, cold)


def _rows(
    n: int,
    samples: int,
    lat: dict[str, list[tuple[float, float]]],
    cold: dict[str, float],
) -> list[Row]:
    label = f"{n:,} decisions"
    goal = (f"≤ {PAGE_GOAL_MS:.0f} ms", "value", PAGE_GOAL_MS)
    rows: list[Row] = []
    pick: dict[str, Callable[[tuple[float, float]], float]] = {
        "p50": lambda t: t[0],
        "p99": lambda t: t[1],
    }
    for kind, words in PAGES:
        api = kind.startswith("api-")
        for q, get in pick.items():
            baseline = BASELINES.get(kind)
            rows.append(
                Row(
                    NAME,
                    f"{kind}-{q}",
                    f"{'baseline' if api else 'ours'}: {words}, {q} of {samples}, {label}",
                    "ms",
                    [get(t) for t in lat[kind]],
                    baseline=f"{baseline}-{q}" if baseline else None,
                    goal=None
                    if api
                    else (f"≤ {KEY_GOAL_MS:.0f} ms", "value", KEY_GOAL_MS)
                    if kind in KEY_GOAL_KINDS
                    else goal,
                    is_baseline=api,
                )
            )
    rows.append(
        Row(
            NAME,
            "decision-first",
            "ours: first decision page after start and sign-in (proof still being prepared)",
            "ms",
            [cold["decision"]],
            goal=goal,
        )
    )
    rows.append(
        Row(
            NAME,
            "search-model-first",
            "ours: first search by model + version after start, at its last page"
            " (walks the index once to find the offset marks)",
            "ms",
            [cold["search_model"]],
            goal=goal,
        )
    )
    rows.append(
        Row(
            NAME,
            "proof-ready",
            f"ours: sign-in to first inclusion proof shown (Merkle tree of {label}, background)",
            "ms",
            [cold["proof_ready"]],
            extra={"model_first_ms": cold["model"], "integrity_first_ms": cold["integrity"]},
        )
    )
    return rows
