"""No unaudited path: the registered pyfunc under the real ``mlflow models serve``.

The seed tutorials' way of serving (``mlflow models serve -m models:/mortgage-denial/1
--env-manager local`` and a ``dataframe_split`` curl) answers 200 with predictions and
explanations, and the ledger grows by exactly the number of rows, each a decision record like
the HTTP service's. Input the version's contract forbids is a 400 and writes nothing. With
``GOVERNANCE_PYFUNC_LEDGER=off`` nothing is recorded and every answer says so.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from support import REPO, cli_env, free_port

from governance.settings import Settings

MODEL = "mortgage-denial"
STARTUP_SECONDS = 180.0
COLUMNS = [
    "pirat", "hirat", "lvrat", "chist", "mhist", "phist",
    "unemp", "selfemp", "insurance", "condomin", "hschool",
]  # fmt: skip


@contextmanager
def mlflow_serve(root: Path, settings: Settings, **env: str) -> Iterator[str]:
    """``mlflow models serve`` on version 1, from the project directory; yields its URL."""
    port = free_port()
    environ = {**cli_env(root), "MLFLOW_TRACKING_URI": settings.mlflow_uri, **env}
    proc = subprocess.Popen(
        [
            str(REPO / ".venv/bin/mlflow"),
            *("models", "serve", "-m", f"models:/{MODEL}/1", "--env-manager", "local"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=root,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mlflow models serve exited: {proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            time.sleep(0.3)  # polling for readiness, not ordering anything under test
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def rows(trained: tuple[Path, Settings]) -> list[list[Any]]:
    test = pd.read_csv(trained[0] / "data/split/test.csv").head(3)
    return json.loads(test[COLUMNS].to_json(orient="values"))


_VIEW = """
import json, sys
from pathlib import Path
from governance.ledger import Ledger
url, home, subject, *ids = sys.argv[1:]
with Ledger.open(url, home=Path(home)) as ledger:
    records = {i: ledger.get(i) for i in ids}
    print(json.dumps({
        "size": ledger.size(),
        "subject_key": ledger.subject_key(subject) if subject else None,
        "records": {
            i: None if r is None else {"type": r.type, "ts": r.ts, "body": r.body}
            for i, r in records.items()
        },
    }))
"""


def _view(settings: Settings, *ids: str, subject: str = "") -> dict[str, Any]:
    """The ledger's size and some records, read by a fresh process.

    Read in another process, as an auditor's tool would: this session's process has held
    connections to the shared project's ledger since its first test, and this test is about
    what another process (the MLflow server) wrote.
    """
    args = [settings.ledger_url, str(settings.home), subject, *ids]
    proc = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-c", _VIEW, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    view: dict[str, Any] = json.loads(proc.stdout)
    return view


def _size(settings: Settings) -> int:
    return int(_view(settings)["size"])


@pytest.mark.slow
def test_mlflow_models_serve_records_every_prediction(
    trained: tuple[Path, Settings], rows: list[list[Any]]
) -> None:
    root, settings = trained
    with mlflow_serve(root, settings) as url:
        before = _size(settings)
        # the seed tutorials' curl, unchanged
        answer = httpx.post(
            f"{url}/invocations",
            json={"dataframe_split": {"columns": COLUMNS, "data": rows}},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert len(predictions) == 3
        denials = sum(p["outcome"] == "deny" for p in predictions)
        # exactly one decision per row (and, per denial, its linked recourse event)
        view = _view(settings, *(p["decision_id"] for p in predictions))
        assert view["size"] == before + 3 + denials, predictions
        for p in predictions:
            assert p["recorded"] == "ledger"
            assert json.loads(p["explanation"])["contributions"]
            record = view["records"][p["decision_id"]]
            assert record is not None and record["type"] == "decision"
            body = record["body"]
            assert body["model"]["name"] == MODEL and body["model"]["version"] == "1"
            assert body["caller"] == "mlflow-pyfunc" and body["outcome"] == p["outcome"]
            assert body["score"] == p["score"]
            reasons = [r["reason"] for r in body["reasons"]]
            assert json.loads(p["reasons"]) == reasons
            assert (body["outcome"] == "approve") == (reasons == [])
        since = view["records"][predictions[0]["decision_id"]]["ts"]
        found = subprocess.run(
            [
                str(REPO / ".venv/bin/governance"),
                *("audit", "find", "--model", MODEL, "--version", "1"),
                *("--since", since, "--limit", "1000", "--json"),
            ],
            cwd=root,
            env=cli_env(root),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert found.returncode == 0, found.stderr
        ids = {r["id"] for r in json.loads(found.stdout)}
        assert {p["decision_id"] for p in predictions} <= ids

        # request params carry subject ids and purpose
        with_params = httpx.post(
            f"{url}/invocations",
            json={
                "dataframe_split": {"columns": COLUMNS, "data": rows[:1]},
                "params": {"purpose": "tutorial check", "subject_ids": ["A-9"]},
            },
            timeout=120,
        )
        assert with_params.status_code == 200, with_params.text
        decision_id = with_params.json()["predictions"][0]["decision_id"]
        view = _view(settings, decision_id, subject="A-9")
        body = view["records"][decision_id]["body"]
        assert body["purpose"] == "tutorial check"
        assert body["subject_key"] == view["subject_key"]

        # impossible input: 400 naming the bound, nothing recorded
        bad = [list(r) for r in rows]
        bad[1][COLUMNS.index("pirat")] = -5.0
        size = _size(settings)
        refused = httpx.post(
            f"{url}/invocations",
            json={"dataframe_split": {"columns": COLUMNS, "data": bad}},
            timeout=120,
        )
        assert refused.status_code == 400, refused.text
        assert "row 1: feature 'pirat' = -5.0 is below the hard minimum 0" in refused.text
        assert _size(settings) == size


@pytest.mark.slow
def test_serving_without_the_ledger_is_explicit_and_said_out_loud(
    trained: tuple[Path, Settings], rows: list[list[Any]]
) -> None:
    root, settings = trained
    with mlflow_serve(root, settings, GOVERNANCE_PYFUNC_LEDGER="off") as url:
        before = _size(settings)
        answer = httpx.post(
            f"{url}/invocations",
            json={"dataframe_split": {"columns": COLUMNS, "data": rows}},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        for p in answer.json()["predictions"]:
            assert p["recorded"] == "off (GOVERNANCE_PYFUNC_LEDGER=off): not recorded"
            assert p["decision_id"] == ""
        assert _size(settings) == before
