"""The decision explorer (issue 6, acceptance 1 and 2).

Browser tests drive Debian's headless Chromium through Playwright against a real uvicorn server:
an auditor signs in, finds a decision by subject, reads its reasons and lineage and follows the
link to the model card; a scorer key is refused; an overridden decision shows its effective
outcome. Screenshots of the decision page and the model page go to ``test-artifacts/ui/``.
The other tests use FastAPI's TestClient: sessions, paging, filters, 404s, headers.
Expected values come from the ledger and the registry, never from the explorer's own code.

Most tests run on the registry fake (``explorer``, tests/ui/conftest.py); those that open a model
version's page, which reads MLflow itself (the version, its model card, the run's experiment),
run on the session's real pipeline run (``registered_explorer``).
"""

from __future__ import annotations

import re
import socket
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from governance.registry import mlflow as registry
from governance.service.ui import (
    COOKIE,
    Sessions,
    TreeWarmer,
    UiConfig,
    contribution_chart,
    ledger_status,
)

if TYPE_CHECKING:  # the fixture's type, from tests/ui/conftest.py (annotations only)
    from conftest import Explorer

MODEL = "mortgage-denial"

CHAIN = (
    "Model version",
    "Training run",
    "Training data",
    "Data validation",
    "Fairness report",
    "Model card",
    "Code commit",
)


