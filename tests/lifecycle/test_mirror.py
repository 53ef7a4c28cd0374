"""The MLflow mirror of the decision ledger (issue 6, acceptance 4).

The mirror is checked against the ledger itself (every decision of the version, its effective
outcome from its review events, its last observed outcome), never against the mirror's own
bookkeeping. MLflow being down is real: a tracking server in a child process over the session
project's SQLite store, stopped and started again; the decision path keeps deciding while it is
down, and the mirror fails clearly, records nothing, and catches up once it is back.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from support import free_port

from governance.core.dataset import load_spec, read_csv
from governance.core.training import model_inputs
from governance.decisions.reviews import effective_outcome, review_status
from governance.decisions.service import DecisionService
from governance.ledger import Ledger, Record
from governance.lifecycle import mirror
from governance.lifecycle.mirror import scanning
from governance.registry.mlflow import ModelCache, tracking
from governance.settings import Settings

MODEL = "mortgage-denial"
VERSION = "1"
PART = 250  # small parts, so a few hundred decisions span several files
LATENCY_N = 200


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GOVERNANCE_EXPLORER_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    # MLflow's HTTP client otherwise retries a dead server for minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


# -- oracles: the ledger, read directly ------------------------------------------------------


def _find_all(ledger: Ledger, **filters: Any) -> list[Record]:
    out: list[Record] = []
    while page := ledger.find(limit=10_000, offset=len(out), **filters):
        out += page
    return out


def _expected(settings: Settings) -> pd.DataFrame:
    """Every decision of the version with its effective and observed outcome, from the ledger."""
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        rows = []
        for d in _find_all(ledger, model=MODEL, version=VERSION, type="decision"):
            events = ledger.events_for(d.id)
            observed = [e.body["observed"] for e in events if e.type == "outcome"]
            rows.append(
                {
                    "decision_id": d.id,
                    "seq": d.seq,
                    "outcome": d.body["outcome"],
                    "effective_outcome": effective_outcome(d, events),
                    "status": review_status(events),
                    "top_reason": (d.body["reasons"] or [{}])[0].get("reason"),
                    "main_factor": (d.body.get("main_factors") or [{}])[0].get("factor"),
                    "observed": observed[-1] if observed else None,
                    "score": d.body["score"],
                    "adverse": d.body["score"] >= d.body["threshold"],
                    "purpose": d.body["purpose"],
                    "subject_key": d.body.get("subject_key"),
                    "hash": d.hash,
                }
            )
    frame = pd.DataFrame(rows)
    return frame.astype(object).where(frame.notna(), None)


def _mirrored(settings: Settings) -> tuple[dict[str, Any], pd.DataFrame]:
    index, table = mirror.read_mirror(settings, MODEL, VERSION)
    return index, table.astype(object).where(table.notna(), None)


def _assert_mirror_matches_ledger(settings: Settings) -> tuple[dict[str, Any], pd.DataFrame]:
    index, table = _mirrored(settings)
    expected = _expected(settings)
    assert table["decision_id"].tolist() == expected["decision_id"].tolist()
    columns = ("seq", "outcome", "effective_outcome", "status", "observed", "purpose", "hash")
    for column in (*columns, "top_reason", "main_factor"):
        assert table[column].tolist() == expected[column].tolist(), column
    assert table["score"].astype(float).tolist() == pytest.approx(expected["score"].tolist())
    prefixes = [k[: mirror.SUBJECT_PREFIX] if k else None for k in expected["subject_key"]]
    assert table["subject"].tolist() == prefixes
    assert index["totals"]["count"] == len(expected)
    assert index["totals"]["adverse"] == int(expected["adverse"].astype(bool).sum())
    return index, table


def _run(settings: Settings) -> Any:
    with tracking(settings) as client:
        run_id = client.get_model_version(MODEL, VERSION).run_id
        return client.get_run(run_id)


def _artifact_dir(settings: Settings) -> Path:
    uri = _run(settings).info.artifact_uri
    assert uri.startswith("file://")
    return Path(urlsplit(uri).path) / mirror.TABLE_DIR


def _score_test_split(root: Path, settings: Settings, purpose: str) -> list[str]:
    frame = read_csv(root / "data" / "split" / "test.csv")
    ids: list[str] = []
    with DecisionService.open(settings) as service:
        for _, receipts, _, _ in service.score_frame(
            MODEL, frame, subject_column="application_id", alias="candidate", purpose=purpose
        ):
            ids += [r.id for r in receipts]
    assert len(ids) == len(frame)
    return ids


def _rows(root: Path, n: int) -> list[dict[str, Any]]:
    frame = read_csv(root / "data" / "split" / "test.csv")
    inputs = model_inputs(frame, load_spec("hmda"))
    records = inputs.astype(object).where(inputs.notna(), None).to_dict(orient="records")
    return [records[i % len(records)] for i in range(n)]


# -- the mirror holds the ledger's decisions -------------------------------------------------


def test_mirror_holds_a_scored_batch_adds_nothing_twice_then_adds_the_new(
    trained: tuple[Path, Settings],
) -> None:
    root, settings = trained
    purpose = f"mirror-batch-{uuid.uuid4().hex[:8]}"
    batch = _score_test_split(root, settings, purpose)

    first = mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)
    assert first["status"] == "updated" and first["wrote"]
    index, table = _assert_mirror_matches_ledger(settings)
    assert set(batch) <= set(table["decision_id"])
    assert (table["purpose"] == purpose).sum() == len(batch)
    assert list(table.columns) == list(mirror.COLUMNS)
    total = len(table)
    assert first["rows"] == total and index["cursor"] == first["cursor"]
    sizes = [p["rows"] for p in index["parts"]]
    assert len(sizes) == math.ceil(total / PART) and set(sizes[:-1]) <= {PART}
    assert [p["file"] for p in index["parts"]] == [
        f"decisions/decisions-{i:05d}.json" for i in range(1, len(sizes) + 1)
    ]

    # what the MLflow UI shows: metrics and tags on the run, the explorer link on the version
    run = _run(settings)
    expected = _expected(settings)
    assert run.data.metrics["decisions.count"] == total
    adverse_rate = expected["adverse"].astype(bool).mean()
    assert run.data.metrics["decisions.adverse_rate"] == pytest.approx(adverse_rate)
    assert run.data.tags[mirror.TAG_SEQ] == str(first["cursor"]["seq"])
    assert run.data.tags[mirror.TAG_ROWS] == str(total)
    tables = json.loads(run.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "decisions/decisions-00001.json", "type": "table"} in tables
    with tracking(settings) as client:
        version_tags = client.get_model_version(MODEL, VERSION).tags
    assert version_tags[mirror.TAG_EXPLORER] == (
        "http://127.0.0.1:8080/ui/models/mortgage-denial/versions/1"
    )
    assert version_tags[mirror.TAG_VERSION_COUNT] == str(total)
    with tracking(settings) as client:
        description = client.get_model_version(MODEL, VERSION).description
    assert (
        "[this version's decisions](http://127.0.0.1:8080/ui/models/mortgage-denial/versions/1)"
        in (description)
    )
    local = mirror.local_state(settings, MODEL, VERSION)
    assert local is not None and local["cursor"] == first["cursor"] and local["rows"] == total

    # no inputs, no raw subject ids: only the subject key's prefix; feature names appear only
    # where a decision flagged them out of distribution (names, not values)
    others = table.drop(columns=["out_of_distribution"]).astype(str)
    assert not others.apply(lambda c: c.str.contains("pirat|lvrat")).any().any()
    features = {f.name for f in load_spec("hmda").features}
    flagged = table["out_of_distribution"].dropna()
    assert all(set(v.split(", ")) <= features for v in flagged)
    application_ids = read_csv(root / "data" / "split" / "test.csv")["application_id"]
    assert not set(application_ids.astype(str)) & set(table["subject"].dropna())
    assert table["subject"].dropna().str.fullmatch(r"[0-9a-f]{12}").all()

    # a second run finds nothing new and writes nothing
    files = {p.name: p.stat().st_mtime_ns for p in _artifact_dir(settings).iterdir()}
    with tracking(settings) as client:
        history = len(client.get_metric_history(run.info.run_id, "decisions.count"))
    second = mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)
    assert second["status"] == "unchanged" and not second["wrote"]
    assert second["rows_added"] == 0 and second["cursor"] == first["cursor"]
    assert {p.name: p.stat().st_mtime_ns for p in _artifact_dir(settings).iterdir()} == files
    with tracking(settings) as client:
        assert len(client.get_metric_history(run.info.run_id, "decisions.count")) == history

    # new decisions, an override of a mirrored decision and an observed outcome arrive
    target, observed_id = batch[3], batch[4]
    with DecisionService.open(settings) as service:
        new = service.decide_many(
            MODEL,
            _rows(root, 25),
            subject_ids=[f"{purpose}-new-{i}" for i in range(25)],
            alias="candidate",
            purpose=purpose,
        )
        recorded = service.show(target)["body"]["outcome"]
        flipped = "approve" if recorded == "deny" else "deny"
        service.record_review(
            target, kind="override", reviewer="credit officer", reason="manual", outcome=flipped
        )
        service.record_outcome(observed_id, "deny")
        contested = batch[5]
        service.record_review(contested, kind="contest", reviewer="applicant", reason="disputed")
    third = mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)
    assert third["status"] == "updated" and third["rows_added"] == len(new)
    index, table = _assert_mirror_matches_ledger(settings)
    by_id = table.set_index("decision_id")
    assert set(d.decision_id for d in new) <= set(by_id.index)
    assert by_id.loc[target, "effective_outcome"] == flipped
    assert by_id.loc[target, "outcome"] == recorded
    assert by_id.loc[observed_id, "observed"] == "deny"
    assert by_id.loc[target, "status"] == "overridden"
    assert by_id.loc[contested, "status"] == "contested"
    # principal reasons on denials only; approvals show their main factor instead
    denials = by_id[by_id["outcome"] == "deny"]
    approvals = by_id[by_id["outcome"] == "approve"]
    assert denials["top_reason"].notna().all() and denials["main_factor"].isna().all()
    assert approvals["top_reason"].isna().all() and approvals["main_factor"].notna().any()
    # only the parts that changed were written: the override's part and the tail
    seq = int(by_id.loc[target, "seq"])
    holder = next(p["file"] for p in index["parts"] if p["first_seq"] <= seq <= p["last_seq"])
    assert holder in third["files"]
    assert len(third["files"]) <= 3 + math.ceil(len(new) / PART)
    assert _run(settings).data.metrics["decisions.count"] == len(table)


def test_a_mirror_that_no_longer_matches_the_ledger_is_rebuilt(
    trained: tuple[Path, Settings], tmp_path: Path
) -> None:
    _, settings = trained
    mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)
    index, _ = _mirrored(settings)
    forged = {**index, "cursor": {**index["cursor"], "hash": "0" * 64}}
    with tracking(settings) as client:
        run_id = client.get_model_version(MODEL, VERSION).run_id
        (tmp_path / "index.json").write_text(json.dumps(forged))
        client.log_artifact(run_id, str(tmp_path / "index.json"), mirror.TABLE_DIR)
    doc = mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)
    assert doc["status"] == "updated" and "different ledger" in doc["note"]
    _assert_mirror_matches_ledger(settings)

    # a new part size rebuilds it too, and the files the new index does not list are deleted
    doc = mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART * 4)
    assert "part size changed" in doc["note"]
    index, _ = _assert_mirror_matches_ledger(settings)
    on_disk = {f"decisions/{p.name}" for p in _artifact_dir(settings).glob("decisions-*.json")}
    assert on_disk == {p["file"] for p in index["parts"]}
    tables = json.loads(_run(settings).data.tags["mlflow.loggedArtifacts"])
    assert {t["path"] for t in tables if t["path"].startswith("decisions/")} == on_disk
    mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)


def test_the_description_link_line_keeps_what_people_wrote() -> None:
    url = "http://e/ui/models/m/versions/1"
    first = mirror.description_with_link("Scorecard for HMDA.\n\nOwner: risk team.", url)
    assert first.startswith("Scorecard for HMDA.\n\nOwner: risk team.\n\n")
    assert first.count(mirror.DESCRIPTION_MARK) == 1 and f"]({url})" in first
    assert mirror.description_with_link(first, url) == first  # stable: nothing to write
    moved = mirror.description_with_link(first, "http://f/ui/models/m/versions/1")
    assert moved.count(mirror.DESCRIPTION_MARK) == 1 and "http://e/" not in moved
    assert mirror.description_with_link(None, url).startswith(mirror.DESCRIPTION_MARK)


def test_scan_pages_through_a_batch_sharing_one_timestamp(
    trained: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, settings = trained
    _score_test_split(root, settings, f"mirror-scan-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(scanning, "PAGE", 7)  # many pages inside one batch's timestamp
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        every = _find_all(ledger, model=MODEL, version=VERSION, type="decision")
        assert len({r.ts for r in every}) < len(every) / 7  # batches share timestamps
        scanned = list(mirror.scan(ledger, model=MODEL, version=VERSION, type="decision"))
        assert [r.seq for r in scanned] == [r.seq for r in every]
        mid, end = every[len(every) // 3], every[2 * len(every) // 3]
        window = list(
            mirror.scan(
                ledger,
                after_seq=mid.seq,
                after_ts=mid.ts,
                until_seq=end.seq,
                model=MODEL,
                version=VERSION,
                type="decision",
            )
        )
        assert [r.seq for r in window] == [r.seq for r in every if mid.seq < r.seq <= end.seq]


# -- MLflow down -----------------------------------------------------------------------------

SERVER = """
import sys
from mlflow.server import app
from werkzeug.serving import make_server
make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
"""


class MlflowServer:
    """An MLflow tracking server over a SQLite store, in a child process we stop and start."""

    def __init__(self, store_uri: str, artifacts: Path) -> None:
        from mlflow.server import (
            ARTIFACT_ROOT_ENV_VAR,
            BACKEND_STORE_URI_ENV_VAR,
            REGISTRY_STORE_URI_ENV_VAR,
        )

        self.env = {
            **os.environ,
            BACKEND_STORE_URI_ENV_VAR: store_uri,
            REGISTRY_STORE_URI_ENV_VAR: store_uri,
            ARTIFACT_ROOT_ENV_VAR: artifacts.as_uri(),
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None:
            return
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the MLflow server exited"
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the MLflow server did not start")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="module")
def server(trained: tuple[Path, Settings]) -> Iterator[MlflowServer]:
    _, settings = trained
    srv = MlflowServer(settings.mlflow_uri, settings.artifacts)
    yield srv
    srv.stop()


def _timed_decisions(service: DecisionService, rows: list[dict[str, Any]], purpose: str) -> Any:
    latencies, ids = [], []
    for i, row in enumerate(rows):
        start = time.perf_counter()
        d = service.decide(
            MODEL, row, subject_id=f"{purpose}-{i}", alias="candidate", purpose=purpose
        )
        latencies.append(time.perf_counter() - start)
        ids.append(d.decision_id)
    return latencies, ids


def test_decisions_go_on_while_mlflow_is_down_and_the_mirror_catches_up(
    trained: tuple[Path, Settings], server: MlflowServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root, settings = trained
    server.start()
    remote = replace(settings, mlflow_uri=server.url)
    mirror.mirror_version(remote, MODEL, VERSION, part_rows=PART)  # up to date to begin with
    rows = _rows(root, LATENCY_N)
    purpose = f"mirror-outage-{uuid.uuid4().hex[:8]}"

    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        # a serving process that has loaded the model and resolved its alias once
        service = DecisionService(remote, ledger)
        service.decide(MODEL, rows[0], alias="candidate", purpose=purpose)
        up, up_ids = _timed_decisions(service, rows, f"{purpose}-up")

        server.stop()
        down, down_ids = _timed_decisions(service, rows, f"{purpose}-down")
        assert all(ledger.get(i) is not None for i in up_ids + down_ids)

    # the mirror fails with one clear error and records nothing
    before = mirror.local_state(settings, MODEL, VERSION)
    with pytest.raises(mirror.MirrorError) as failed:
        mirror.mirror_version(remote, MODEL, VERSION, part_rows=PART)
    message = str(failed.value)
    assert message.startswith(f"MLflow at {server.url} is unavailable")
    assert "next mirror run catches up" in message and "\n" not in message
    closed = replace(settings, mlflow_uri="http://user:secret@127.0.0.1:9")
    with pytest.raises(mirror.MirrorError, match=r"MLflow at http://127\.0\.0\.1:9 ") as other:
        mirror.mirror_model(closed, MODEL)
    assert "secret" not in str(other.value)
    assert mirror.local_state(settings, MODEL, VERSION) == before

    # MLflow is back: nothing was recorded meanwhile, and the mirror catches up
    server.start()
    index, _ = _mirrored(remote)
    assert before is not None and index["cursor"] == before["cursor"]
    assert _run(remote).data.tags[mirror.TAG_SEQ] == str(before["cursor"]["seq"])
    doc = mirror.mirror_version(remote, MODEL, VERSION, part_rows=PART)
    assert doc["status"] == "updated" and doc["rows_added"] >= 1 + 2 * LATENCY_N
    _, table = _assert_mirror_matches_ledger(remote)
    assert set(up_ids + down_ids) <= set(table["decision_id"])

    with capsys.disabled():
        print(
            f"\n[mirror] decision latency, median of {LATENCY_N} (report only): "
            f"MLflow up {statistics.median(up) * 1e3:.3f} ms, "
            f"MLflow down {statistics.median(down) * 1e3:.3f} ms; "
            f"p99 up {sorted(up)[int(0.99 * LATENCY_N)] * 1e3:.3f} ms, "
            f"down {sorted(down)[int(0.99 * LATENCY_N)] * 1e3:.3f} ms"
        )


def test_decisions_through_an_alias_keep_serving_while_mlflow_is_down(
    trained: tuple[Path, Settings], server: MlflowServer
) -> None:
    """Aliases are read from the ledger's promotion events (AliasBook), so once the version is
    loaded the registry is not on the decision path: an MLflow outage stops nothing."""
    root, settings = trained
    server.start()
    remote = replace(settings, mlflow_uri=server.url)
    row = _rows(root, 1)[0]
    purpose = f"mirror-alias-{uuid.uuid4().hex[:8]}"
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        service = DecisionService(remote, ledger, models=ModelCache(remote))
        service.decide(MODEL, row, alias="candidate", purpose=purpose)
        server.stop()
        try:
            decisions = [
                service.decide(MODEL, row, alias="candidate", purpose=purpose) for _ in range(3)
            ]
        finally:
            server.start()
        for decision in decisions:
            assert decision.model["version"] == VERSION and decision.model["alias"] == "candidate"
            assert ledger.get(decision.decision_id) is not None


def test_unavailable_stores_fail_clearly(trained: tuple[Path, Settings], tmp_path: Path) -> None:
    _, settings = trained
    missing = replace(settings, mlflow_uri=f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}")
    with pytest.raises(mirror.MirrorError, match="no database at"):
        mirror.mirror_version(missing, MODEL, VERSION)
    assert not (tmp_path / "gone").exists()  # not silently created


def test_a_version_being_mirrored_elsewhere_on_this_machine_is_skipped(
    trained: tuple[Path, Settings],
) -> None:
    _, settings = trained
    lock = mirror.state_path(settings, MODEL, VERSION).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        doc = mirror.mirror_version(settings, MODEL, VERSION, part_rows=PART)
    assert doc["status"] == "busy" and not doc["wrote"]
