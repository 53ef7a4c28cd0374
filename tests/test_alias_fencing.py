"""Alias moves govern the very next decision, in every serving process, on both stores.

Two ``governance serve`` processes decide through ``champion`` (HTTP, four client threads)
while this process moves ``champion`` between versions 1 and 2 in a loop (promotions and
rollbacks, each a ledger event). Afterwards every decision's recorded version must be the
version the ledger's history names at that decision: by ``governance history --at <its time>``
and by ledger order. No sleep orders anything here: the fence in the append's transaction does.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psycopg
import pytest
from support import ServeProcess, build_trained_project

from governance.decisions.service import DecisionService
from governance.ledger import Ledger
from governance.lifecycle.promotion import MOVES, events, history, promote, rollback
from governance.pipeline import stages
from governance.pipeline.workspace import Workspace
from governance.service.auth import KeyStore
from governance.settings import Settings

MODEL = "mortgage-denial"
MIN_DECISIONS = 1_000
MIN_MOVES = 20
SERVERS = 2
CLIENTS_PER_SERVER = 2


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """A trained project with versions 1 and 2 of the model registered (both clean)."""
    root, settings = build_trained_project(tmp_path_factory.mktemp("fencing"))
    assert stages.register(Workspace.open(root, settings=settings)).evidence["version"]
    return root, settings


def _run(root: Path, settings: Settings, ledger_url: str | None) -> dict[str, Any]:
    """Decide under moves; return what was decided and the ledger's history."""
    token = KeyStore.for_home(settings.home).create(f"fencing-{uuid.uuid4().hex[:8]}", "scorer")
    row = pd.read_csv(root / "data/split/test.csv").head(1)
    features = {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in row.drop(columns=["application_id", "deny", "afam", "single"]).iloc[0].items()
    }
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        promote(settings, ledger, MODEL, "1", approver="ann", reason="baseline")
    servers = [ServeProcess(root, MODEL, "champion", ledger_url) for _ in range(SERVERS)]
    decided: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                answer = http.post(
                    "/v1/decisions",
                    json={"features": features, "subject_id": "fence", "purpose": "fencing"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if answer.status_code != 201:
                    errors.append(answer.text)
                    return
                decided.append(answer.json()["decision_id"])

    try:
        for s in servers:
            s.wait_ready()
        threads = [
            threading.Thread(target=client, args=(s.url,))
            for s in servers
            for _ in range(CLIENTS_PER_SERVER)
        ]
        for t in threads:
            t.start()
        moves = 0
        with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
            while (moves < MIN_MOVES or len(decided) < MIN_DECISIONS) and not errors:
                if moves % 3 == 2:
                    rollback(settings, ledger, MODEL, approver="ann", reason=f"undo {moves}")
                else:
                    target = "2" if history(ledger, MODEL, at=_now())["version"] == "1" else "1"
                    promote(settings, ledger, MODEL, target, approver="ann", reason=f"m{moves}")
                moves += 1
            # a rollback followed immediately by a decision: decided by the rolled-back-to
            before = history(ledger, MODEL, at=_now())["version"]
            back = rollback(settings, ledger, MODEL, approver="ann", reason="immediate")
            stop.set()
            for t in threads:
                t.join()
            assert not errors, errors[:3]
            answer = httpx.post(
                f"{servers[0].url}/v1/decisions",
                json={"features": features, "subject_id": "fence"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ).json()
            return {
                "moves": moves + 1,
                "decided": decided,
                "immediate": (before, back["version"], answer["model"]["version"]),
                "events": events(ledger, MODEL, alias="champion"),
                "records": {d: ledger.get(d) for d in decided},
                "histories": {
                    d: history(ledger, MODEL, at=ledger.get(d).ts)["version"] for d in decided
                },
            }
    finally:
        stop.set()
        for s in servers:
            s.stop()


def _now() -> str:
    from governance.ledger import utc_now

    return utc_now()


def _check(result: dict[str, Any]) -> None:
    assert result["moves"] >= MIN_MOVES and len(result["decided"]) >= MIN_DECISIONS
    before, rolled_to, decided_by = result["immediate"]
    assert rolled_to != before and decided_by == rolled_to
    moves = [e for e in result["events"] if e["action"] in MOVES]
    by_time = by_seq = 0
    used = set()
    for decision_id, record in result["records"].items():
        version = record.body["model"]["version"]
        used.add(version)
        if result["histories"][decision_id] != version:
            by_time += 1
        held = [e["version"] for e in moves if e["seq"] < record.seq]
        if not held or held[-1] != version:
            by_seq += 1
    assert (by_time, by_seq) == (0, 0), f"{by_time} / {by_seq} of {len(result['records'])}"
    assert used == {"1", "2"}, "both versions decided: the moves really happened under load"


@pytest.mark.slow
def test_no_decision_is_made_by_a_version_the_alias_left_sqlite(
    two_versions: tuple[Path, Settings],
) -> None:
    root, settings = two_versions
    _check(_run(root, settings, None))


@pytest.mark.slow
@pytest.mark.postgres
def test_no_decision_is_made_by_a_version_the_alias_left_postgres(
    two_versions: tuple[Path, Settings], pg_ledger_url: str
) -> None:
    root, settings = two_versions
    _check(_run(root, replace(settings, ledger_url=pg_ledger_url), pg_ledger_url))


@pytest.fixture
def pg_ledger_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for the ledger (skips, saying why, without a server)."""
    url = os.environ.get("GOVERNANCE_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL server reachable at GOVERNANCE_TEST_PG_URL={url}: {exc}")
    schema = f"gl_fence_{uuid.uuid4().hex[:12]}"
    yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_a_decision_raced_by_a_move_is_redone_with_the_new_version(
    two_versions: tuple[Path, Settings],
) -> None:
    """In one process, deterministically: resolve, then a move lands, then the append."""
    root, settings = two_versions
    row = pd.read_csv(root / "data/split/test.csv").head(1)
    features = json.loads(
        row.drop(columns=["application_id", "deny", "afam", "single"]).iloc[0].to_json()
    )
    with (
        DecisionService.open(settings) as svc,
        Ledger.open(settings.ledger_url, home=settings.home) as other,
    ):
        promote(settings, other, MODEL, "1", approver="ann", reason="start")
        assert svc.decide(MODEL, features, alias="champion").model["version"] == "1"
        stale = svc.aliases.resolve(MODEL, "champion")  # this process still believes "1"
        assert stale.version == "1"
        promote(settings, other, MODEL, "2", approver="ann", reason="move")  # another process
        decision = svc.decide(MODEL, features, alias="champion")
        assert decision.model["version"] == "2"
        record = svc.ledger.get(decision.decision_id)
        assert history(svc.ledger, MODEL, at=record.ts)["version"] == "2"


def test_a_batch_through_a_moving_alias_drops_what_the_helper_built_for_the_old_version(
    two_versions: tuple[Path, Settings],
) -> None:
    """score_frame with its helper process: the move lands between two chunks, after the helper
    was asked for the next one under the old version; that chunk and the one after it (asked
    for before the fence refused) are built again by the new version, nothing is lost."""
    root, settings = two_versions
    frame = pd.read_csv(root / "data/split/test.csv").iloc[:40]
    with (
        DecisionService.open(settings) as svc,
        Ledger.open(settings.ledger_url, home=settings.home) as other,
    ):
        promote(settings, other, MODEL, "1", approver="ann", reason="start")
        versions: list[str] = []
        for done, receipts, _, _ in svc.score_frame(
            MODEL, frame, alias="champion", chunk=10, helper_rows=0
        ):
            versions += [svc.ledger.get(r.id).body["model"]["version"] for r in receipts]
            if done == 10:
                promote(settings, other, MODEL, "2", approver="ann", reason="move")
        assert versions == ["1"] * 10 + ["2"] * 30
        assert svc.ledger.verify().ok
