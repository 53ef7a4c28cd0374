"""Fixtures for the decision explorer (``/ui``) tests.

``explorer``: the explorer on the registry fake (``tests/fakes.py``: a real scorecard, trained by
the pipeline's own stages in-process, held in memory), as the service tests' ``served``: a
:class:`DecisionService` on a fresh ledger in a throwaway project (its ``params.yaml`` and
expectations, what notices read), one API key per role (named ``ui-…``), a handful of decisions
made here (one plain denial, one overridden by an approver and given an observed outcome, a run
of decisions for one subject to page through) and a signed checkpoint covering them. Nothing
waits for a pipeline run. The fake has no MLflow run: a decision page links to the run without
its experiment.

``registered_explorer``: the same world on the session's real pipeline run (``trained``,
tests/conftest.py: version 1 registered in MLflow with alias ``candidate``), plus a production
monitoring report of version 1, for what reads the real registry: a model version's page (it
resolves the version, its model card and the card's frontier from MLflow, and links to the
MLflow run) and the lineage links of a decision page to that run.

Browser tests get a real uvicorn server on a free loopback port (``server`` on the fake,
``registered_server`` on the real registry) and Debian's Chromium driven by Playwright; they
skip, saying why, when ``/usr/bin/chromium`` or the ``playwright`` package is missing.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn
import yaml
from fakes import FakeRegistry, trained_model
from fastapi import FastAPI
from fastapi.testclient import TestClient
from support import free_port

from governance.decisions.service import DecisionService
from governance.ledger import Ledger
from governance.service import KeyStore, create_app
from governance.settings import Settings

MODEL = "mortgage-denial"
ALIAS = "candidate"
ROLES = ("scorer", "auditor", "approver", "admin")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
PAGED = 7  # decisions made for the paging subject


@dataclass(frozen=True)
class Explorer:
    """The explorer's test world."""

    root: Path
    settings: Settings
    service: DecisionService
    keys: KeyStore
    tokens: dict[str, str]  # role -> API key
    app: FastAPI
    plain: str  # a denial nobody reviewed (it has principal reasons)
    plain_subject: str
    overridden: str  # a decision an approver overrode (and whose outcome was observed)
    overridden_subject: str
    override_outcome: str
    override_reason: str
    paged: list[str]  # PAGED decisions of one subject, in ledger order
    paged_subject: str
    rows: list[dict[str, Any]]  # test-split applications (features only)

    @property
    def ledger(self) -> Any:
        return self.service.ledger


def _rows(test: pd.DataFrame, service: DecisionService) -> list[dict[str, Any]]:
    order = list(service.model(MODEL, alias=ALIAS)[0].scorecard.order)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in test.head(40)[order].to_dict(orient="records")
    ]


def _monitoring_report(root: Path, settings: Settings, service: DecisionService) -> None:
    """Score the test split under a purpose of our own, record outcomes, write the report."""
    from governance.lifecycle import monitoring

    purpose = f"ui-monitoring-{uuid.uuid4().hex[:8]}"
    frame = pd.read_csv(root / "data" / "split" / "test.csv")
    ids: list[str] = []
    for _, receipts, _, _ in service.score_frame(
        MODEL, frame, subject_column="application_id", alias=ALIAS, purpose=purpose
    ):
        ids += [r.id for r in receipts]
    observed = frame["deny"].astype(str).str.lower().isin(["yes", "1", "true"])
    for decision_id, denied in list(zip(ids, observed, strict=True))[:120]:
        service.record_outcome(decision_id, "deny" if denied else "approve", source="servicing")
    params = yaml.safe_load((root / "params.yaml").read_text())
    monitoring.run(settings, params, MODEL, version="1", purpose=purpose)


