"""The HTTP service on a sharded ledger (``shards=3`` in the URL, real PostgreSQL).

Every route a caller or an auditor uses works the same as on one chain: decisions land in
their subject's shard, reads find them there, the explorer's search merges the shards, one
checkpoint commits to every shard, and verify walks them
all and names the shard an insider changed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fakes import REPO, FakeRegistry, trained_model
from fastapi.testclient import TestClient
from support import subjects_per_shard

from governance.decisions.service import DecisionService
from governance.ledger.shards import ShardedLedger, open_ledger, shard_schema
from governance.service import KeyStore, create_app
from governance.settings import Settings

from .conftest import ALIAS, MODEL

pytestmark = pytest.mark.postgres

SERVER = os.environ.get("GOVERNANCE_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
K = 3


def _unavailable() -> str | None:
    try:
        psycopg.connect(SERVER, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        name = exc.__class__.__name__
        return f"no PostgreSQL server at {SERVER} ({name}); set GOVERNANCE_TEST_PG_URL"
    return None


class Scene:
    def __init__(self, root: Path, url: str, schema: str) -> None:
        self.root, self.url, self.schema = root, url, schema
        self.settings = Settings.resolve(root, env={"GOVERNANCE_LEDGER_URL": url})
        self.settings.home.mkdir(parents=True, exist_ok=True)
        trained = trained_model()
        models = FakeRegistry()
        models.register(trained.model, ALIAS)
        ledger = open_ledger(url, home=self.settings.home)
        assert isinstance(ledger, ShardedLedger)
        self.ledger = ledger
        self.service = DecisionService(self.settings, ledger, models)  # type: ignore[arg-type]  # duck-typed Ledger
        keys = KeyStore.for_home(self.settings.home)
        self.tokens = {
            role: keys.create(f"{role}-1", role) for role in ("scorer", "auditor", "admin")
        }
        scorecard = self.service.model(MODEL, alias=ALIAS)[0].scorecard
        test = trained.test.head(20)
        self.rows = [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in test[list(scorecard.order)].to_dict(orient="records")
        ]
        self.app = create_app(self.service, keys, default_model=MODEL, default_alias=ALIAS)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def insider(self, statement: str) -> None:
        """As the owner, with every shard's append-only triggers off."""
        with psycopg.connect(SERVER, autocommit=True) as pg, pg.transaction():
            schemas = [shard_schema(self.schema, i) for i in range(K)]
            for s in schemas:
                pg.execute(f"ALTER TABLE {s}.records DISABLE TRIGGER USER".encode())
            pg.execute(statement.encode())
            for s in schemas:
                pg.execute(f"ALTER TABLE {s}.records ENABLE TRIGGER USER".encode())


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    schema = f"gl_sharded_api_{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in SERVER else "?"
    made = Scene(tmp_path, f"{SERVER}{sep}schema={schema}&shards={K}", schema)
    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    try:
        yield made
    finally:
        made.service.close()
        with psycopg.connect(SERVER, autocommit=True) as pg:
            for i in range(K):
                pg.execute(f"DROP SCHEMA IF EXISTS {shard_schema(schema, i)} CASCADE".encode())


