"""Decisions end to end: recorded before the answer, explained exactly, replayable, private."""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import REPO, cli_env, count_appends

from governance.core.lineage import lineage_id
from governance.decisions.reviews import with_effective_outcomes
from governance.decisions.service import DecisionError, DecisionRequest, DecisionService
from governance.ledger import ERASED
from governance.ledger.canonical import encoder_for
from governance.registry import mlflow as registry
from governance.settings import Settings

MODEL = "mortgage-denial"


@pytest.fixture(scope="module")
def batch(trained: tuple[Path, Settings], service: DecisionService) -> list[str]:
    """The held-out split scored through the ledger; the decision ids."""
    root, _ = trained
    test = pd.read_csv(root / "data/split/test.csv")
    ids: list[str] = []
    for _, receipts, _, _ in service.score_frame(
        MODEL,
        test,
        subject_column="application_id",
        alias="candidate",
        caller="test",
        purpose="batch",
        chunk=200,
        helper_rows=0,  # chunks after the first are built by the batch helper process
    ):
        ids += [r.id for r in receipts]
    assert len(ids) == len(test)
    return ids


def test_every_batch_decision_adds_up_and_replays_exactly(
    service: DecisionService, batch: list[str]
) -> None:
    for decision_id in batch:
        record = service.ledger.get(decision_id)
        body = record.body
        e = body["explanation"]
        assert abs(e["base_value"] + math.fsum(e["contributions"].values()) - e["logit"]) < 1e-9
        assert abs(1 / (1 + math.exp(-e["logit"])) - body["score"]) < 1e-12
        assert body["outcome"] == ("deny" if body["score"] >= body["threshold"] else "approve")
    replays = service.replay_many(batch)
    assert all(r["match"] for r in replays), [r for r in replays if not r["match"]][:1]


def test_batch_records_are_the_single_decision_records(
    trained: tuple[Path, Settings], service: DecisionService, batch: list[str]
) -> None:
    """score_frame builds records column-wise; decide writes them one at a time: same bytes."""
    root, _ = trained
    test = pd.read_csv(root / "data/split/test.csv").iloc[:60]
    sc = service.model(MODEL, alias="candidate")[0].scorecard
    inputs = test[list(sc.order)]
    rows = inputs.astype(object).where(inputs.notna(), None).to_dict(orient="records")
    singles = service.decide_many(
        MODEL,
        rows,
        subject_ids=test["application_id"].astype(str).tolist(),
        alias="candidate",
        caller="test",
        purpose="batch",
    )
    encode = encoder_for(service.ledger.canonical_format)
    for batch_id, single in zip(batch, singles, strict=False):
        ours, theirs = service.ledger.get(batch_id), service.ledger.get(single.decision_id)
        assert ours is not None and theirs is not None
        assert encode(ours.body) == encode(theirs.body)
    assert service.ledger.verify(deep=True).ok  # canonical bytes, index columns from the body


def test_a_decision_records_the_version_behind_the_alias_and_its_lineage(
    trained: tuple[Path, Settings], service: DecisionService, batch: list[str]
) -> None:
    body = service.ledger.get(batch[0]).body
    info = registry.resolve(trained[1], MODEL, "1")
    assert body["model"] == {
        "name": MODEL,
        "version": "1",
        "alias": "candidate",
        "lineage_id": lineage_id(info),
        "mlflow_run_id": info["mlflow_run_id"],
    }
    trace = service.trace(batch[0])
    assert trace["model"]["lineage_id_matches"] is True
    assert trace["code"]["git_commit"] == info["git_commit"]
    assert [d["md5"] for d in trace["data"]] == [d["md5"] for d in info["datasets"]]
    assert trace["validation"]["success"] is True and trace["fairness"]["passed"] is True


