"""Fixtures for the HTTP service tests.

``served``: ``mortgage-denial`` version 1 with alias ``candidate`` in the registry fake
(``tests/fakes.py``: a real scorecard, trained by the pipeline's own stages in-process, held in
memory), one :class:`DecisionService` on a fresh ledger, one API key per role, and one app
served with ``--model mortgage-denial --alias candidate``. Nothing waits for a pipeline run.

``registered``: the same on the session's real pipeline run (a clone of the project, every
stage run in-process, version 1 registered in MLflow with alias ``candidate``), for what needs
the real registry: promotion moves an MLflow alias and checks the registrant; a trace shows the
lineage the pipeline recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes import REPO, FakeRegistry, trained_model
from fastapi.testclient import TestClient

from governance.decisions.service import DecisionService
from governance.ledger import Ledger
from governance.service import KeyStore, create_app
from governance.settings import Settings

MODEL = "mortgage-denial"
ALIAS = "candidate"
KEY_NAMES = {
    "scorer": "loan-frontend",
    "auditor": "internal-audit",
    "approver": "credit-officer",
    "admin": "ops-admin",
}


@dataclass(frozen=True)
class Served:
    """Everything a service test needs."""

    root: Path
    settings: Settings
    service: DecisionService
    keys: KeyStore
    tokens: dict[str, str]  # role -> API key
    client: TestClient
    rows: list[dict[str, Any]]  # test-split applications: features only
    sensitive: list[dict[str, Any]]  # their protected attributes

    def auth(self, role: str) -> dict[str, str]:
        """Authorization header for the key of ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def size(self) -> int:
        """Records in the ledger now."""
        return self.service.ledger.size()

    def post_json(self, path: str, doc: Any, role: str | None = "scorer", **headers: str) -> Any:
        """POST ``doc`` as JSON written by Python's ``json`` (so NaN/Infinity can be sent)."""
        sent = {"Content-Type": "application/json", **headers}
        if role is not None:
            sent.update(self.auth(role))
        return self.client.post(path, content=json.dumps(doc), headers=sent)

    def decide(self, features: Mapping[str, Any] | None = None, **kw: Any) -> str:
        """Record one decision directly through the service; return its id."""
        d = self.service.decide(
            MODEL, dict(features or self.rows[0]), alias=ALIAS, subject_id="subject-x", **kw
        )
        return d.decision_id


def _serve(
    root: Path, settings: Settings, service: DecisionService, test: pd.DataFrame
) -> Iterator[Served]:
    keys = KeyStore.for_home(settings.home)
    tokens = {role: keys.create(name, role) for role, name in KEY_NAMES.items()}
    scorecard = service.model(MODEL, alias=ALIAS)[0].scorecard
    test = test.head(50)
    rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in test[list(scorecard.order)].to_dict(orient="records")
    ]
    sensitive = test[["afam", "single"]].to_dict(orient="records")
    app = create_app(service, keys, default_model=MODEL, default_alias=ALIAS)
    with TestClient(app) as client:
        yield Served(root, settings, service, keys, tokens, client, rows, sensitive)
    service.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The service on the registry fake: no pipeline run, no MLflow."""
    root = tmp_path_factory.mktemp("served")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # what notices read of a project
    shutil.copytree(REPO / "expectations", root / "expectations")
    settings = Settings.resolve(root, env={})
    settings.home.mkdir(parents=True, exist_ok=True)
    trained = trained_model()
    models = FakeRegistry()
    models.register(trained.model, ALIAS)
    ledger = Ledger.open(settings.ledger_url, home=settings.home)
    yield from _serve(root, settings, DecisionService(settings, ledger, models), trained.test)


@pytest.fixture(scope="session")
def registered(trained: tuple[Path, Settings]) -> Iterator[Served]:
    """The service on the real MLflow registry of the session's pipeline run."""
    root, settings = trained
    test = pd.read_csv(root / "data" / "split" / "test.csv")
    yield from _serve(root, settings, DecisionService.open(settings), test)