def _explore(
    root: Path,
    settings: Settings,
    service: DecisionService,
    test: pd.DataFrame,
    *,
    monitored: bool,
) -> Iterator[Explorer]:
    """The explorer's world on ``service``: keys, decisions, (a report,) a checkpoint, the app."""
    keys = KeyStore.for_home(settings.home)
    tokens = {role: keys.create(f"ui-{role}", role) for role in ROLES}
    rows = _rows(test, service)
    tag = uuid.uuid4().hex[:8]

    # a denial: principal (adverse-action) reasons are given on adverse outcomes only
    scorecard = service.model(MODEL, alias=ALIAS)[0].scorecard
    denied = next(r for r in rows if scorecard.score(r).adverse)
    plain_subject = f"ui-applicant-plain-{tag}"
    plain = service.decide(
        MODEL, denied, alias=ALIAS, subject_id=plain_subject, caller="ui-scorer", purpose="ui"
    )
    overridden_subject = f"ui-applicant-override-{tag}"
    decided = service.decide(
        MODEL,
        rows[1],
        alias=ALIAS,
        subject_id=overridden_subject,
        caller="ui-scorer",
        purpose="ui",
        pii={"name": "Ada Example"},
    )
    override_outcome = "deny" if decided.outcome == "approve" else "approve"
    override_reason = f"income documents re-checked by hand ({tag})"
    service.record_review(
        decided.decision_id,
        kind="override",
        reviewer="ui-approver",
        reason=override_reason,
        outcome=override_outcome,
    )
    service.record_outcome(decided.decision_id, override_outcome, source="servicing")
    paged_subject = f"ui-applicant-paged-{tag}"
    paged = [
        service.decide(MODEL, rows[2 + i], alias=ALIAS, subject_id=paged_subject).decision_id
        for i in range(PAGED)
    ]
    if monitored:
        _monitoring_report(root, settings, service)
    service.ledger.checkpoint()
    app = create_app(service, keys, default_model=MODEL, default_alias=ALIAS)
    yield Explorer(
        root=root,
        settings=settings,
        service=service,
        keys=keys,
        tokens=tokens,
        app=app,
        plain=plain.decision_id,
        plain_subject=plain_subject,
        overridden=decided.decision_id,
        overridden_subject=overridden_subject,
        override_outcome=override_outcome,
        override_reason=override_reason,
        paged=paged,
        paged_subject=paged_subject,
        rows=rows,
    )
    service.close()


@pytest.fixture(scope="session")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Explorer]:
    """The explorer on the registry fake, with its own ledger: no pipeline run, no MLflow."""
    root = tmp_path_factory.mktemp("explorer")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # what notices read of a project
    shutil.copytree(REPO / "expectations", root / "expectations")
    settings = Settings.resolve(root, env={})
    settings.home.mkdir(parents=True, exist_ok=True)
    trained = trained_model()
    models = FakeRegistry()
    models.register(trained.model, ALIAS)
    ledger = Ledger.open(settings.ledger_url, home=settings.home)
    service = DecisionService(settings, ledger, models)
    yield from _explore(root, settings, service, trained.test, monitored=False)


@pytest.fixture(scope="session")
def registered_explorer(trained: tuple[Path, Settings]) -> Iterator[Explorer]:
    """The explorer on the real MLflow registry of the session's pipeline run."""
    root, settings = trained
    test = pd.read_csv(root / "data" / "split" / "test.csv")
    service = DecisionService.open(settings)
    yield from _explore(root, settings, service, test, monitored=True)


def _client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _auditor(client: TestClient, explorer: Explorer) -> TestClient:
    response = client.post(
        "/ui/login", data={"key": explorer.tokens["auditor"], "next": "/ui/decisions"}
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def client(explorer: Explorer) -> Iterator[TestClient]:
    """A fresh HTTP client (no cookies) on the app; redirects are not followed."""
    yield from _client(explorer.app)


@pytest.fixture
def auditor(client: TestClient, explorer: Explorer) -> TestClient:
    """A client signed in as the auditor."""
    return _auditor(client, explorer)


@pytest.fixture
def registered_client(registered_explorer: Explorer) -> Iterator[TestClient]:
    """``client`` on the explorer of the real registry."""
    yield from _client(registered_explorer.app)


@pytest.fixture
def registered_auditor(registered_client: TestClient, registered_explorer: Explorer) -> TestClient:
    """``auditor`` on the explorer of the real registry."""
    return _auditor(registered_client, registered_explorer)


# -- a real server and a real browser -------------------------------------------------------


def _serve(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="ui-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(explorer: Explorer) -> Iterator[str]:
    """The explorer on the fake, served by uvicorn; yields its base URL."""
    yield from _serve(explorer.app)


@pytest.fixture(scope="session")
def registered_server(registered_explorer: Explorer) -> Iterator[str]:
    """The explorer on the real registry, served by uvicorn; yields its base URL."""
    yield from _serve(registered_explorer.app)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium package"
            " (apt-get install chromium; `make test` installs it)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "the playwright Python package is missing (`make test` installs it; the browser"
            " is Debian's chromium, never `playwright install`)"
        )
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package) driven by Playwright; skips if unavailable."""
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; navigation times out after 15 s."""
    yield from _page(browser, server)


@pytest.fixture
def registered_page(browser: Any, registered_server: str) -> Iterator[Any]:
    """``page`` on the explorer of the real registry."""
    yield from _page(browser, registered_server)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/ui/`` (git-ignored): the screenshots the browser tests take."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
