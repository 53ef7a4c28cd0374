"""POST /invocations: MLflow's scoring protocol, every row a ledger decision."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from governance.service import create_app

MODEL = "mortgage-denial"
ALIAS = "candidate"
N = 4


def _split(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0])
    return {
        "columns": columns,
        "data": [[r[c] for c in columns] for r in rows],
        "index": list(range(len(rows))),
    }


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {c: [r[c] for r in rows] for c in rows[0]}


FORMATS: dict[str, Callable[[list[dict[str, Any]]], dict[str, Any]]] = {
    "dataframe_split": lambda rows: {"dataframe_split": _split(rows)},
    "dataframe_records": lambda rows: {"dataframe_records": rows},
    "instances": lambda rows: {"instances": rows},
    "inputs as records": lambda rows: {"inputs": rows},
    "inputs as columns": lambda rows: {"inputs": _columns(rows)},
}


def _check_recorded(served: Any, answer: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    ledger = served.service.ledger
    assert len(answer["predictions"]) == len(answer["explanations"]) == len(rows)
    assert len(set(answer["decision_ids"])) == len(rows)
    for row, decision_id, prediction, explanation in zip(
        rows, answer["decision_ids"], answer["predictions"], answer["explanations"], strict=True
    ):
        record = ledger.get(decision_id)
        assert record is not None and record.type == "decision"
        assert record.body["inputs"] == row
        assert record.body["outcome"] == prediction["outcome"]
        assert record.body["score"] == prediction["score"]
        assert record.body["model"]["name"] == MODEL
        assert record.body["model"]["alias"] == ALIAS
        assert record.body["caller"] == "loan-frontend"
        assert explanation["contributions"] == record.body["explanation"]["contributions"]
        assert explanation["base_value"] == record.body["explanation"]["base_value"]
        assert explanation["reasons"] == record.body["reasons"]
    seqs = [ledger.get(i).seq for i in answer["decision_ids"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(rows)))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_mlflow_format(served: Any, fmt: str) -> None:
    rows = served.rows[:N]
    before = served.size
    r = served.client.post("/invocations", json=FORMATS[fmt](rows), headers=served.auth("scorer"))
    assert r.status_code == 200, r.text
    denials = sum(p["outcome"] == "deny" for p in r.json()["predictions"])
    assert served.size == before + N + denials  # each denial's recourse event
    _check_recorded(served, r.json(), rows)


def test_single_row_inputs_object(served: Any) -> None:
    r = served.client.post(
        "/invocations", json={"inputs": served.rows[0]}, headers=served.auth("scorer")
    )
    assert r.status_code == 200, r.text
    _check_recorded(served, r.json(), served.rows[:1])


def test_csv(served: Any) -> None:
    rows = served.rows[:N]
    columns = list(rows[0])
    text = ",".join(columns) + "\n"
    text += "".join(
        ",".join(repr(r[c]) if isinstance(r[c], float) else str(r[c]) for c in columns) + "\n"
        for r in rows
    )
    r = served.client.post(
        "/invocations",
        content=text.encode(),
        headers={"Content-Type": "text/csv", **served.auth("scorer")},
    )
    assert r.status_code == 200, r.text
    _check_recorded(served, r.json(), rows)


def test_params_subject_ids_and_purpose(served: Any) -> None:
    rows = served.rows[:3]
    ids = ["inv-a", None, "inv-c"]
    r = served.client.post(
        "/invocations",
        json={"dataframe_records": rows, "params": {"subject_ids": ids, "purpose": "mlflow"}},
        headers={"Content-Type": "application/json; charset=utf-8", **served.auth("admin")},
    )
    assert r.status_code == 200, r.text
    ledger = served.service.ledger
    records = [ledger.get(i) for i in r.json()["decision_ids"]]
    assert records[0].body["subject_key"] == ledger.subject_key("inv-a")
    assert "subject_key" not in records[1].body or records[1].body["subject_key"] is None
    assert records[2].body["subject_key"] == ledger.subject_key("inv-c")
    assert {rec.body["purpose"] for rec in records} == {"mlflow"}
    assert {rec.body["caller"] for rec in records} == {"ops-admin"}


def _bad(served: Any, doc: dict[str, Any]) -> Any:
    return served.post_json("/invocations", doc)


def _csv(served: Any, body: bytes) -> Any:
    headers = {"Content-Type": "text/csv", **served.auth("scorer")}
    return served.client.post("/invocations", content=body, headers=headers)


BAD: dict[str, tuple[Callable[[Any], Any], int, list[str]]] = {
    "one bad row refuses all": (
        lambda s: _bad(
            s, {"dataframe_records": [s.rows[0], {**s.rows[1], "condomin": "sometimes"}]}
        ),
        422,
        ["row 1", "condomin", "sometimes"],
    ),
    "NaN in a row": (
        lambda s: _bad(
            s, {"dataframe_split": _split([s.rows[0], {**s.rows[1], "pirat": math.nan}])}
        ),
        422,
        ["row 1", "pirat", "NaN"],
    ),
    "Infinity in a column": (
        lambda s: _bad(s, {"inputs": _columns([{**s.rows[0], "lvrat": math.inf}])}),
        422,
        ["lvrat", "Infinity"],
    ),
    "missing feature": (
        lambda s: _bad(s, {"instances": [{k: v for k, v in s.rows[0].items() if k != "chist"}]}),
        422,
        ["missing feature", "chist"],
    ),
    "extra feature": (
        lambda s: _bad(s, {"instances": [{**s.rows[0], "single": "no"}]}),
        422,
        ["unknown feature", "single"],
    ),
    "null in a non-nullable feature": (
        lambda s: _bad(s, {"dataframe_records": [{**s.rows[0], "hirat": None}]}),
        422,
        ["hirat", "null"],
    ),
    "two formats": (
        lambda s: _bad(s, {"instances": [s.rows[0]], "inputs": [s.rows[0]]}),
        422,
        ["exactly one", "instances", "inputs"],
    ),
    "no format": (lambda s: _bad(s, {"data": [s.rows[0]]}), 422, ["exactly one"]),
    "empty input": (lambda s: _bad(s, {"dataframe_records": []}), 422, ["no rows"]),
    "ragged split": (
        lambda s: _bad(s, {"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}),
        422,
        ["row 0", "1 values", "2 columns"],
    ),
    "ragged columns": (
        lambda s: _bad(s, {"inputs": {"pirat": [0.1, 0.2], "hirat": [0.1]}}),
        422,
        ["same length"],
    ),
    "records of lists": (lambda s: _bad(s, {"instances": [[1, 2]]}), 422, ["instances"]),
    "unknown param": (
        lambda s: _bad(s, {"instances": [s.rows[0]], "params": {"temperature": 1}}),
        422,
        ["temperature"],
    ),
    "subject_ids of the wrong length": (
        lambda s: _bad(s, {"instances": [s.rows[0]], "params": {"subject_ids": ["a", "b"]}}),
        422,
        ["subject_ids", "2 ids", "1 rows"],
    ),
    "malformed JSON": (
        lambda s: s.client.post(
            "/invocations",
            content=b"{dataframe_split",
            headers={"Content-Type": "application/json", **s.auth("scorer")},
        ),
        400,
        ["malformed JSON"],
    ),
    "wrong content type": (
        lambda s: s.client.post(
            "/invocations",
            content=b"<xml/>",
            headers={"Content-Type": "application/xml", **s.auth("scorer")},
        ),
        415,
        ["Content-Type", "application/json", "text/csv"],
    ),
    "no content type": (
        lambda s: s.client.post("/invocations", content=b"{}", headers=s.auth("scorer")),
        415,
        ["Content-Type"],
    ),
    "empty CSV": (lambda s: _csv(s, b""), 400, ["empty", "CSV"]),
    "CSV without rows": (lambda s: _csv(s, b"pirat,hirat\n"), 422, ["no rows"]),
    "CSV row with extra fields": (
        lambda s: _csv(s, b"pirat,hirat\n0.1,0.2,0.3\n"),
        400,
        ["malformed CSV", "line 2", "3 fields", "2 columns"],
    ),
    "CSV with an unterminated quote": (
        lambda s: _csv(s, b'pirat,hirat\n"0.1,0.2\n'),
        400,
        ["malformed CSV"],
    ),
    "CSV with an empty field": (
        lambda s: _csv(
            s,
            (
                ",".join(s.rows[0])
                + "\n"
                + ",".join("" if k == "unemp" else str(v) for k, v in s.rows[0].items())
                + "\n"
            ).encode(),
        ),
        422,
        ["unemp", "null"],
    ),
    "CSV with text in a number column": (
        lambda s: _csv(
            s,
            (
                ",".join(s.rows[0])
                + "\n"
                + ",".join("lots" if k == "pirat" else str(v) for k, v in s.rows[0].items())
                + "\n"
            ).encode(),
        ),
        422,
        ["pirat", "lots"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_invocations_record_nothing(served: Any, case: str) -> None:
    send, status, words = BAD[case]
    before = served.size
    r = send(served)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    for word in words:
        assert word in error, (word, error)
    assert served.size == before


def test_no_served_model_is_404(served: Any) -> None:
    app = create_app(served.service, served.keys, default_model=None, default_alias=None)
    before = served.size
    with TestClient(app) as client:
        r = client.post(
            "/invocations", json={"instances": [served.rows[0]]}, headers=served.auth("scorer")
        )
        assert r.status_code == 404
        assert "--model" in r.json()["error"]
        doc = {"subject_id": "x", "features": served.rows[0]}
        r = client.post("/v1/decisions", json=doc, headers=served.auth("scorer"))
        assert r.status_code == 422 and "model" in r.json()["error"]
    assert served.size == before


def test_served_alias_that_does_not_exist_is_404(served: Any) -> None:
    app = create_app(served.service, served.keys, default_model=MODEL, default_alias="champion")
    before = served.size
    with TestClient(app) as client:
        r = client.post(
            "/invocations", json={"instances": [served.rows[0]]}, headers=served.auth("scorer")
        )
    assert r.status_code == 404 and "champion" in r.json()["error"]
    assert served.size == before


def test_served_model_that_does_not_exist_is_404(served: Any) -> None:
    app = create_app(served.service, served.keys, default_model="ghost", default_alias=None)
    with TestClient(app) as client:
        for body, media in ((b'{"instances": [{}]}', "application/json"), (b"a\n1\n", "text/csv")):
            r = client.post(
                "/invocations",
                content=body,
                headers={"Content-Type": media, **served.auth("scorer")},
            )
            assert r.status_code == 404, r.text
            assert r.json()["error"] == "no registered model named 'ghost'"
