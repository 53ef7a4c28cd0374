"""Recourse and notices in the explorer (Chromium) and over HTTP.

On the registry fake (``explorer``), but for the model card's frontier, which is an MLflow
artifact of the real pipeline run (``registered_explorer``).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from governance.subjects import notices
from governance.subjects.recourse import recourse_of

if TYPE_CHECKING:  # the fixture's type, from tests/ui/conftest.py (annotations only)
    from conftest import Explorer

MODEL = "mortgage-denial"
ALIAS = "candidate"


@pytest.fixture(scope="module")
def denial(explorer: Explorer) -> dict[str, Any]:
    """A fresh denial with recorded recourse (and a subject), and an approval."""
    scorecard = explorer.service.model(MODEL, alias=ALIAS)[0].scorecard
    denied = next(r for r in explorer.rows if scorecard.score(r).adverse)
    approved = next(r for r in explorer.rows if not scorecard.score(r).adverse)
    subject = f"ui-recourse-{uuid.uuid4().hex[:8]}"
    d = explorer.service.decide(MODEL, denied, alias=ALIAS, subject_id=subject, purpose="ui")
    a = explorer.service.decide(MODEL, approved, alias=ALIAS, purpose="ui")
    recorded = recourse_of(explorer.ledger, d.decision_id)
    assert recorded["adverse"] and recorded["recourse"] is not None
    return {"id": d.decision_id, "approval": a.decision_id, "subject": subject, **recorded}


def _sign_in(page: Any, token: str, start: str) -> None:
    page.goto(start)
    page.fill("#key", token)
    page.click("form.card button[type=submit]")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == start


def test_recourse_and_a_notice_issued_in_the_browser(
    page: Any, explorer: Explorer, denial: dict[str, Any], artifacts: Path
) -> None:
    rc = denial["recourse"]
    _sign_in(page, explorer.tokens["auditor"], f"/ui/decisions/{denial['id']}")
    summary = page.inner_text("#recourse-summary")
    for line in rc["summary"]:
        assert line in summary
    if rc["feasible"]:
        rows = page.locator("#recourse-combined tbody tr")
        assert rows.count() == len(rc["combined"]["changes"])
        labels = [c["label"] for c in rc["combined"]["changes"]]
        assert [t.split(" (")[0] for t in rows.locator("td:first-child").all_inner_texts()] == (
            labels
        )
    assert denial["event"]["id"] in page.inner_text("main")
    assert page.inner_text("#no-notices") == "None issued."
    page.screenshot(path=str(artifacts / "recourse.png"), full_page=True)

    # preview, then issue: the ledger records the document's SHA-256
    page.click("#notice-link")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == f"/ui/decisions/{denial['id']}/notice"
    document = page.inner_text("#notice-document")
    reasons = explorer.ledger.get(denial["id"]).body["reasons"]
    for r in reasons[:4]:
        assert r["reason"] in document
    assert "Equal Credit Opportunity Act" in document
    size = explorer.ledger.size()
    assert "nothing is recorded" in page.inner_text("#notice-preview-note")
    page.click("#issue-notice")
    page.wait_for_load_state()
    assert explorer.ledger.size() == size + 1
    event_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    event = explorer.ledger.get(event_id)
    assert event.type == "notice" and event.body["decision_id"] == denial["id"]
    assert page.inner_text("#notice-sha256") == event.body["sha256"]
    assert "same bytes as issued" in page.inner_text("#notice-check")
    page.screenshot(path=str(artifacts / "notice.png"), full_page=True)

    # the downloaded document is the one the ledger names, and notice verify proves it
    with page.expect_download() as download:
        page.click("#notice-download")
    path = Path(download.value.path())
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == event.body["sha256"]
    proof = notices.verify(explorer.ledger, explorer.root, path)
    assert proof["event"]["id"] == event_id and proof["rendered_again_matches"]
    assert proof["proof_verified"]

    page.goto(f"/ui/decisions/{denial['id']}")
    rows = page.locator("#notice-table tbody tr")
    assert rows.count() == 1 and event.body["sha256"][:16] in rows.first.inner_text()
    assert (artifacts / "notice.png").stat().st_size > 10_000


def test_an_approval_has_no_recourse_and_no_notice(
    page: Any, explorer: Explorer, denial: dict[str, Any]
) -> None:
    _sign_in(page, explorer.tokens["approver"], f"/ui/decisions/{denial['approval']}")
    assert "not adverse" in page.inner_text("#recourse-summary")
    assert page.locator("#notice-link").count() == 0
    page.goto(f"/ui/decisions/{denial['approval']}/notice")
    assert page.inner_text("h1") == "No notice for this decision"
    assert "is not adverse" in page.inner_text("main")


def test_the_model_card_shows_the_frontier(
    registered_page: Any, registered_explorer: Explorer
) -> None:
    """On the real registry: the card and its frontier are MLflow artifacts of the run."""
    page, explorer = registered_page, registered_explorer
    _sign_in(page, explorer.tokens["auditor"], f"/ui/models/{MODEL}/versions/1")
    card = page.locator("#model-card")
    assert "Less discriminatory alternatives" in card.inner_text()
    figure = card.locator("figure#frontier svg")
    assert figure.is_visible()
    assert figure.locator("circle").count() >= 2  # the model and its explainable alternatives


def test_cross_site_notice_issue_is_refused(client: TestClient, explorer: Explorer) -> None:
    r = client.post("/ui/login", data={"key": explorer.tokens["auditor"], "next": "/ui/decisions"})
    assert r.status_code == 303
    decision = explorer.ledger.find(type="recourse", limit=1)[0].body["decision_id"]
    size = explorer.ledger.size()
    r = client.post(f"/ui/decisions/{decision}/notice", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and explorer.ledger.size() == size


def auth(explorer: Explorer, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {explorer.tokens[role]}"}


def test_api_recourse(client: TestClient, explorer: Explorer, denial: dict[str, Any]) -> None:
    url = f"/v1/decisions/{denial['id']}/recourse"
    r = client.get(url, headers=auth(explorer, "auditor"))
    assert r.status_code == 200, r.text
    assert r.json() == {k: denial[k] for k in r.json()}
    assert client.get(url, headers=auth(explorer, "approver")).status_code == 200
    assert client.get(url, headers=auth(explorer, "scorer")).status_code == 403
    assert client.get(url).status_code == 401
    missing = client.get(
        "/v1/decisions/00000000-0000-7000-8000-000000000000/recourse",
        headers=auth(explorer, "auditor"),
    )
    assert missing.status_code == 404 and "no decision" in missing.json()["error"]
    approval = client.get(
        f"/v1/decisions/{denial['approval']}/recourse", headers=auth(explorer, "auditor")
    ).json()
    assert approval["adverse"] is False and approval["recourse"] is None


def _day(offset: int) -> str:
    """Today (UTC) moved by ``offset`` days (the decisions here are made today)."""
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def test_api_notice_is_recorded_and_verifies(
    client: TestClient, explorer: Explorer, denial: dict[str, Any], tmp_path: Path
) -> None:
    size = explorer.ledger.size()
    r = client.get(
        f"/v1/decisions/{denial['id']}/notice?format=pdf&date={_day(0)}",
        headers=auth(explorer, "auditor"),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")
    digest = hashlib.sha256(r.content).hexdigest()
    assert r.headers["X-Notice-SHA256"] == digest
    event = explorer.ledger.get(r.headers["X-Notice-Event"])
    assert event.body["sha256"] == digest and explorer.ledger.size() == size + 1
    path = tmp_path / "n.pdf"
    path.write_bytes(r.content)
    assert notices.verify(explorer.ledger, explorer.root, path)["rendered_again_matches"]
    for query, status in [
        (f"{denial['approval']}/notice", 422),
        (f"{denial['id']}/notice?format=docx", 422),
        (f"{denial['id']}/notice?date=30-11-2026", 422),
        (f"{denial['id']}/notice?date=", 422),
        (f"{denial['id']}/notice?date={_day(-2)}", 422),  # before the decision
        (f"{denial['id']}/notice?date={_day(+2)}", 422),  # ahead of today
        ("00000000-0000-7000-8000-000000000000/notice", 404),
    ]:
        bad = client.get(f"/v1/decisions/{query}", headers=auth(explorer, "auditor"))
        assert bad.status_code == status, (query, bad.text)
    assert explorer.ledger.size() == size + 1, "refusals write nothing"


def test_api_subject_report_is_for_auditors(
    client: TestClient, explorer: Explorer, denial: dict[str, Any]
) -> None:
    url = f"/v1/subjects/{denial['subject']}/report"
    r = client.get(url, headers=auth(explorer, "auditor"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [d["record"]["id"] for d in doc["decisions"]] == [denial["id"]]
    assert doc["decisions"][0]["recourse"] == denial["recourse"]
    assert doc["all_proofs_verified"]
    html = client.get(url + "?format=html", headers=auth(explorer, "auditor"))
    assert html.status_code == 200 and denial["id"] in html.text
    assert client.get(url, headers=auth(explorer, "approver")).status_code == 403
    nobody = client.get("/v1/subjects/nobody-at-all/report", headers=auth(explorer, "auditor"))
    assert nobody.status_code == 404
