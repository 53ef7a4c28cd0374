"""API keys: the key store on disk, and the role matrix of every endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from governance.service import KeyStore, KeyStoreError, Principal
from governance.service.deps import bearer, bearer_token

MODEL = "mortgage-denial"
ALIAS = "candidate"

# -- KeyStore --------------------------------------------------------------------------------


def test_only_hashes_on_disk_mode_0600(tmp_path: Path) -> None:
    store = KeyStore.for_home(tmp_path / "home")
    key = store.create("loan-frontend", "scorer")
    other = store.create("audit", "auditor")
    assert key.startswith("gov_") and len(key) >= 40 and key != other
    path = tmp_path / "home" / "keys" / "api_keys.json"
    assert store.path == path
    data = path.read_bytes()
    for secret in (key, other, key[4:], other[4:]):
        assert secret.encode() not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(data)
    assert [(k["name"], k["role"]) for k in doc["keys"]] == [
        ("loan-frontend", "scorer"),
        ("audit", "auditor"),
    ]
    assert all(len(k["sha256"]) == 64 and k["created"].endswith("Z") for k in doc["keys"])
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_authenticate(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    assert store.authenticate("gov_anything") is None  # no file: no keys
    key = store.create("officer", "approver")
    assert store.authenticate(key) == Principal("officer", "approver")
    assert store.authenticate(key) == ("officer", "approver", "")
    assert store.authenticate(key).who == "officer"  # no person given: the key's name
    rivera = store.create("rivera", "approver", person="J. Rivera")
    assert store.authenticate(rivera) == ("rivera", "approver", "J. Rivera")
    assert store.authenticate(rivera).who == "J. Rivera"
    assert [e.person for e in store.entries()] == ["", "J. Rivera"]
    with pytest.raises(KeyStoreError, match="invalid person"):
        store.create("forger", "approver", person="J. Rivera\napproved: yes")
    for wrong in (key + "x", key[:-1], "", None, "gov_" + "a" * 43, "x" * 10_000):
        assert store.authenticate(wrong) is None


def test_new_and_revoked_keys_take_effect_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    serving, cli = KeyStore(path), KeyStore(path)
    first = cli.create("a", "scorer")
    assert serving.authenticate(first) == ("a", "scorer", "")
    second = cli.create("b", "admin")  # another process adds a key
    assert serving.authenticate(second) == ("b", "admin", "")
    assert cli.revoke("a") is True and cli.revoke("a") is False
    assert serving.authenticate(first) is None
    assert serving.authenticate(second) == ("b", "admin", "")
    assert [k.name for k in serving.entries()] == ["b"]


@pytest.mark.parametrize(
    ("name", "role", "words"),
    [
        ("x", "superuser", ["unknown role", "superuser"]),
        ("", "scorer", ["invalid key name"]),
        ("has space", "scorer", ["invalid key name"]),
        ("dup", "scorer", ["already exists"]),
    ],
)
def test_create_refuses(tmp_path: Path, name: str, role: str, words: list[str]) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.create("dup", "auditor")
    with pytest.raises(KeyStoreError) as info:
        store.create(name, role)
    for word in words:
        assert word in str(info.value)
    assert [k.name for k in store.entries()] == ["dup"]


def test_malformed_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="malformed"):
        KeyStore(path).authenticate("gov_x")
    path.write_text(json.dumps({"format": "governance.api_keys/1", "keys": [{"name": "x"}]}))
    with pytest.raises(KeyStoreError, match="malformed"):
        KeyStore(path).authenticate("gov_x")


def test_keys_dir_is_private_when_created(tmp_path: Path) -> None:
    KeyStore.for_home(tmp_path / "home").create("k", "admin")
    mode = stat.S_IMODE(os.stat(tmp_path / "home" / "keys").st_mode)
    assert mode & 0o077 == 0


# -- role matrix -----------------------------------------------------------------------------

Send = Callable[[Any, dict[str, str], str], Any]


def _post(path: str, body: Callable[[Any], Any] | None = None) -> Send:
    def send(served: Any, headers: dict[str, str], decision_id: str) -> Any:
        url = path.format(id=decision_id)
        if body is None:
            return served.client.post(url, headers=headers)
        return served.client.post(url, json=body(served), headers=headers)

    return send


def _get(path: str, **params: Any) -> Send:
    def send(served: Any, headers: dict[str, str], decision_id: str) -> Any:
        return served.client.get(path.format(id=decision_id), params=params, headers=headers)

    return send


def _decision(served: Any) -> dict[str, Any]:
    return {"model": MODEL, "alias": ALIAS, "subject_id": "m", "features": served.rows[0]}


def _batch(served: Any) -> dict[str, Any]:
    return {"applications": [{"subject_id": "m", "features": served.rows[0]}]}


# endpoint -> (request, roles that may call it besides admin, success status); None: no auth
ENDPOINTS: dict[str, tuple[Send, tuple[str, ...] | None, int]] = {
    "POST /v1/decisions": (_post("/v1/decisions", _decision), ("scorer",), 201),
    "POST /v1/decisions:batch": (_post("/v1/decisions:batch", _batch), ("scorer",), 201),
    "POST /invocations": (
        _post("/invocations", lambda s: {"instances": [s.rows[0]]}),
        ("scorer",),
        200,
    ),
    "POST outcome": (
        _post("/v1/decisions/{id}/outcome", lambda s: {"observed": "deny"}),
        ("scorer",),
        201,
    ),
    "POST review": (
        _post("/v1/decisions/{id}/reviews", lambda s: {"kind": "review", "reason": "ok"}),
        ("approver",),
        201,
    ),
    "POST override": (
        _post(
            "/v1/decisions/{id}/reviews",
            lambda s: {"kind": "override", "reason": "ok", "outcome": "approve"},
        ),
        ("approver",),
        201,
    ),
    "POST contest": (
        _post("/v1/decisions/{id}/reviews", lambda s: {"kind": "contest", "reason": "unfair"}),
        ("scorer", "approver"),
        201,
    ),
    "GET decision": (_get("/v1/decisions/{id}"), ("auditor", "approver"), 200),
    "GET trace": (_get("/v1/decisions/{id}/trace"), ("auditor", "approver"), 200),
    "GET proof": (_get("/v1/decisions/{id}/proof"), ("auditor",), 200),
    "GET find": (_get("/v1/decisions", subject_id="m"), ("auditor",), 200),
    "GET verify": (_get("/v1/ledger/verify"), ("auditor",), 200),
    "POST checkpoints": (_post("/v1/ledger/checkpoints"), (), 201),
    "GET healthz": (_get("/healthz"), None, 200),
    "GET metrics": (_get("/metrics"), None, 200),
    "GET openapi": (_get("/openapi.json"), None, 200),
}
CALLERS = ("no key", "bad key", "scorer", "auditor", "approver", "admin")


def _expected(roles: tuple[str, ...] | None, ok: int, caller: str) -> int:
    if roles is None:
        return ok
    if caller in ("no key", "bad key"):
        return 401
    return ok if caller in (*roles, "admin") else 403


MATRIX = [
    pytest.param(endpoint, caller, _expected(roles, ok, caller), id=f"{endpoint}-{caller}")
    for endpoint, (_, roles, ok) in ENDPOINTS.items()
    for caller in CALLERS
]


@pytest.fixture(scope="module")
def matrix_decision(served: Any) -> str:
    return served.decide()


@pytest.mark.parametrize(("endpoint", "caller", "status"), MATRIX)
def test_role_matrix(
    served: Any, matrix_decision: str, endpoint: str, caller: str, status: int
) -> None:
    send, roles, _ = ENDPOINTS[endpoint]
    if caller == "no key":
        headers: dict[str, str] = {}
    elif caller == "bad key":
        headers = {"Authorization": "Bearer gov_not-a-real-key"}
    else:
        headers = served.auth(caller)
    before = served.size
    r = send(served, headers, matrix_decision)
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in r.json()["error"]
    if status == 403:
        error = r.json()["error"]
        assert caller in error and "admin" in error
        for role in roles or ():
            assert role in error
    if status >= 400:
        assert served.size == before


@pytest.mark.parametrize("path", ["/v1/ledger/verify", "/invocations"])
def test_basic_auth_is_not_an_api_key(served: Any, path: str) -> None:
    headers = {"Authorization": "Basic dXNlcjpwdw=="}
    before = served.size
    if path == "/invocations":
        r = served.client.post(path, json={"instances": [served.rows[0]]}, headers=headers)
    else:
        r = served.client.get(path, headers=headers)
    assert r.status_code == 401 and "missing API key" in r.json()["error"]
    assert served.size == before


@given(
    st.one_of(
        st.none(),
        st.text(alphabet=st.sampled_from(" \tBbeEaArRsic:gov_x"), max_size=14),
        st.builds(
            lambda scheme, gap, token: f"{scheme}{gap}{token}",
            st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
            st.sampled_from(["", " ", "  ", "\t", " \t "]),
            st.text(alphabet=st.sampled_from("gov_xy \t"), max_size=8),
        ),
    )
)
def test_bearer_token_reads_the_header_as_httpbearer_does(header: str | None) -> None:
    """``/invocations`` reads its key with ``bearer_token``; every other route with FastAPI's
    ``HTTPBearer``. Both must take the same token from any header."""
    headers = [] if header is None else [(b"authorization", header.encode())]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": headers})
    credentials = asyncio.run(bearer(request))
    assert bearer_token(request) == (None if credentials is None else credentials.credentials)


def test_callers_are_recorded_by_key_name(served: Any) -> None:
    r = served.client.post("/v1/decisions", json=_decision(served), headers=served.auth("scorer"))
    decision_id = r.json()["decision_id"]
    assert served.service.ledger.get(decision_id).body["caller"] == "loan-frontend"