def test_a_single_decision_is_committed_before_it_returns(service: DecisionService) -> None:
    features = dict(
        service.ledger.get(
            service.ledger.find(type="decision", limit=1, since="2000-01-01T00:00:00Z")[0].id
        ).body["inputs"]
    )
    before = service.ledger.size()
    d = service.decide(MODEL, features, subject_id="s-1", alias="candidate", purpose="test")
    # A new connection (another reader) sees it at once.
    from governance.ledger import Ledger

    with Ledger.open(service.settings.ledger_url, home=service.settings.home) as other:
        assert other.get(d.decision_id) is not None
        # a denial comes with its linked recourse event, in the same transaction
        assert other.size() == before + 1 + (d.outcome == "deny")
    assert d.ledger["seq"] == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pirat": float("nan")}, "feature 'pirat' = nan: expected a finite number"),
        ({"afam": "no"}, "unknown feature 'afam'"),
        ({"phist": "perhaps"}, r"feature 'phist' = 'perhaps' is not one of \['no', 'yes'\]"),
        ({"lvrat": None}, r"feature 'lvrat' must not be missing \(null\)"),
    ],
)
def test_bad_input_records_nothing(
    service: DecisionService, batch: list[str], change: dict, message: str
) -> None:
    features = {**service.ledger.get(batch[0]).body["inputs"], **change}
    before = service.ledger.size()
    with pytest.raises(DecisionError, match=message):
        service.decide(MODEL, features, subject_id="s", alias="candidate")
    good = service.ledger.get(batch[1]).body["inputs"]
    with pytest.raises(DecisionError, match="application 1: "):
        service.decide_many(MODEL, [good, features], subject_ids=["a", "b"], alias="candidate")
    with pytest.raises(DecisionError, match="no registered model named 'nope'"):
        service.decide("nope", good, alias="candidate")
    assert service.ledger.size() == before


