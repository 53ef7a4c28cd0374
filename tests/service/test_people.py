"""People, not keys: who approved, who recorded, and separation of duties over HTTP."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from typing import Any

from governance.lifecycle.promotion import REFUSE_DUTIES

MODEL = "mortgage-denial"
PATH = f"/v1/models/{MODEL}/versions/1/promote"


def _key(served: Any, name: str, role: str, person: str) -> dict[str, str]:
    token = served.keys.create(name, role, person=person)
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_whoever_registered_a_version_cannot_approve_it(registered: Any) -> None:
    served = registered  # promotion: the real MLflow registry and its registrant
    registrant = served.service.model(MODEL, version="1")[0].lineage["registered_by"]
    assert registrant == getpass.getuser()  # the pipeline ran as this user (GOVERNANCE_ACTOR unset)
    headers = _key(served, "self-approver", "approver", registrant)
    before = served.size
    answer = served.client.post(
        PATH, json={"reason": "my own model is fine", "alias": "sod-check"}, headers=headers
    )
    assert answer.status_code == 409, answer.text
    assert REFUSE_DUTIES in answer.json()["error"]
    assert answer.json()["failures"] == ["separation_of_duties"]
    refusal = served.service.ledger.get_seq(before)
    assert refusal.type == "promotion" and refusal.body["action"] == "refuse"
    assert refusal.body["approver"] == registrant
    assert refusal.body["checks"]["separation_of_duties"]["passed"] is False


def test_the_approver_recorded_is_the_keys_person(registered: Any) -> None:
    served = registered  # promotion: moves an alias in the real MLflow registry
    headers = _key(served, "rivera-key", "approver", "J. Rivera")
    before = served.size
    forged = served.client.post(
        PATH,
        json={"reason": "ok", "alias": "people-check", "approver": "Somebody Else"},
        headers=headers,
    )
    assert forged.status_code == 403, forged.text
    assert "J. Rivera" in forged.json()["error"] and served.size == before
    answer = served.client.post(
        PATH,
        json={"reason": "passed review", "alias": "people-check", "approver": "j. rivera"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["approver"] == "J. Rivera"
    event = served.service.ledger.get(answer.json()["event"]["id"])
    assert event.body["approver"] == "J. Rivera"
    assert event.body["checks"]["separation_of_duties"]["passed"] is True


def test_outcomes_record_the_caller_and_refuse_impossible_times(served: Any) -> None:
    decision_id = served.decide()
    decided_at = served.service.ledger.get(decision_id).ts
    headers = _key(served, "servicing-system", "scorer", "Loan servicing (system)")
    path = f"/v1/decisions/{decision_id}/outcome"
    before = served.size
    for when in (
        "1970-01-01T00:00:00Z",
        (datetime.now(UTC) + timedelta(days=365)).isoformat(),
        "2000-01-01T00:00:00+00:00",
    ):
        doc = {"observed": "deny", "observed_at": when}
        bad = served.client.post(path, json=doc, headers=headers)
        assert bad.status_code == 422, bad.text
        assert "observed_at" in bad.json()["error"]
    epoch = served.client.post(path, json={"observed": "deny", "observed_at": 0}, headers=headers)
    assert epoch.status_code == 422, epoch.text
    assert served.size == before
    ok = served.client.post(
        path, json={"observed": "deny", "source": "core banking", "observed_at": decided_at},
        headers=headers,
    )  # fmt: skip
    assert ok.status_code == 201, ok.text
    second = served.client.post(path, json={"observed": "approve"}, headers=headers)
    assert second.status_code == 201, second.text
    shown = served.client.get(f"/v1/decisions/{decision_id}", headers=served.auth("auditor")).json()
    first, correction = (e["body"] for e in shown["events"])
    assert first["recorded_by"] == "Loan servicing (system)" and first["source"] == "core banking"
    assert "corrects" not in first
    assert correction["corrects"] == ok.json()["event_id"]


def test_a_contest_is_visible_until_a_review_resolves_it(served: Any) -> None:
    decision_id = served.decide()
    contest = served.post_json(
        f"/v1/decisions/{decision_id}/reviews", {"kind": "contest", "reason": "disputes income"}
    )
    assert contest.status_code == 201, contest.text
    shown = served.client.get(f"/v1/decisions/{decision_id}", headers=served.auth("auditor"))
    assert shown.json()["status"] == "contested"
    found = served.client.get(
        "/v1/decisions", params={"subject_id": "subject-x", "limit": 1000},
        headers=served.auth("auditor"),
    ).json()["decisions"]  # fmt: skip
    assert {d["id"]: d["status"] for d in found}[decision_id] == "contested"
    review = served.post_json(
        f"/v1/decisions/{decision_id}/reviews",
        {"kind": "review", "reason": "income verified; decision stands"},
        role="approver",
    )
    assert review.status_code == 201, review.text
    shown = served.client.get(f"/v1/decisions/{decision_id}", headers=served.auth("auditor"))
    assert shown.json()["status"] == "reviewed"