class _Page(HTMLParser):
    """Collects the links, script tags, external sources and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.sources: list[str] = []
        self.scripts = 0
        self.text: list[str] = []
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "a":
            self._href, self._link_text = a.get("href") or "", []
        for name in ("src", "srcset"):
            if a.get(name):
                self.sources.append(str(a[name]))
        if tag == "link" and a.get("href"):
            self.sources.append(str(a["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._link_text).split())))
            self._href = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._href is not None:
            self._link_text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def sign_in(client: TestClient, token: str, next_path: str = "/ui/decisions") -> Response:
    """POST the sign-in form; return the response (redirects are not followed)."""
    return client.post("/ui/login", data={"key": token, "next": next_path})


def result_ids(html: str) -> list[str]:
    """Decision ids listed in a search result table, in order."""
    return re.findall(r'href="/ui/decisions/([0-9a-f-]{36})"', html)


def pager(html: str, rel: str) -> dict[str, list[str]] | None:
    """The query of the ``rel="next"`` / ``rel="prev"`` link, or None."""
    found = re.search(rf'rel="{rel}" href="([^"]*)"', html)
    if not found:
        return None
    return parse_qs(urlsplit(found.group(1).replace("&amp;", "&")).query)


# -- in the browser -------------------------------------------------------------------------


def _browser_sign_in(page: Any, token: str, start: str = "/ui/decisions") -> None:
    page.goto(start)
    assert urlsplit(page.url).path == "/ui/login"
    page.fill("#key", token)
    page.click("form.card button[type=submit]")
    page.wait_for_load_state()


def test_auditor_finds_a_decision_and_follows_its_lineage_to_the_model_card(
    registered_page: Any, registered_explorer: Explorer, artifacts: Path
) -> None:
    """On the real registry: the MLflow run link, the model card, its alias history."""
    page, explorer = registered_page, registered_explorer
    record = explorer.ledger.get(explorer.plain)
    body = record.body
    lineage = registry.resolve(explorer.settings, MODEL, "1")

    _browser_sign_in(page, explorer.tokens["auditor"])
    assert urlsplit(page.url).path == "/ui/decisions"
    assert "ui-auditor" in page.inner_text("header")
    page.fill("input[name=subject_id]", explorer.plain_subject)
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1
    assert explorer.plain in rows.first.inner_text()
    rows.first.locator("a.mono").click()
    page.wait_for_load_state()

    # the decision page: what the model saw, what it decided, why
    assert urlsplit(page.url).path == f"/ui/decisions/{explorer.plain}"
    assert page.inner_text("#model-outcome") == body["outcome"]
    assert page.inner_text("#effective-outcome") == body["outcome"]
    assert page.inner_text("#score") == f"{body['score']:.4f}"
    assert page.inner_text("#threshold") == f"{body['threshold']:.4f}"
    reasons = page.locator("#reason-list li").all_inner_texts()
    assert [r["reason"] for r in body["reasons"]] == [t.split(" (")[0] for t in reasons]
    assert body["reasons"], "the chosen application should have principal reasons"
    bars = page.locator("#contribution-chart g.bar")
    assert bars.count() == len(body["explanation"]["contributions"])
    shown = {
        bars.nth(i).get_attribute("data-feature"): bars.nth(i).locator("text.value").text_content()
        for i in range(bars.count())
    }
    assert shown == {k: f"{v:+.3f}" for k, v in body["explanation"]["contributions"].items()}

    # the lineage chain, in order, with the registry's facts
    steps = page.locator("#lineage-chain > li")
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())] == list(CHAIN)
    chain = page.inner_text("#lineage-chain")
    for dataset in lineage["datasets"]:
        assert dataset["md5"] in chain
    assert lineage["git_commit"] in chain
    assert lineage["mlflow_run_id"] in chain
    assert "passed" in page.inner_text('[data-step="Data validation"]')
    run_link = page.locator('[data-step="Training run"] a', has_text="MLflow run")
    assert re.fullmatch(
        rf"http://127\.0\.0\.1:5000/#/experiments/\d+/runs/{lineage['mlflow_run_id']}",
        str(run_link.get_attribute("href")),
    )
    assert (
        page.locator('[data-step="Model version"] a', has_text="MLflow").get_attribute("href")
        == f"http://127.0.0.1:5000/#/models/{MODEL}/versions/1"
    )
    assert "verified by the server" in page.inner_text("#proof")
    assert record.hash in page.inner_text("#ledger-status")
    page.screenshot(path=str(artifacts / "decision.png"), full_page=True)

    # follow the lineage to the model card
    page.locator('[data-step="Model card"] a').click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == f"/ui/models/{MODEL}/versions/1"
    assert urlsplit(page.url).fragment == "card"
    card = page.inner_text("#model-card")
    assert f"Model card: {MODEL}" in card
    for section in ("Intended use", "Ethical considerations", "Reason-code catalogue"):
        assert section in card
    assert "candidate" in page.inner_text("#aliases-now")
    assert "registered by the governed pipeline" in page.inner_text("#alias-history")
    assert "decisions" in page.inner_text("#monitoring-summary")
    assert page.locator("#monitoring-checks tbody tr").count() == 3
    skipped = sum(
        "not evaluated" in row
        for row in page.locator("#monitoring-checks tbody tr").all_inner_texts()
    )
    summary = page.inner_text("#monitoring-summary")
    assert skipped > 0  # a few decisions: at least performance (no outcomes) is not judged
    assert "all checks pass" not in summary  # a skipped check is not a passed one
    assert ("no check could be evaluated" in summary) == (skipped == 3)
    assert page.locator("a", has_text="Dagster asset").get_attribute("href") == (
        "http://127.0.0.1:3000/assets/register"
    )
    page.screenshot(path=str(artifacts / "model.png"), full_page=True)
    assert (artifacts / "decision.png").stat().st_size > 10_000
    assert (artifacts / "model.png").stat().st_size > 10_000


def test_a_scorer_key_cannot_open_the_explorer(page: Any, explorer: Explorer) -> None:
    _browser_sign_in(page, explorer.tokens["scorer"])
    assert page.inner_text("h1") == "Not allowed"
    assert "role scorer" in page.inner_text("main")
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]
    page.goto("/ui/decisions")
    assert urlsplit(page.url).path == "/ui/login"


def test_an_overridden_decision_shows_its_effective_outcome(
    page: Any, explorer: Explorer, artifacts: Path
) -> None:
    recorded = explorer.ledger.get(explorer.overridden).body["outcome"]
    assert recorded != explorer.override_outcome
    _browser_sign_in(page, explorer.tokens["auditor"])
    page.goto(f"/ui/decisions?subject_id={explorer.overridden_subject}")
    row = page.locator("#results tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[4] == recorded
    assert cells[5].split()[0] == explorer.override_outcome and "overridden" in cells[5]
    row.locator("a.mono").click()
    page.wait_for_load_state()
    assert page.inner_text("#effective-outcome") == explorer.override_outcome
    assert page.inner_text("#model-outcome") == recorded
    assert page.locator("#overridden").is_visible()
    notice = page.inner_text("#override-notice")
    assert "ui-approver" in notice and explorer.override_reason in notice
    events = page.inner_text("#event-table")
    assert "override" in events and "outcome" in events and "servicing" in events
    page.screenshot(path=str(artifacts / "override.png"), full_page=True)


def test_sign_out_ends_the_session(page: Any, explorer: Explorer) -> None:
    _browser_sign_in(page, explorer.tokens["approver"])
    assert urlsplit(page.url).path == "/ui/decisions"
    page.click("header form button")
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/ui/login"
    assert "signed out" in page.inner_text("main")
    page.goto("/ui/integrity")
    assert urlsplit(page.url).path == "/ui/login"


# -- sessions and roles ---------------------------------------------------------------------


def test_pages_redirect_to_sign_in_and_back(client: TestClient, explorer: Explorer) -> None:
    target = f"/ui/decisions/{explorer.plain}"
    response = client.get(target)
    assert response.status_code == 303
    login = response.headers["location"]
    assert urlsplit(login).path == "/ui/login"
    assert parse_qs(urlsplit(login).query)["next"] == [target]
    response = sign_in(client, explorer.tokens["auditor"], target)
    assert response.status_code == 303 and response.headers["location"] == target
    assert client.get(target).status_code == 200


def test_the_session_cookie_is_httponly_strict_and_not_the_key(
    client: TestClient, explorer: Explorer
) -> None:
    token = explorer.tokens["auditor"]
    response = sign_in(client, token)
    cookie = response.headers["set-cookie"]
    attributes = {p.strip().split("=")[0].lower() for p in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/ui" in cookie.lower()
    assert token not in cookie and token.removeprefix("gov_") not in cookie
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("role", ["auditor", "approver", "admin"])
def test_auditors_approvers_and_admins_may_sign_in(
    client: TestClient, explorer: Explorer, role: str
) -> None:
    assert sign_in(client, explorer.tokens[role]).status_code == 303
    page = client.get("/ui/decisions")
    assert page.status_code == 200 and f"ui-{role}" in page.text


def test_a_scorer_gets_403_and_no_session(client: TestClient, explorer: Explorer) -> None:
    response = sign_in(client, explorer.tokens["scorer"])
    assert response.status_code == 403
    assert "role scorer" in response.text and "set-cookie" not in response.headers
    assert client.get("/ui/decisions").status_code == 303


def test_an_invalid_key_is_refused(client: TestClient, explorer: Explorer) -> None:
    response = sign_in(client, "gov_not-a-key")
    assert response.status_code == 401 and "not valid" in response.text
    assert "set-cookie" not in response.headers
    assert sign_in(client, "").status_code == 401


def test_a_sign_in_form_of_too_many_fields_is_a_400(client: TestClient, explorer: Explorer) -> None:
    form = {"key": explorer.tokens["auditor"], **{f"field{i}": "1" for i in range(8)}}
    response = client.post("/ui/login", data=form)
    assert response.status_code == 400 and "too many fields" in response.text
    assert "set-cookie" not in response.headers


def test_a_chunked_sign_in_body_is_refused_at_the_limit_not_read_to_its_end(server: str) -> None:
    """A body sent without a length (chunked) is read only up to the form's limit: the 413
    comes while the client is still sending, so an endless body costs the server 4 KB."""
    url = urlsplit(server)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=30) as conn:
        conn.sendall(
            b"POST /ui/login HTTP/1.1\r\nHost: explorer\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"key=" + b"k" * 1020
        for _ in range(8):  # 8 KB, and never the last chunk: the body does not end
            conn.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        answer = conn.recv(65536)  # before the fix: no answer until the timeout
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"limit of 4,096 bytes" in answer


def test_a_tampered_or_expired_session_is_refused(client: TestClient, explorer: Explorer) -> None:
    sign_in(client, explorer.tokens["auditor"])
    value = client.cookies[COOKIE]
    body, mac = value.split(".")
    forged = body.replace(body[2], "A" if body[2] != "A" else "B", 1) + "." + mac
    client.cookies.set(COOKIE, forged, path="/ui")
    assert client.get("/ui/decisions").status_code == 303
    sessions = Sessions(explorer.keys, b"k" * 32, lifetime=60)
    principal = explorer.keys.authenticate(explorer.tokens["auditor"])
    assert principal is not None
    issued = sessions.issue(principal, explorer.tokens["auditor"], now=1_000.0)
    assert sessions.check(issued, now=1_030.0) == principal
    assert sessions.check(issued, now=1_061.0) is None


def test_revoking_the_key_ends_its_sessions(client: TestClient, explorer: Explorer) -> None:
    token = explorer.keys.create("ui-temporary-auditor", "auditor")
    sign_in(client, token)
    assert client.get("/ui/decisions").status_code == 200
    assert explorer.keys.revoke("ui-temporary-auditor")
    assert client.get("/ui/decisions").status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/ui", "/uix", "/v1/decisions", "/ui\\x"]
)
def test_sign_in_never_redirects_outside_the_explorer(
    client: TestClient, explorer: Explorer, target: str
) -> None:
    response = sign_in(client, explorer.tokens["auditor"], target)
    assert response.headers["location"] == "/ui/decisions"


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
)
def test_cross_site_posts_are_refused(
    client: TestClient, explorer: Explorer, headers: dict[str, str]
) -> None:
    response = client.post("/ui/login", data={"key": explorer.tokens["auditor"]}, headers=headers)
    assert response.status_code == 403 and "set-cookie" not in response.headers


# -- search and paging -----------------------------------------------------------------------


def test_search_pages_through_a_subject(auditor: TestClient, explorer: Explorer) -> None:
    seen: list[str] = []
    query = f"subject_id={explorer.paged_subject}&limit=3"
    first = auditor.get(f"/ui/decisions?{query}")
    assert first.status_code == 200
    assert pager(first.text, "prev") is None
    html = first.text
    pages = 0
    while True:
        pages += 1
        ids = result_ids(html)
        assert len(ids) == (3 if pages < 3 else len(explorer.paged) - 6)
        seen += ids
        nxt = pager(html, "next")
        if nxt is None:
            break
        assert nxt["offset"] == [str(len(seen))] and nxt["limit"] == ["3"]
        html = auditor.get(f"/ui/decisions?{query}&offset={len(seen)}").text
        prev = pager(html, "prev")
        assert prev is not None and prev.get("offset", ["0"]) == [str(len(seen) - 3)]
    assert pages == 3
    assert seen == explorer.paged


def test_search_pages_by_key_through_a_model_version(
    auditor: TestClient, explorer: Explorer
) -> None:
    """``after`` pages by seq: the same decisions as offset pages, each page linking to the next."""
    query = f"subject_id={explorer.paged_subject}&model={MODEL}&version=1&limit=3"
    html = auditor.get(f"/ui/decisions?{query}&after=0").text
    seen: list[str] = []
    while True:
        seen += result_ids(html)
        nxt = pager(html, "next")
        if nxt is None:
            break
        assert "offset" not in nxt and nxt["after"] == [str(explorer.ledger.get(seen[-1]).seq)]
        html = auditor.get(f"/ui/decisions?{query}&after={nxt['after'][0]}").text
    first_seq = explorer.ledger.get(explorer.paged[0]).seq
    expected = explorer.paged if first_seq > 0 else explorer.paged[1:]
    assert seen == expected
    bad = auditor.get(f"/ui/decisions?{query}&after=2&offset=3")
    assert bad.status_code == 422 and "after pages by key" in bad.text


def test_outcome_filter_is_the_effective_outcome(auditor: TestClient, explorer: Explorer) -> None:
    recorded = explorer.ledger.get(explorer.overridden).body["outcome"]
    effective = explorer.override_outcome
    by_effective = auditor.get(
        f"/ui/decisions?subject_id={explorer.overridden_subject}&outcome={effective}"
    )
    assert result_ids(by_effective.text) == [explorer.overridden]
    by_recorded = auditor.get(
        f"/ui/decisions?subject_id={explorer.overridden_subject}&outcome={recorded}"
    )
    assert result_ids(by_recorded.text) == []


def test_outcome_filter_pages_forward_and_back(auditor: TestClient, explorer: Explorer) -> None:
    outcomes = {
        d: explorer.ledger.get(d).body["outcome"] for d in explorer.paged
    }  # nobody reviewed these: effective = recorded
    outcome = max(set(outcomes.values()), key=list(outcomes.values()).count)
    expected = [d for d in explorer.paged if outcomes[d] == outcome]
    query = f"subject_id={explorer.paged_subject}&outcome={outcome}&limit=2"
    html = auditor.get(f"/ui/decisions?{query}").text
    pages = [result_ids(html)]
    while (nxt := pager(html, "next")) is not None and pages[-1]:
        html = auditor.get(
            f"/ui/decisions?{query}&offset={nxt['offset'][0]}&trail={nxt['trail'][0]}"
        ).text
        pages.append(result_ids(html))
        prev = pager(html, "prev")
        assert prev is not None
    assert [d for p in pages for d in p] == expected
    assert all(len(p) <= 2 for p in pages)


def test_search_by_time_range_model_and_version(auditor: TestClient, explorer: Explorer) -> None:
    third = explorer.ledger.get(explorer.paged[2])
    base = f"subject_id={explorer.paged_subject}&model={MODEL}&version=1"
    since = auditor.get(f"/ui/decisions?{base}&since={third.ts}")
    assert result_ids(since.text) == explorer.paged[2:]
    until = auditor.get(f"/ui/decisions?{base}&until={third.ts}")
    assert result_ids(until.text) == explorer.paged[:2]
    other = auditor.get(f"/ui/decisions?subject_id={explorer.paged_subject}&model=no-such-model")
    assert result_ids(other.text) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "is not a date and time"),
        ("since=0001-01-01T00:00:00%2B01:00", "outside the years 1 to 9999 in UTC"),
        ("until=9999-12-31T23:59:59-01:00", "outside the years 1 to 9999 in UTC"),
        ("version=1", "needs the model name"),
        ("limit=0", "limit must be between"),
        ("limit=abc", "whole number"),
        ("offset=-1", "offset must be between"),
        ("after=x", "whole number"),
    ],
)
def test_bad_search_parameters_say_what_is_wrong(
    auditor: TestClient, query: str, message: str
) -> None:
    response = auditor.get(f"/ui/decisions?{query}")
    assert response.status_code == 422
    assert message in response.text
    assert "text/html" in response.headers["content-type"]


def test_search_by_decision_id(auditor: TestClient, explorer: Explorer) -> None:
    found = auditor.get(f"/ui/decisions?decision_id={explorer.plain}")
    assert found.status_code == 303
    assert found.headers["location"] == f"/ui/decisions/{explorer.plain}"
    missing = auditor.get("/ui/decisions?decision_id=00000000-0000-7000-8000-000000000000")
    assert missing.status_code == 200 and "no decision with id" in missing.text


# -- pages -----------------------------------------------------------------------------------


def test_unknown_pages_are_html_404s(
    registered_auditor: TestClient, registered_explorer: Explorer
) -> None:
    """On the real registry: a model version's page asks MLflow whether the version exists."""
    auditor, explorer = registered_auditor, registered_explorer
    review = explorer.ledger.find(ref=explorer.overridden, type="review")[0]
    for path, text in [
        ("/ui/decisions/00000000-0000-7000-8000-000000000000", "no decision with id"),
        (f"/ui/decisions/{review.id}", "is a review event, not a decision"),
        ("/ui/models/no-such-model/versions/1", "no registered model named"),
        (f"/ui/models/{MODEL}/versions/99", "has no version"),
        ("/ui/nowhere", "There is no page"),
        (f"/ui/models/{MODEL}/versions/1%00/monitoring", "No production monitoring report"),
    ]:
        response = auditor.get(path)
        assert response.status_code == 404, path
        assert text in response.text, path
        assert "text/html" in response.headers["content-type"]


