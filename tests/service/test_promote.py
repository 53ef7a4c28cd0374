"""Promotion over HTTP: approver only, gated, recorded, and seen at once by the service."""

from __future__ import annotations

from typing import Any

from governance.lifecycle.promotion import history

MODEL = "mortgage-denial"


def test_approver_promotes_and_decisions_follow_the_alias(registered: Any) -> None:
    served = registered  # promotion moves an alias in the real MLflow registry
    path = f"/v1/models/{MODEL}/versions/1/promote"
    # Its own alias: the session's registry is shared, and `champion` must stay unset there.
    body = {"reason": "passed model risk review", "alias": "production"}
    assert served.post_json(path, body, role="scorer").status_code == 403
    assert served.post_json(path, body, role="auditor").status_code == 403
    assert served.post_json(path, body, role=None).status_code == 401
    missing = served.post_json(f"/v1/models/{MODEL}/versions/99/promote", body, role="approver")
    assert missing.status_code == 404 and "no version" in missing.json()["error"]

    before = served.size
    answer = served.post_json(path, body, role="approver")
    assert answer.status_code == 201, answer.text
    assert served.size == before + 1
    now = history(served.service.ledger, MODEL, alias="production", at=None)
    latest = now[-1] if isinstance(now, list) else now
    assert latest["approver"] == "credit-officer" and latest["reason"] == body["reason"]

    decided = served.post_json(
        "/v1/decisions",
        {"model": MODEL, "alias": "production", "subject_id": "p-1", "features": served.rows[0]},
    )
    assert decided.status_code == 201
    assert decided.json()["model"]["version"] == "1"
    assert decided.json()["model"]["alias"] == "production"