def test_the_service_on_a_sharded_ledger(scene: Scene) -> None:
    with TestClient(scene.app) as client:
        ids: dict[str, str] = {}
        answered: dict[str, dict[str, Any]] = {}
        for subject, row in zip(subjects_per_shard(scene.ledger, 4), scene.rows[:12], strict=True):
            r = client.post(
                "/v1/decisions",
                json={"model": MODEL, "alias": ALIAS, "subject_id": subject, "features": row},
                headers=scene.auth("scorer"),
            )
            assert r.status_code == 201, r.text
            ids[subject] = r.json()["decision_id"]
            answered[subject] = r.json()["ledger"]
        r = client.post(
            "/v1/decisions:batch",
            json={
                "model": MODEL,
                "alias": ALIAS,
                "applications": [{"subject_id": next(iter(ids)), "features": scene.rows[12]}],
            },
            headers=scene.auth("scorer"),
        )
        assert r.status_code == 201, r.text

        # every subject's records are in its one shard, and the decisions spread over all
        placed = {s: scene.ledger.shard_of(i) for s, i in ids.items()}
        for s, shard in placed.items():
            assert shard == scene.ledger.shard_for_subject(scene.ledger.subject_key(s))
        assert set(placed.values()) == set(range(K))
        for s, where in answered.items():  # the answer names the shard its seq counts in
            record = scene.ledger.get(ids[s])
            assert record is not None and where["shard"] == placed[s]
            assert (where["seq"], where["hash"]) == (record.seq, record.hash)

        subject = next(iter(ids))
        decision_id = ids[subject]
        r = client.get(f"/v1/decisions/{decision_id}", headers=scene.auth("auditor"))
        assert r.status_code == 200 and r.json()["id"] == decision_id, r.text
        r = client.post(
            f"/v1/decisions/{decision_id}/outcome",
            json={"observed": "deny"},
            headers=scene.auth("scorer"),
        )
        assert r.status_code in (200, 201), r.text
        assert scene.ledger.shard_of(r.json()["event_id"]) == placed[subject]
        assert r.json()["ledger"]["shard"] == placed[subject]
        r = client.get(f"/v1/subjects/{subject}/report", headers=scene.auth("auditor"))
        assert r.status_code == 200, r.text
        assert len(r.json()["decisions"]) == 2

        r = client.get(
            "/v1/decisions", params={"model": MODEL, "limit": 5}, headers=scene.auth("auditor")
        )
        assert r.status_code == 200, r.text
        found = r.json()["decisions"]
        assert len(found) == 5
        r = client.get(
            "/v1/decisions", params={"model": MODEL, "limit": 100}, headers=scene.auth("auditor")
        )
        assert len(r.json()["decisions"]) == 13
        # a hostile caller's NUL finds nothing: PostgreSQL's text cannot hold one, and its
        # driver's DataError was a 500
        auditor = scene.auth("auditor")
        r = client.get("/v1/decisions", params={"model": f"{MODEL}\x00"}, headers=auditor)
        assert r.status_code == 200 and r.json()["count"] == 0, r.text
        r = client.get(
            "/v1/decisions", params={"model": MODEL, "version": "1\x00"}, headers=auditor
        )
        assert r.status_code == 200 and r.json()["count"] == 0, r.text
        for path in ("", "/trace", "/proof", "/recourse"):
            r = client.get(f"/v1/decisions/{decision_id}%00{path}", headers=auditor)
            assert r.status_code == 404, (path, r.text)

        r = client.post("/v1/ledger/checkpoints", headers=scene.auth("admin"))
        assert r.status_code == 201, r.text
        assert r.json()["size"] == scene.ledger.size()  # the control shard's: the one to witness
        r = client.get(f"/v1/decisions/{decision_id}/proof", headers=scene.auth("auditor"))
        assert r.status_code == 200, r.text
        r = client.get("/v1/ledger/verify", headers=scene.auth("auditor"))
        assert r.status_code == 200 and r.json()["ok"] is True, r.text
        assert r.json()["records"] == scene.ledger.total()

    # an insider rewrites one decision in its shard: verify names the shard and the record
    shard = placed[subject]
    record = scene.ledger.get(decision_id)
    assert record is not None
    scene.insider(
        f"UPDATE {shard_schema(scene.schema, shard)}.records"
        f" SET data = overlay(data placing '\\x7a'::bytea from 30 for 1) WHERE seq = {record.seq}"
    )
    result = scene.ledger.verify()
    assert result.ok is False and result.first_bad == record.seq
    assert result.reason is not None and result.reason.startswith(f"shard {shard} ("), result