def test_pages_are_self_contained(
    registered_auditor: TestClient, registered_explorer: Explorer
) -> None:
    """On the real registry: the model version's page (and its card) comes from MLflow."""
    auditor, explorer = registered_auditor, registered_explorer
    allowed = ("/", "#", "http://127.0.0.1:5000/", "http://127.0.0.1:3000/")
    for path in (
        "/ui/decisions",
        f"/ui/decisions/{explorer.overridden}",
        f"/ui/models/{MODEL}/versions/1",
        "/ui/integrity",
    ):
        response = auditor.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        page = parse(response.text)
        assert page.scripts == 0 and page.sources == [], path
        for href, _ in page.links:
            assert href.startswith(allowed), (path, href)


def test_the_api_is_unchanged(client: TestClient, explorer: Explorer) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p.startswith("/ui")]
    response = client.get("/v1/decisions")
    assert response.status_code == 401 and response.json()["error"].startswith("missing API key")


def test_decision_page_shows_inputs_pii_and_reasons(
    auditor: TestClient, explorer: Explorer
) -> None:
    record = explorer.ledger.decode(explorer.ledger.get(explorer.overridden))
    body = record["body"]
    page = parse(auditor.get(f"/ui/decisions/{explorer.overridden}").text)
    words = page.words
    assert body["pii"] == {"name": "Ada Example"} and "Ada Example" in words
    for reason in body["reasons"]:
        assert reason["reason"] in words
    for name, value in body["inputs"].items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        assert f"{name} {shown}" in words