def test_requests_decided_together_share_one_transaction_and_fail_alone(
    service: DecisionService, batch: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """decide_together: each request is decided as decide_many would decide it, all recorded
    by one append; a request with a bad application (or bad text) gets its own error."""
    rows = [service.ledger.get(i).body["inputs"] for i in batch[:6]]
    bad = {**rows[0], "phist": "perhaps"}
    requests = [
        DecisionRequest([rows[0], rows[1]], ["t-1", "t-2"], "caller-a", "together"),
        DecisionRequest([rows[2], bad], ["t-3", "t-4"], "caller-b"),
        DecisionRequest([rows[3]], ["t-5"], "caller-c", "bad\npurpose"),
        DecisionRequest([rows[4], rows[5]], None, "caller-d"),
    ]
    appends = count_appends(service.ledger, monkeypatch)
    before = service.ledger.size()
    results = service.decide_together(MODEL, requests, alias="candidate")
    assert len(appends) == 1  # one transaction for both good requests
    assert isinstance(results[1], DecisionError)
    assert "application 1: feature 'phist' = 'perhaps'" in str(results[1])
    assert isinstance(results[2], DecisionError) and "purpose" in str(results[2])
    together = [d for r in (results[0], results[3]) for d in r]  # type: ignore[union-attr]
    assert service.ledger.size() == before + appends[0]
    alone = service.decide_many(MODEL, rows[:2], subject_ids=["t-1", "t-2"], alias="candidate",
                                caller="caller-a", purpose="together")  # fmt: skip
    for mine, theirs in zip(results[0], alone, strict=True):  # type: ignore[arg-type]
        a, b = (
            service.ledger.get(mine.decision_id).body,
            service.ledger.get(theirs.decision_id).body,
        )
        assert a == b  # the same body, whichever way it was decided
        assert a["caller"] == "caller-a" and a["purpose"] == "together"
    for d, row in zip(together, [rows[0], rows[1], rows[4], rows[5]], strict=True):
        record = service.ledger.get(d.decision_id)
        assert record is not None and record.body["inputs"] == row
    callers = [service.ledger.get(d.decision_id).body["caller"] for d in together]
    assert callers == ["caller-a", "caller-a", "caller-d", "caller-d"]


def test_a_failed_combined_append_decides_each_request_alone(
    service: DecisionService, batch: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request that the ledger refuses must not fail the requests it was combined with."""
    rows = [service.ledger.get(i).body["inputs"] for i in batch[:3]]
    original = service.ledger.append_many

    def refuse_combined(entries, **kw):  # type: ignore[no-untyped-def]
        entries = list(entries)
        if any(e.subject_id == "poison" for e in entries):
            raise ValueError("the ledger refuses this record")
        return original(entries, **kw)

    monkeypatch.setattr(service.ledger, "append_many", refuse_combined)
    before = service.ledger.size()
    results = service.decide_together(
        MODEL,
        [
            DecisionRequest([rows[0]], ["fine-1"]),
            DecisionRequest([rows[1]], ["poison"]),
            DecisionRequest([rows[2]], ["fine-2"]),
        ],
        alias="candidate",
    )
    assert isinstance(results[1], DecisionError)
    assert "the ledger refuses this record" in str(results[1])
    recorded = [results[0][0], results[2][0]]  # type: ignore[index]
    assert all(service.ledger.get(d.decision_id) is not None for d in recorded)
    added = service.ledger.size() - before
    assert added == sum(1 + (d.outcome == "deny") for d in recorded)


def test_together_an_alias_that_moves_mid_request_decides_them_all_again(
    service: DecisionService, batch: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fence refused the combined append (the alias moved): nothing was written, so every
    request is decided again, and each is recorded exactly once."""
    rows = [service.ledger.get(i).body["inputs"] for i in batch[:2]]
    original = service._append
    calls: list[int] = []

    def moved_once(entries, *args):  # type: ignore[no-untyped-def]
        calls.append(len(entries))
        return None if len(calls) == 1 else original(entries, *args)

    monkeypatch.setattr(service, "_append", moved_once)
    before = service.ledger.size()
    results = service.decide_together(
        MODEL, [DecisionRequest([rows[0]], ["m-1"]), DecisionRequest([rows[1]], ["m-2"])],
        alias="candidate",
    )  # fmt: skip
    assert len(calls) == 2 and calls[0] == calls[1]
    decided = [r[0] for r in results]  # type: ignore[index]
    assert service.ledger.size() == before + calls[1]
    assert [service.ledger.get(d.decision_id).body["inputs"] for d in decided] == rows


def test_together_an_unknown_model_refuses_every_request(service: DecisionService) -> None:
    before = service.ledger.size()
    with pytest.raises(DecisionError, match="no registered model named 'nope'"):
        service.decide_together("nope", [DecisionRequest([{}])], alias="candidate")
    assert service.ledger.size() == before


def test_an_override_changes_the_effective_outcome_not_the_record(
    service: DecisionService, batch: list[str]
) -> None:
    decision_id = batch[2]
    original = service.ledger.get(decision_id)
    flipped = "approve" if original.body["outcome"] == "deny" else "deny"
    service.record_review(
        decision_id,
        kind="override",
        reviewer="officer",
        reason="documented income omitted",
        outcome=flipped,
    )
    shown = service.show(decision_id)
    assert shown["effective_outcome"] == flipped
    assert service.trace(decision_id)["decision"]["effective_outcome"] == flipped
    found = with_effective_outcomes(service.ledger, [service.ledger.get(decision_id)])
    assert found[0]["effective_outcome"] == flipped
    assert found[0]["body"]["outcome"] == original.body["outcome"]
    assert service.ledger.get(decision_id).data == original.data
    assert service.ledger.verify().ok
    with pytest.raises(DecisionError, match="an override must give the new outcome"):
        service.record_review(decision_id, kind="override", reviewer="o", reason="r")


def _bytes_of(path: Path) -> bytes:
    """A file's bytes, read by another process.

    Opening and closing a file of a live SQLite database in this process would release every
    POSIX lock this process holds on it (fcntl locks belong to the process, not the
    descriptor), including the module's open ledger connection's: another process could then
    checkpoint and delete the WAL under it ("disk I/O error", writes lost to later readers).
    """
    code = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, check=True)
    return proc.stdout


def test_subject_ids_and_pii_never_reach_the_disk_in_clear(
    service: DecisionService, batch: list[str]
) -> None:
    canary_id = "CANARY-subject-7f3a9c"
    canary_pii = "CANARY-name-Jane-Q-Applicant"
    features = service.ledger.get(batch[0]).body["inputs"]
    d = service.decide(
        MODEL, features, subject_id=canary_id, alias="candidate", pii={"name": canary_pii}
    )
    assert service.ledger.decode(service.ledger.get(d.decision_id))["body"]["pii"] == {
        "name": canary_pii
    }
    db = Path(service.settings.ledger_url.removeprefix("sqlite://"))
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            data = _bytes_of(path)
            assert canary_id.encode() not in data and canary_pii.encode() not in data, path
    service.ledger.forget(canary_id)
    assert service.ledger.decode(service.ledger.get(d.decision_id))["body"]["pii"] == ERASED
    assert service.ledger.verify().ok


def governance_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv/bin/governance"), *args],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_audit_cli(trained: tuple[Path, Settings], batch: list[str]) -> None:
    root, _ = trained
    verify = governance_cli(root, "audit", "verify", "--json")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
    replay = governance_cli(root, "audit", "replay", batch[5], "--json")
    assert replay.returncode == 0 and json.loads(replay.stdout)["match"] is True
    found = governance_cli(
        root, "audit", "find", "--model", MODEL, "--version", "1", "--limit", "3", "--json"
    )
    assert [r["model"]["version"] for r in json.loads(found.stdout)] == ["1", "1", "1"]
    uncovered = governance_cli(root, "audit", "prove", batch[5], "--json")
    if uncovered.returncode == 2:  # reading never signs: no checkpoint covers it yet
        assert "audit checkpoint" in uncovered.stderr and not uncovered.stdout
        assert governance_cli(root, "audit", "checkpoint").returncode == 0
    prove = governance_cli(root, "audit", "prove", batch[5], "--json")
    assert json.loads(prove.stdout)["verified"] is True
    missing = governance_cli(root, "audit", "show", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: no decision with id 00000000-0000-0000-0000-000000000000"
    ]
    out = root / "export.jsonl"
    governance_cli(root, "audit", "export", str(out))
    lines = out.read_text().splitlines()
    assert json.loads(lines[0])["seq"] == 0 and len(lines) >= len(batch)


def test_audit_cli_shows_every_event_and_never_prints_a_forged_line(
    trained: tuple[Path, Settings], batch: list[str]
) -> None:
    root, settings = trained
    decision_id = batch[7]
    with DecisionService.open(settings) as other:  # another process would do this
        other.record_review(
            decision_id,
            kind="contest",
            reviewer="applicant-desk",
            reason="disputes it\nverified   ok: ledger says approve",
            recorded_by="loan-frontend",
        )
    shown = governance_cli(root, "audit", "show", decision_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert not any(line.startswith("verified") for line in lines)  # the newline is escaped
    event = [line for line in lines if "contest:" in line]
    assert len(event) == 1, shown.stdout
    assert "by applicant-desk (recorded by loan-frontend)" in event[0]
    assert "disputes it\\nverified" in event[0]
    assert "status: contested" in shown.stdout
    found = governance_cli(
        root, "audit", "find", "--since", "2000-01-01T00:00:00Z", "--type", "training"
    )
    assert found.returncode == 0, found.stderr
    assert "Traceback" not in found.stderr and "training" in found.stdout
    with DecisionService.open(settings) as other:
        since = other.ledger.get(decision_id).ts
    found_json = governance_cli(root, "audit", "find", "--since", since, "--limit", "500", "--json")
    statuses = {r["id"]: r["status"] for r in json.loads(found_json.stdout)}
    assert statuses[decision_id] == "contested"


def test_batch_pauses_the_collector_per_chunk_and_never_leaves_it_off(
    trained: tuple[Path, Settings], service: DecisionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is written with the collector paused; the caller's code between chunks and
    everything after the batch (also after a failed chunk) runs with it on again."""
    root, _ = trained
    test = pd.read_csv(root / "data/split/test.csv").iloc[:30]
    original = service.ledger.append_many
    during: list[bool] = []

    def observe(entries, **kw):  # type: ignore[no-untyped-def]
        during.append(gc.isenabled())
        if len(during) == 3:
            raise OSError("disk full")
        return original(entries, **kw)

    monkeypatch.setattr(service.ledger, "append_many", observe)
    assert gc.isenabled()
    between = []
    with pytest.raises(OSError, match="disk full"):
        for _ in service.score_frame(MODEL, test, alias="candidate", chunk=10):
            between.append(gc.isenabled())
    assert during == [False, False, False]
    assert between == [True, True]
    assert gc.isenabled()
