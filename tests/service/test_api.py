"""The /v1 HTTP API: happy paths, errors that record nothing, OpenAPI, health and metrics."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import verify_inclusion

MODEL = "mortgage-denial"
ALIAS = "candidate"


def _request(served: Any, **changes: Any) -> dict[str, Any]:
    doc = {
        "model": MODEL,
        "alias": ALIAS,
        "subject_id": "applicant-42",
        "features": dict(served.rows[0]),
        "purpose": "mortgage application",
    }
    doc.update(changes)
    return doc


def _features(served: Any, **changes: Any) -> dict[str, Any]:
    return {**served.rows[0], **changes}


# -- POST /v1/decisions ----------------------------------------------------------------------


def test_create_decision_records_it_before_answering(served: Any) -> None:
    before = served.size
    doc = _request(
        served, pii={"name": "A. Applicant"}, sensitive=served.sensitive[0], subject_id="app-1"
    )
    r = served.client.post("/v1/decisions", json=doc, headers=served.auth("scorer"))
    assert r.status_code == 201, r.text
    d = r.json()
    for key in ("decision_id", "outcome", "score", "threshold", "reasons", "explanation"):
        assert key in d
    assert d["model"]["name"] == MODEL and d["model"]["version"] == "1"
    assert d["model"]["alias"] == ALIAS and d["model"]["lineage_id"].startswith("sha256:")
    assert r.headers["location"] == f"/v1/decisions/{d['decision_id']}"
    assert served.size == before + 1 + (d["outcome"] == "deny")  # a denial's recourse event
    record = served.service.ledger.get(d["decision_id"])
    assert d["ledger"] == {"seq": record.seq, "hash": record.hash}  # no shard: one chain
    assert record.ts == d["timestamp"]
    body = record.body
    assert body["inputs"] == served.rows[0]
    assert body["caller"] == "loan-frontend"
    assert body["purpose"] == "mortgage application"
    assert body["subject_key"] == served.service.ledger.subject_key("app-1")
    # sensitive attributes: encrypted with the PII, never model inputs
    assert "afam" not in body["inputs"] and "afam" not in json.dumps(body["explanation"])
    assert body["pii"]["alg"]  # an envelope, not the plain values
    decoded = served.service.ledger.decode(record)["body"]["pii"]
    assert decoded == {"name": "A. Applicant", "sensitive": served.sensitive[0]}
    assert math.isclose(
        d["explanation"]["base_value"] + sum(d["explanation"]["contributions"].values()),
        d["explanation"]["logit"],
        abs_tol=1e-9,
    )


def test_create_decision_uses_the_served_model_when_none_is_named(served: Any) -> None:
    doc = _request(served)
    del doc["model"], doc["alias"]
    r = served.client.post("/v1/decisions", json=doc, headers=served.auth("scorer"))
    assert r.status_code == 201, r.text
    assert r.json()["model"] == {**r.json()["model"], "name": MODEL, "alias": ALIAS}


def test_create_decision_by_version(served: Any) -> None:
    doc = _request(served, version=1)
    del doc["alias"]
    r = served.client.post("/v1/decisions", json=doc, headers=served.auth("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["model"]["version"] == "1" and r.json()["model"]["alias"] is None
    assert served.service.ledger.get(r.json()["decision_id"]).body["caller"] == "ops-admin"


def test_batch_is_recorded_in_order(served: Any) -> None:
    before = served.size
    apps = [
        {"subject_id": f"batch-{i}", "features": served.rows[i], "sensitive": served.sensitive[i]}
        for i in range(5)
    ]
    apps[2]["pii"] = {"name": "C"}
    r = served.client.post(
        "/v1/decisions:batch",
        json={"model": MODEL, "alias": ALIAS, "purpose": "nightly", "applications": apps},
        headers=served.auth("scorer"),
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["count"] == 5 and len(out["decisions"]) == 5
    denials = sum(d["outcome"] == "deny" for d in out["decisions"])
    assert served.size == before + 5 + denials  # each denial's recourse follows the decisions
    seqs = [d["ledger"]["seq"] for d in out["decisions"]]
    assert seqs == list(range(before, before + 5))
    ledger = served.service.ledger
    for i, d in enumerate(out["decisions"]):
        record = ledger.get(d["decision_id"])
        assert record.body["inputs"] == served.rows[i]
        assert record.body["subject_key"] == ledger.subject_key(f"batch-{i}")
        assert record.body["purpose"] == "nightly"
    pii = ledger.decode(ledger.get(out["decisions"][2]["decision_id"]))["body"]["pii"]
    assert pii == {"name": "C", "sensitive": served.sensitive[2]}


# -- bad input: a clear 4xx, nothing recorded ------------------------------------------------


def _json(path: str, doc: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Any]:
    def send(served: Any) -> Any:
        return served.post_json(path, doc(served))

    return send


def _raw(path: str, body: bytes, content_type: str = "application/json") -> Callable[[Any], Any]:
    def send(served: Any) -> Any:
        headers = {"Content-Type": content_type, **served.auth("scorer")}
        return served.client.post(path, content=body, headers=headers)

    return send


def _batch(served: Any, apps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": MODEL, "alias": ALIAS, "applications": apps}


def _text(path: str, make: Callable[[Any], str]) -> Callable[[Any], Any]:
    def send(served: Any) -> Any:
        headers = {"Content-Type": "application/json", **served.auth("scorer")}
        return served.client.post(path, content=make(served).encode(), headers=headers)

    return send


BAD_INPUT: dict[str, tuple[Callable[[Any], Any], int, list[str]]] = {
    "unknown model": (
        _json("/v1/decisions", lambda s: _request(s, model="no-such-model")),
        404,
        ["no registered model", "no-such-model"],
    ),
    "unknown alias": (
        _json("/v1/decisions", lambda s: _request(s, alias="no-such-alias")),
        404,
        ["no alias", "no-such-alias"],
    ),
    "unknown version": (
        _json("/v1/decisions", lambda s: {**_request(s, version="99"), "alias": None}),
        404,
        ["no version", "99"],
    ),
    "version and alias": (
        _json("/v1/decisions", lambda s: _request(s, version="1")),
        422,
        ["version or an alias"],
    ),
    "missing feature": (
        _json(
            "/v1/decisions",
            lambda s: _request(s, features={k: v for k, v in s.rows[0].items() if k != "lvrat"}),
        ),
        422,
        ["missing feature", "lvrat"],
    ),
    "extra feature": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, afam="no"))),
        422,
        ["unknown feature", "afam"],
    ),
    "wrong type": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, pirat="high"))),
        422,
        ["pirat", "number"],
    ),
    "boolean for a number": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, chist=True))),
        422,
        ["chist", "number"],
    ),
    "object for a feature": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, hirat={"a": 1}))),
        422,
        ["hirat", "object"],
    ),
    "NaN": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, lvrat=math.nan))),
        422,
        ["lvrat", "NaN"],
    ),
    "Infinity": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, hirat=math.inf))),
        422,
        ["hirat", "Infinity"],
    ),
    "-Infinity in pii": (
        _json("/v1/decisions", lambda s: _request(s, pii={"income": -math.inf})),
        422,
        ["pii.income", "-Infinity"],
    ),
    "huge number overflows to infinity": (
        _text(
            "/v1/decisions",
            lambda s: json.dumps(_request(s, features=_features(s, pirat="@"))).replace(
                '"@"', "1e400"
            ),
        ),
        422,
        ["pirat", "finite"],
    ),
    "huge integer": (
        _text(
            "/v1/decisions",
            lambda s: json.dumps(_request(s, features=_features(s, chist="@"))).replace(
                '"@"', "1" + "0" * 400
            ),
        ),
        422,
        ["chist", "too large"],
    ),
    "lone surrogate in a category": (
        _text(
            "/v1/decisions",
            lambda s: json.dumps(_request(s, features=_features(s, phist="@"))).replace(
                '"@"', '"\\ud800"'
            ),
        ),
        422,
        ["phist", "not one of"],
    ),
    "out-of-domain category": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, phist="maybe"))),
        422,
        ["phist", "maybe"],
    ),
    "null in a non-nullable feature": (
        _json("/v1/decisions", lambda s: _request(s, features=_features(s, mhist=None))),
        422,
        ["mhist", "null"],
    ),
    "missing subject_id": (
        _json(
            "/v1/decisions", lambda s: {k: v for k, v in _request(s).items() if k != "subject_id"}
        ),
        422,
        ["subject_id", "missing"],
    ),
    "unknown field": (
        _json("/v1/decisions", lambda s: {**_request(s), "feature": {}}),
        422,
        ["unknown field", "feature"],
    ),
    "pii and sensitive clash": (
        _json(
            "/v1/decisions",
            lambda s: _request(s, pii={"sensitive": {}}, sensitive={"afam": "no"}),
        ),
        422,
        ["sensitive"],
    ),
    "body is a list": (_raw("/v1/decisions", b"[1, 2]"), 422, ["JSON object"]),
    "malformed JSON": (_raw("/v1/decisions", b'{"model": "x",'), 400, ["malformed JSON"]),
    "empty body": (_raw("/v1/decisions", b""), 400, ["empty"]),
    "not UTF-8": (_raw("/v1/decisions", b'{"model": "\xff"}'), 400, ["UTF-8"]),
    "oversized body": (
        _raw("/v1/decisions", b'{"pad": "' + b"x" * 1_100_000 + b'"}'),
        413,
        ["limit", "1,048,576"],
    ),
    "oversized body without Content-Length": (
        lambda s: s.client.post(
            "/v1/decisions",
            content=(b"x" * 65536 for _ in range(20)),
            headers={"Content-Type": "application/json", **s.auth("scorer")},
        ),
        413,
        ["exceeds the limit"],
    ),
    "wrong content type": (
        _raw("/v1/decisions", b"model=x", "application/x-www-form-urlencoded"),
        415,
        ["Content-Type", "application/json"],
    ),
    "empty applications list": (
        _json("/v1/decisions:batch", lambda s: _batch(s, [])),
        422,
        ["applications", "at least 1"],
    ),
    "too many applications": (
        _json(
            "/v1/decisions:batch",
            lambda s: _batch(s, [{"subject_id": "x", "features": s.rows[0]}] * 1001),
        ),
        422,
        ["applications", "at most 1000"],
    ),
    "one bad application in a batch": (
        _json(
            "/v1/decisions:batch",
            lambda s: _batch(
                s,
                [
                    {"subject_id": "ok", "features": s.rows[0]},
                    {"subject_id": "bad", "features": _features(s, insurance="perhaps")},
                ],
            ),
        ),
        422,
        ["application 1", "insurance", "perhaps"],
    ),
    "NaN in a batch application": (
        _json(
            "/v1/decisions:batch",
            lambda s: _batch(
                s,
                [
                    {"subject_id": "ok", "features": s.rows[0]},
                    {"subject_id": "bad", "features": _features(s, unemp=math.nan)},
                ],
            ),
        ),
        422,
        ["application 1", "unemp", "NaN"],
    ),
    "batch with an unknown model": (
        _json(
            "/v1/decisions:batch",
            lambda s: {**_batch(s, [{"subject_id": "x", "features": s.rows[0]}]), "model": "nope"},
        ),
        404,
        ["no registered model", "nope"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_and_records_nothing(served: Any, case: str) -> None:
    send, status, words = BAD_INPUT[case]
    before = served.size
    r = send(served)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert list(r.json()) in (["error"], ["error", "violations"]) and error
    for word in words:
        assert word in error, (word, error)
    if "violations" in r.json():  # an input contract's refusal: every broken rule, as JSON
        assert r.json()["violations"] and all(
            v["message"] in error for v in r.json()["violations"][:5]
        )
    assert served.size == before


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["pirat", "lvrat", "chist", "phist", "hschool", "afam"]),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.sampled_from([10**400, -(10**400), 1e308, -1e308, 2**53 + 1]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
        st.sampled_from(["yes", "no"]),
    ),
)
def test_any_feature_value_is_decided_or_refused_cleanly(
    served: Any, name: str, value: Any
) -> None:
    before = served.size
    r = served.post_json(
        "/v1/decisions", _request(served, features=_features(served, **{name: value}))
    )
    assert r.status_code in (201, 422), r.text
    written = 0 if r.status_code == 422 else 1 + (r.json()["outcome"] == "deny")
    assert served.size == before + written  # a denial comes with its recourse event
    if r.status_code == 422:
        assert name in r.json()["error"]


# -- reading and later events ----------------------------------------------------------------


def test_show_outcome_and_reviews(served: Any) -> None:
    decision_id = served.decide(pii={"name": "D"})
    r = served.client.get(f"/v1/decisions/{decision_id}", headers=served.auth("auditor"))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["id"] == decision_id and shown["type"] == "decision"
    later = [e for e in shown["events"] if e["type"] != "recourse"]  # a denial's recourse
    assert shown["body"]["pii"] == {"name": "D"} and later == []
    assert len(shown["events"]) == (shown["body"]["outcome"] == "deny")
    original = shown["body"]["outcome"]
    flipped = "approve" if original == "deny" else "deny"

    observed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    r = served.post_json(
        f"/v1/decisions/{decision_id}/outcome", {"observed": "deny", "observed_at": observed_at}
    )
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "outcome" and r.json()["decision_id"] == decision_id
    r = served.post_json(
        f"/v1/decisions/{decision_id}/reviews",
        {"kind": "contest", "reason": "the applicant disputes it"},
    )
    assert r.status_code == 201, r.text
    r = served.post_json(
        f"/v1/decisions/{decision_id}/reviews",
        {"kind": "override", "reason": "income verified", "outcome": flipped},
        role="approver",
    )
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "override"

    shown = served.client.get(f"/v1/decisions/{decision_id}", headers=served.auth("auditor")).json()
    assert shown["effective_outcome"] == flipped
    events = [e for e in shown["events"] if e["type"] != "recourse"]
    kinds = [(e["type"], e["body"].get("kind")) for e in events]
    assert kinds == [("outcome", None), ("review", "contest"), ("review", "override")]
    outcome = events[0]["body"]
    assert outcome["observed_at"] == observed_at
    assert outcome["source"] is None and outcome["recorded_by"] == "loan-frontend"
    assert events[1]["body"]["reviewer"] == "loan-frontend"
    assert events[2]["body"]["reviewer"] == "credit-officer"
    assert shown["status"] == "overridden"


def test_trace(registered: Any) -> None:
    served = registered  # the lineage the pipeline recorded in the real registry
    decision_id = served.decide()
    r = served.client.get(f"/v1/decisions/{decision_id}/trace", headers=served.auth("auditor"))
    assert r.status_code == 200, r.text
    trace = r.json()
    assert trace["decision"]["id"] == decision_id
    assert trace["model"]["lineage_id_matches"] is True
    assert trace["training_run"]["mlflow_run_id"]
    assert {d["name"] for d in trace["data"]} >= {"raw", "train", "test"}
    assert trace["code"]["git_commit"]


def test_proof_verifies(served: Any) -> None:
    decision_id = served.decide()
    r = served.client.get(f"/v1/decisions/{decision_id}/proof", headers=served.auth("auditor"))
    assert r.status_code == 200, r.text
    proof = r.json()
    assert proof["id"] == decision_id and proof["verified"] is True
    assert proof["tree_size"] > proof["seq"]
    assert verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        proof["leaf_index"],
        proof["tree_size"],
        [bytes.fromhex(p) for p in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )


def test_find(served: Any) -> None:
    ids = [
        served.service.decide(
            MODEL, served.rows[i], alias=ALIAS, subject_id="find-me", purpose="find"
        ).decision_id
        for i in range(3)
    ]
    auditor = served.auth("auditor")
    r = served.client.get("/v1/decisions", params={"subject_id": "find-me"}, headers=auditor)
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()["decisions"]] == ids
    assert r.json()["next_offset"] is None
    page = served.client.get(
        "/v1/decisions", params={"subject_id": "find-me", "limit": 2, "offset": 1}, headers=auditor
    ).json()
    assert [d["id"] for d in page["decisions"]] == ids[1:] and page["next_offset"] == 3
    first = served.service.ledger.get(ids[0])
    r = served.client.get(
        "/v1/decisions",
        params={"model": MODEL, "version": "1", "since": first.ts, "limit": 1000},
        headers=auditor,
    )
    assert r.status_code == 200
    found = [d["id"] for d in r.json()["decisions"]]
    assert found[:3] == ids and all(d["type"] == "decision" for d in r.json()["decisions"])
    r = served.client.get(
        "/v1/decisions", params={"subject_id": "find-me", "until": first.ts}, headers=auditor
    )
    assert r.json()["decisions"] == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"since": "yesterday"}, ["since", "ISO 8601"]),
        ({"since": "2026-01-01T00:00:00"}, ["time zone"]),
        ({"since": "0001-01-01T00:00:00+01:00"}, ["since", "outside the years 1 to 9999"]),
        ({"until": "9999-12-31T23:59:59-01:00"}, ["until", "outside the years 1 to 9999"]),
        ({"version": "1"}, ["version", "model"]),
        ({"limit": 0}, ["limit"]),
        ({"limit": "many"}, ["limit", "integer"]),
        ({"offset": -1}, ["offset"]),
    ],
)
def test_find_refuses_bad_filters(served: Any, params: dict[str, Any], words: list[str]) -> None:
    r = served.client.get("/v1/decisions", params=params, headers=served.auth("auditor"))
    assert r.status_code == 422, r.text
    for word in words:
        assert word in r.json()["error"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/trace", None),
        ("GET", "/proof", None),
        ("POST", "/outcome", {"observed": "deny"}),
        ("POST", "/reviews", {"kind": "contest", "reason": "why"}),
    ],
)
def test_unknown_decision_is_404(
    served: Any, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    before = served.size
    missing = "01a200a8-41d2-788e-864a-000000000000"
    r = served.client.request(
        method,
        f"/v1/decisions/{missing}{suffix}",
        json=body,
        headers=served.auth("admin"),
    )
    assert r.status_code == 404, r.text
    assert missing in r.json()["error"]
    assert served.size == before


def test_event_id_is_not_a_decision(served: Any) -> None:
    decision_id = served.decide()
    event = served.service.record_outcome(decision_id, "deny")
    r = served.client.get(f"/v1/decisions/{event.id}", headers=served.auth("auditor"))
    assert r.status_code == 404 and "not a decision" in r.json()["error"]


@pytest.mark.parametrize(
    ("suffix", "body", "words"),
    [
        ("/outcome", {"observed": "maybe"}, ["outcome", "maybe"]),
        ("/outcome", {"observed": "deny", "observed_at": "2027-05-01T00:00:00"}, ["time zone"]),
        (
            "/outcome",
            {"observed": "deny", "observed_at": "0001-01-01T00:00:00+01:00"},
            ["observed_at", "outside the years 1 to 9999"],
        ),
        (  # the year written in 4 digits: the check reads it back as a time
            "/outcome",
            {"observed": "deny", "observed_at": "0001-01-01T00:00:00Z"},
            ["0001-01-01T00:00:00.000000Z is before the decision was made"],
        ),
        ("/outcome", {}, ["observed", "missing"]),
        ("/reviews", {"kind": "override", "reason": "x"}, ["override", "outcome"]),
        ("/reviews", {"kind": "appeal", "reason": "x"}, ["kind", "review"]),
        ("/reviews", {"kind": "review", "reason": ""}, ["reason"]),
        ("/reviews", {"kind": "review", "reason": "x", "outcome": "maybe"}, ["maybe"]),
    ],
)
def test_bad_events_are_refused(
    served: Any, suffix: str, body: dict[str, Any], words: list[str]
) -> None:
    decision_id = served.decide()
    before = served.size
    r = served.post_json(f"/v1/decisions/{decision_id}{suffix}", body, role="admin")
    assert r.status_code == 422, r.text
    for word in words:
        assert word in r.json()["error"]
    assert served.size == before


# -- ledger, operations, OpenAPI -------------------------------------------------------------


def test_verify_and_checkpoint(served: Any) -> None:
    served.decide()
    r = served.client.get("/v1/ledger/verify", headers=served.auth("auditor"))
    assert r.status_code == 200
    result = r.json()
    assert result["ok"] is True and result["first_bad"] is None and result["reason"] is None
    assert result["records"] == served.size
    r = served.client.post("/v1/ledger/checkpoints", headers=served.auth("admin"))
    assert r.status_code == 201, r.text
    cp = r.json()
    assert cp["size"] == served.size and len(cp["signature"]) == 128
    assert {"origin", "root", "timestamp", "key_id"} <= cp.keys()


def test_no_dependency_runs_in_the_thread_pool(served: Any) -> None:
    # FastAPI runs every plain-def dependency in its thread pool: one thread hop each per
    # request (three of them cost /invocations a third of its requests/s). Only endpoints that
    # wait on the ledger belong there.
    def sync_calls(dependant: Any) -> list[str]:
        found = []
        for d in dependant.dependencies:
            call = d.call
            target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
            if not inspect.iscoroutinefunction(target):
                found.append(getattr(call, "__qualname__", repr(call)))
            found += sync_calls(d)
        return found

    def flat(routes: list[Any]) -> list[Any]:  # included routers hold their own routes
        out = []
        for r in routes:
            inner = getattr(r, "original_router", None)
            out += flat(inner.routes) if inner is not None else [r]
        return out

    routes = [r for r in flat(served.client.app.routes) if hasattr(r, "dependant")]
    assert len(routes) > 30
    offenders = {f"{r.path}: {name}" for r in routes for name in sync_calls(r.dependant)}
    assert not offenders, sorted(offenders)


def test_healthz_needs_no_key(served: Any) -> None:
    r = served.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "ledger_records": served.size,
        "model": MODEL,
        "alias": ALIAS,
    }


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics(served: Any) -> None:
    r = served.client.post("/v1/decisions", json=_request(served), headers=served.auth("scorer"))
    outcome = r.json()["outcome"]
    served.client.post("/v1/ledger/checkpoints", headers=served.auth("admin"))
    r = served.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(r.text)
    key = f'governance_decisions_total{{model="{MODEL}",version="1",outcome="{outcome}"}}'
    assert samples[key] >= 1
    assert samples["governance_ledger_records"] == served.size
    assert 0 <= samples["governance_checkpoint_age_seconds"] < 60
    assert samples["governance_ledger_up"] == 1
    count = samples['governance_decision_latency_seconds_count{endpoint="decisions"}']
    assert (
        samples['governance_decision_latency_seconds_bucket{endpoint="decisions",le="+Inf"}']
        == count
    )
    assert "# TYPE governance_decision_latency_seconds histogram" in r.text


def test_errors_have_one_shape(served: Any) -> None:
    r = served.client.get("/v1/nothing-here")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]
    r = served.client.get("/v1/decisions:batch", headers=served.auth("admin"))
    assert r.status_code == 405 and list(r.json()) == ["error"]


def test_openapi_documents_requests_and_auth(served: Any) -> None:
    r = served.client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    paths = spec["paths"]
    assert set(paths) >= {
        "/v1/decisions",
        "/v1/decisions:batch",
        "/invocations",
        "/v1/decisions/{decision_id}",
        "/v1/decisions/{decision_id}/trace",
        "/v1/decisions/{decision_id}/proof",
        "/v1/decisions/{decision_id}/outcome",
        "/v1/decisions/{decision_id}/reviews",
        "/v1/ledger/verify",
        "/v1/ledger/checkpoints",
        "/healthz",
        "/metrics",
    }
    schemas = spec["components"]["schemas"]
    for name in ("DecisionRequest", "BatchRequest", "InvocationsRequest", "DecisionResponse"):
        assert name in schemas
    assert schemas["DecisionRequest"]["examples"]
    assert schemas["DecisionRequest"]["properties"]["features"]["description"]
    post = paths["/v1/decisions"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/DecisionRequest"
    assert post["security"] == [{"ApiKey": []}]
    assert "422" in post["responses"] and "201" in post["responses"]
    assert "text/csv" in paths["/invocations"]["post"]["requestBody"]["content"]
    assert paths["/invocations"]["post"]["security"] == [{"ApiKey": []}]
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    # every $ref resolves
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"].rsplit("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    assert refs <= set(schemas)