def test_a_decision_no_checkpoint_covers_is_not_proved_and_not_signed(
    auditor: TestClient, explorer: Explorer
) -> None:
    fresh = explorer.service.decide(MODEL, explorer.rows[20], alias="candidate")
    before = len(explorer.ledger.checkpoints())
    html = auditor.get(f"/ui/decisions/{fresh.decision_id}").text
    assert "not yet covered" in html and "verified by the server" not in html
    assert len(explorer.ledger.checkpoints()) == before
    explorer.ledger.checkpoint()
    assert "verified by the server" in auditor.get(f"/ui/decisions/{fresh.decision_id}").text


def test_the_proof_is_pending_while_the_tree_is_built(explorer: Explorer) -> None:
    record = explorer.ledger.get(explorer.plain)
    pending = ledger_status(explorer.ledger, explorer.plain, tree_ready=False)
    assert pending.proof_pending and pending.proof_verified is None
    assert pending.checkpoint is not None and pending.checkpoint["size"] > record.seq
    warmer = TreeWarmer(explorer.ledger)
    assert warmer.ready(wait=30) and warmer.problem is None
    done = ledger_status(explorer.ledger, explorer.plain, tree_ready=True)
    assert done.proof_verified and not done.proof_pending and done.hash == record.hash


def test_integrity_page_shows_the_checkpoint_and_verification(
    auditor: TestClient, explorer: Explorer
) -> None:
    latest = explorer.ledger.checkpoints()[-1]
    html = auditor.get("/ui/integrity").text
    words = parse(html).words
    assert latest.root.hex() in html
    assert "valid for this ledger's key" in words and "verified" in words
    response = auditor.post("/ui/integrity/verify")
    assert response.status_code == 303 and response.headers["location"] == "/ui/integrity"
    size = explorer.ledger.size()
    words = parse(auditor.get("/ui/integrity").text).words
    assert f"All {size:,} records" in words


