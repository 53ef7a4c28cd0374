"""The input contract over HTTP, and clean errors for hostile requests.

Impossible inputs get 422 naming feature, value and bound (and every violation as JSON) through
``/v1/decisions``, ``/v1/decisions:batch`` and ``/invocations``; nothing is written. Values
inside the hard bounds but outside the training range are decided and flagged.
"""

from __future__ import annotations

from typing import Any

import pytest

IMPOSSIBLE = [
    ({"pirat": -5}, "feature 'pirat' = -5 is below the hard minimum 0"),
    ({"chist": 99}, "feature 'chist' = 99 is not one of [1, 2, 3, 4, 5, 6]"),
    ({"lvrat": 1e300}, "feature 'lvrat' = 1e+300 is above the hard maximum 3"),
    ({"phist": "missing"}, "feature 'phist' = 'missing' is not one of ['no', 'yes']"),
]


@pytest.mark.parametrize(("change", "message"), IMPOSSIBLE)
def test_impossible_inputs_are_422_everywhere_and_write_nothing(
    served: Any, change: dict[str, Any], message: str
) -> None:
    bad = {**served.rows[0], **change}
    before = served.size
    one = served.post_json("/v1/decisions", {"features": bad, "subject_id": "h-1"})
    assert one.status_code == 422, one.text
    assert message in one.json()["error"]
    assert one.json()["violations"][0]["feature"] == next(iter(change))
    batch = served.post_json(
        "/v1/decisions:batch",
        {
            "applications": [
                {"subject_id": "h-2", "features": served.rows[1]},
                {"subject_id": "h-3", "features": bad},
            ]
        },
    )
    assert batch.status_code == 422, batch.text
    assert "application 1: " + message in batch.json()["error"]
    columns = list(bad)
    inv = served.post_json(
        "/invocations",
        {
            "dataframe_split": {
                "columns": columns,
                "data": [[served.rows[2][c] for c in columns], [bad[c] for c in columns]],
            }
        },
    )
    assert inv.status_code == 422, inv.text
    assert "row 1: " + message in inv.json()["error"]
    assert served.size == before


def test_out_of_distribution_is_decided_flagged_and_traced(served: Any) -> None:
    answer = served.post_json(
        "/v1/decisions", {"features": {**served.rows[0], "lvrat": 2.9}, "subject_id": "h-ood"}
    )
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["out_of_distribution"] == ["lvrat"]
    shown = served.client.get(f"/v1/decisions/{doc['decision_id']}", headers=served.auth("auditor"))
    assert shown.json()["body"]["out_of_distribution"] == ["lvrat"]


def test_reasons_only_on_adverse_outcomes_main_factors_on_approvals(served: Any) -> None:
    seen = set()
    for row in served.rows[:40]:
        doc = served.post_json("/v1/decisions", {"features": row, "subject_id": "h-r"}).json()
        seen.add(doc["outcome"])
        if doc["outcome"] == "approve":
            assert doc["reasons"] == []
            assert doc["main_factors"] and all("factor" in f for f in doc["main_factors"])
        else:
            assert doc["reasons"] and doc["main_factors"] == []
    assert seen == {"approve", "deny"}


@pytest.mark.parametrize(
    "path", ["/v1/decisions", "/v1/decisions:batch", "/invocations", "/v1/promotions"]
)
def test_a_huge_integer_literal_is_a_4xx(served: Any, path: str) -> None:
    before = served.size
    body = '{"features": {"pirat": ' + "9" * 5000 + "}}"
    answer = served.client.post(
        path,
        content=body,
        headers={**served.auth("admin"), "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert served.size == before


@pytest.mark.parametrize("param", ["subject_id", "model", "since"])
def test_find_with_an_empty_filter_is_422(served: Any, param: str) -> None:
    answer = served.client.get(f"/v1/decisions?{param}=", headers=served.auth("auditor"))
    assert answer.status_code == 422, answer.text
    assert param in answer.json()["error"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject_id", "alice\nforged line"), ("purpose", "x\r\x1b[2Kfake"), ("purpose", "a\u2028b")],
)
def test_control_characters_in_caller_text_are_refused(served: Any, field: str, value: str) -> None:
    before = served.size
    doc = {"features": served.rows[0], "subject_id": "h-c", field: value}
    answer = served.post_json("/v1/decisions", doc)
    assert answer.status_code == 422, answer.text
    assert f"{field} contains a control character" in answer.json()["error"]
    assert served.size == before


@pytest.mark.parametrize(
    ("reason", "char"),
    [("a\x00b", "U+0000"), ("x\x1b[2Kfake", "U+001B"), ("denied\rapproved", "U+000D")],
)
def test_a_review_reason_with_a_control_character_is_refused(
    served: Any, reason: str, char: str
) -> None:
    decision_id = served.decide()
    before = served.size
    answer = served.post_json(
        f"/v1/decisions/{decision_id}/reviews", {"kind": "contest", "reason": reason}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == f"reason contains a control character ({char}); refused"
    assert served.size == before


def test_a_review_reason_may_span_lines(served: Any) -> None:
    decision_id = served.decide()
    reason = "the applicant disputes it:\r\n\t- the income\n\t- the credit history"
    answer = served.post_json(
        f"/v1/decisions/{decision_id}/reviews", {"kind": "contest", "reason": reason}
    )
    assert answer.status_code == 201, answer.text
    assert served.service.ledger.get(answer.json()["event_id"]).body["reason"] == reason


def test_an_unpaired_surrogate_subject_id_is_named_in_the_refusal(served: Any) -> None:
    before = served.size
    doc = {"dataframe_records": [served.rows[0]], "params": {"subject_ids": ["\ud800"]}}
    answer = served.post_json("/invocations", doc)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == (
        "subject_id contains an unpaired surrogate (U+D800), which is not text; refused"
    )
    assert served.size == before