def test_contribution_chart_scales_and_orders_bars() -> None:
    chart = contribution_chart({"a": -0.5, "b": 1.0, "c": 0.25}, {"a": 1.5}, -2.0, -1.25)
    assert [b.feature for b in chart.bars] == ["b", "c", "a"]
    b, c, a = chart.bars
    assert b.positive and b.x == chart.axis_x and b.width == pytest.approx(2 * a.width)
    assert not a.positive and a.x + a.width == pytest.approx(chart.axis_x)
    assert c.width == pytest.approx(b.width / 4)
    assert a.shown == "1.5" and b.shown == "null (missing)"


def test_link_out_urls_are_configurable() -> None:
    config = UiConfig.from_env(
        {
            "GOVERNANCE_MLFLOW_UI_URL": "https://mlflow.example/",
            "GOVERNANCE_DAGSTER_UI_URL": "https://dagster.example",
        }
    )
    assert config.mlflow_run("3", "abc") == "https://mlflow.example/#/experiments/3/runs/abc"
    assert config.mlflow_version("m", "2") == "https://mlflow.example/#/models/m/versions/2"
    assert config.dagster_asset() == "https://dagster.example/assets/register"


# -- issue 10: main factors, review status, out-of-distribution flags ----------------------


def test_an_approval_shows_main_factors_not_principal_reasons(
    auditor: TestClient, explorer: Explorer
) -> None:
    scorecard = explorer.service.model(MODEL, alias="candidate")[0].scorecard
    approved = next(r for r in explorer.rows if not scorecard.score(r).adverse)
    d = explorer.service.decide(MODEL, approved, alias="candidate", purpose="ui")
    body = explorer.ledger.get(d.decision_id).body
    assert body["reasons"] == [] and body["main_factors"]
    html = auditor.get(f"/ui/decisions/{d.decision_id}").text
    words = parse(html).words
    assert 'id="factor-list"' in html and "Main factors (not adverse-action reasons)" in words
    assert "given for adverse outcomes only" in words
    for factor in body["main_factors"]:
        assert factor["factor"] in words
    # the denial's page lists principal reasons and no main factors
    denial = auditor.get(f"/ui/decisions/{explorer.plain}").text
    assert 'id="reason-list"' in denial and 'id="factor-list"' not in denial


def test_a_contest_shows_as_status_and_filters_the_search(
    auditor: TestClient, explorer: Explorer
) -> None:
    subject = f"ui-contest-{explorer.plain_subject[-8:]}"
    d = explorer.service.decide(MODEL, explorer.rows[21], alias="candidate", subject_id=subject)
    page = f"/ui/decisions/{d.decision_id}"
    assert re.search(r'id="review-status">decided<', auditor.get(page).text)
    explorer.service.record_review(
        d.decision_id, kind="contest", reviewer="ui-scorer", reason="the applicant disputes it"
    )
    html = auditor.get(page).text
    assert re.search(r'id="review-status">contested<', html) and 'id="contested-notice"' in html
    found = auditor.get("/ui/decisions", params={"subject_id": subject, "status": "contested"})
    assert found.status_code == 200 and result_ids(found.text) == [d.decision_id]
    assert ">contested</span>" in found.text
    none = auditor.get("/ui/decisions", params={"subject_id": subject, "status": "reviewed"})
    assert result_ids(none.text) == []
    explorer.service.record_review(
        d.decision_id, kind="review", reviewer="ui-approver", reason="checked: the decision stands"
    )
    assert re.search(r'id="review-status">reviewed<', auditor.get(page).text)
    found = auditor.get("/ui/decisions", params={"subject_id": subject, "status": "reviewed"})
    assert result_ids(found.text) == [d.decision_id]
    bad = auditor.get("/ui/decisions", params={"status": "maybe"})
    assert bad.status_code == 422 and "status must be one of" in bad.text


def test_an_out_of_distribution_decision_is_flagged_on_its_page_and_in_search(
    auditor: TestClient, explorer: Explorer
) -> None:
    loaded = explorer.service.model(MODEL, alias="candidate")[0]
    assert loaded.contract is not None
    feature = loaded.contract.feature("lvrat")
    assert feature.training_range is not None and feature.training_range.high < 2.9
    subject = f"ui-ood-{explorer.plain_subject[-8:]}"
    row = {**explorer.rows[22], "lvrat": 2.9}  # inside the hard bounds, outside training
    d = explorer.service.decide(MODEL, row, alias="candidate", subject_id=subject)
    assert d.out_of_distribution == ["lvrat"]
    html = auditor.get(f"/ui/decisions/{d.decision_id}").text
    assert 'id="out-of-distribution"' in html and "Out of distribution: lvrat" in parse(html).words
    found = auditor.get("/ui/decisions", params={"subject_id": subject}).text
    assert result_ids(found) == [d.decision_id] and ">OOD</span>" in found
