"""Notices issued from the ledger alone, proven later; the subject report; legal holds."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support import copy_state
from typer.testing import CliRunner

from governance.cli import app
from governance.decisions.service import DecisionService
from governance.ledger import ERASED, Ledger, leaf_hash, verify_checkpoint, verify_inclusion
from governance.ledger.checkpoint import Checkpoint
from governance.settings import Settings

MODEL = "mortgage-denial"
ENV: dict[str, str | None] = dict.fromkeys(
    ("GOVERNANCE_HOME", "GOVERNANCE_MLFLOW_URI", "GOVERNANCE_LEDGER_URL", "GOVERNANCE_PROJECT")
)


@pytest.fixture(scope="module")
def decided(trained: tuple[Path, Settings]) -> dict[str, Any]:
    """A denial and an approval of one subject each, with review events on the denial."""
    root, settings = trained
    test = pd.read_csv(root / "data/split/test.csv")
    with DecisionService.open(settings) as svc:
        loaded, _ = svc.model(MODEL, alias="candidate")
        scores, _ = loaded.scorecard.score_frame(test[list(loaded.scorecard.order)])
        denials = test[scores >= loaded.scorecard.threshold]
        row = denials.iloc[1]
        denial = svc.decide(
            MODEL,
            {k: row[k] for k in loaded.scorecard.order},
            subject_id="N-1",
            alias="candidate",
            pii={"name": "Nora Example"},
        )
        svc.record_outcome(denial.decision_id, "deny", source="servicing")
        svc.record_review(denial.decision_id, kind="contest", reviewer="N-1", reason="income")
        svc.record_review(
            denial.decision_id, kind="override", reviewer="officer", reason="x", outcome="deny"
        )
        other = denials.iloc[2]
        second = svc.decide(
            MODEL,
            {k: other[k] for k in loaded.scorecard.order},
            subject_id="N-2",
            alias="candidate",
            pii={"name": "Noor"},
        )
        fine = test[scores < loaded.scorecard.threshold].iloc[0]
        approval = svc.decide(
            MODEL, {k: fine[k] for k in loaded.scorecard.order}, alias="candidate"
        )
    return {
        "denial": denial.decision_id,
        "second": second.decision_id,
        "approval": approval.decision_id,
        "root": root,
    }


def run(root: Path, *args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(app, [*args, "--project", str(root)], env={**ENV, **(env or {})})


def without_mlflow(settings: Settings, dest: Path) -> dict[str, str | None]:
    """A copy of the state directory with the MLflow database and artifacts removed."""
    home = dest / "home"
    copy_state(settings.home, home, leave_out=("mlflow.db*", "mlartifacts", "dagster"))
    assert not (home / "mlflow.db").exists()
    return {"GOVERNANCE_HOME": str(home)}


@pytest.mark.parametrize("fmt", ["md", "html", "pdf"])
def test_notice_from_the_ledger_alone_and_verified(
    trained: tuple[Path, Settings], decided: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    root, settings = trained
    env = without_mlflow(settings, tmp_path)
    out = tmp_path / f"notice.{fmt}"
    today = datetime.now(UTC).date().isoformat()  # a notice is dated from its decision's day on
    args = ["notice", decided["denial"], "--format", fmt, "--out", str(out), "--date", today]
    result = run(root, *args, "--json", env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    data = out.read_bytes()
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    with Ledger.open(
        f"sqlite:///{env['GOVERNANCE_HOME']}/ledger.db", home=Path(str(env["GOVERNANCE_HOME"]))
    ) as book:
        event = book.get(doc["event"]["id"])
        assert event.type == "notice" and event.body["sha256"] == doc["sha256"]
        assert event.body["decision_id"] == decided["denial"]
        decision = book.get(decided["denial"])
        assert event.body["decision_hash"] == decision.hash
        reasons = [r["reason"] for r in decision.body["reasons"]][:4]
    if fmt != "pdf":
        text = data.decode()
        for reason in reasons:
            assert reason in text
        assert "Equal Credit Opportunity Act" in text
    ok = run(root, "notice", "verify", str(out), env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith(f"ok: {out} is the {fmt} notice issued {today}")
    proved = json.loads(run(root, "notice", "verify", str(out), "--json", env=env).stdout)
    assert proved["proof_verified"] and proved["rendered_again_matches"]
    assert proved["event"]["id"] == doc["event"]["id"]
    # one changed character
    i = data.index(b"Equal") if fmt != "pdf" else len(data) // 2
    tampered = tmp_path / f"tampered.{fmt}"
    tampered.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
    bad = run(root, "notice", "verify", str(tampered), env=env)
    assert bad.exit_code == 1
    assert "is not a notice issued from this ledger" in bad.stderr


def test_a_notice_still_verifies_after_the_decision_is_overridden(
    trained: tuple[Path, Settings], tmp_path: Path
) -> None:
    """A notice proves what was issued: an override recorded after it (the denial turned into
    an approval) does not make the issued, unchanged notice fail to verify."""
    from governance.service.ui.subjects import issued_notice
    from governance.subjects import notices

    root, settings = trained
    test = pd.read_csv(root / "data/split/test.csv")
    with DecisionService.open(settings) as svc:
        loaded, _ = svc.model(MODEL, alias="candidate")
        scores, _ = loaded.scorecard.score_frame(test[list(loaded.scorecard.order)])
        row = test[scores >= loaded.scorecard.threshold].iloc[3]
        denial = svc.decide(
            MODEL, {k: row[k] for k in loaded.scorecard.order}, subject_id="N-3", alias="candidate"
        )
    out = tmp_path / "notice.md"
    assert (
        run(root, "notice", denial.decision_id, "--format", "md", "--out", str(out)).exit_code == 0
    )
    assert run(root, "notice", "verify", str(out)).exit_code == 0
    with DecisionService.open(settings) as svc:
        svc.record_review(
            denial.decision_id, kind="override", reviewer="officer", reason="r", outcome="approve"
        )
    result = run(root, "notice", "verify", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rendered_again_matches"] is True
    event_id = json.loads(result.stdout)["event"]["id"]
    with Ledger.open(settings.ledger_url, home=settings.home) as book:  # the explorer's page
        assert issued_notice(book, root, event_id)["matches"] is True
    # and no new notice can be issued for what is now an approval
    with (
        Ledger.open(settings.ledger_url, home=settings.home) as book,
        pytest.raises(ValueError, match="is not adverse"),
    ):
        notices.render_new(book, root, denial.decision_id, fmt="md")


def test_a_denial_by_override_gets_a_notice_with_the_reviewers_reason(
    trained: tuple[Path, Settings], tmp_path: Path
) -> None:
    """The model approved and a reviewer overrode it to deny: that is an adverse action, and
    Regulation B owes the applicant a notice. It once could not be issued ("records no
    principal reasons") and `audit recourse` said "not adverse, no recourse needed"."""
    root, settings = trained
    test = pd.read_csv(root / "data/split/test.csv")
    with DecisionService.open(settings) as svc:
        loaded, _ = svc.model(MODEL, alias="candidate")
        scores, _ = loaded.scorecard.score_frame(test[list(loaded.scorecard.order)])
        row = test[scores < loaded.scorecard.threshold].iloc[5]
        approval = svc.decide(
            MODEL, {k: row[k] for k in loaded.scorecard.order}, subject_id="N-4", alias="candidate"
        )
        assert approval.outcome == "approve"
    out = tmp_path / "notice.md"
    refused = run(root, "notice", approval.decision_id, "--format", "md", "--out", str(out))
    assert refused.exit_code == 1 and "is not adverse" in refused.stderr  # not yet overridden
    reason = "Income could not be verified with the employer\n[see file](http://x)"
    with DecisionService.open(settings) as svc:
        svc.record_review(
            approval.decision_id, kind="override", reviewer="officer", reason=reason, outcome="deny"
        )
    recourse = run(root, "audit", "recourse", approval.decision_id)
    assert recourse.exit_code == 0
    assert "a reviewer's override made it deny" in recourse.stdout, recourse.stdout
    issued = run(root, "notice", approval.decision_id, "--format", "md", "--out", str(out))
    assert issued.exit_code == 0, issued.output
    text = out.read_text()
    reasons = text.split("## Principal reasons for our decision")[1].split("## ")[0]
    assert [line for line in reasons.splitlines() if line[:2] == "1."] == [
        "1. Income could not be verified with the employer \\[see file\\](http://x)"
    ]
    assert "2." not in reasons
    assert "A person then reviewed your application and declined it" in text
    assert "below our threshold" in text and "at or above" not in text
    assert run(root, "notice", "verify", str(out)).exit_code == 0


def day(offset: int) -> str:
    """Today (UTC) moved by ``offset`` days: past the day of slack either way."""
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def test_notice_refusals_write_nothing(
    trained: tuple[Path, Settings], decided: dict[str, Any], tmp_path: Path
) -> None:
    root, settings = trained
    approval = decided["approval"]
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        size = book.size()
    out = tmp_path / "n.html"
    for args, message in [
        ([approval, "--out", str(out)], "is not adverse"),
        ([decided["denial"], "--format", "docx", "--out", str(out)], "--format must be one of"),
        ([decided["denial"], "--date", "30/11/2026", "--out", str(out)], "YYYY-MM-DD"),
        ([decided["denial"], "--date", "", "--out", str(out)], "YYYY-MM-DD"),
        ([decided["denial"], "--date", f"{day(-2)}", "--out", str(out)], "before decision"),
        ([decided["denial"], "--date", f"{day(+2)}", "--out", str(out)], "in the future"),
    ]:
        result = run(root, "notice", *args)
        assert result.exit_code == 1 and message in result.stderr, result.output
    assert not out.exists() and not list(tmp_path.iterdir())
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        assert book.size() == size


def _verify_proof(proof: dict[str, Any], record_hash: str, public_key: Any) -> bool:
    """An RFC 9162 inclusion proof and its checkpoint's signature, checked from the report."""
    cp = Checkpoint.from_json(proof["checkpoint"])
    assert verify_checkpoint(cp, public_key)
    leaf = bytes.fromhex(record_hash)
    assert leaf_hash(proof["record"].encode()) == leaf
    return (
        verify_inclusion(
            leaf,
            proof["leaf_index"],
            proof["tree_size"],
            [bytes.fromhex(p) for p in proof["proof"]],
            bytes.fromhex(proof["root"]),
        )
        and cp.root.hex() == proof["root"]
    )


def test_subject_report_then_forget(
    trained: tuple[Path, Settings], decided: dict[str, Any], tmp_path: Path
) -> None:
    root, settings = trained
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        public_key = book.public_key
    notice = tmp_path / "n.md"
    assert (
        run(root, "notice", decided["denial"], "--format", "md", "--out", str(notice)).exit_code
        == 0
    )
    out = tmp_path / "report.json"
    result = run(root, "audit", "subject-report", "N-1", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    (d,) = report["decisions"]
    assert d["record"]["id"] == decided["denial"]
    assert d["record"]["body"]["pii"] == {"name": "Nora Example"}
    assert d["model_logic"]["available"] and d["model_logic"]["inputs"]
    assert d["recourse"]["summary"] and d["record"]["body"]["explanation"]["contributions"]
    assert {r["body"]["kind"] for r in d["reviews"]} == {"contest", "override"}
    assert [o["body"]["observed"] for o in d["outcomes"]] == ["deny"]
    assert len(d["notices"]) >= 1
    types = {r["type"] for r in report["records"]}
    assert types >= {"decision", "recourse", "outcome", "review", "notice"}
    assert all(r["body"].get("subject_key") == report["subject_key"] for r in report["records"])
    for r in report["records"]:
        assert _verify_proof(report["proofs"][r["id"]], r["hash"], public_key)
    assert not report["erased"]
    html = tmp_path / "report.html"
    assert run(root, "audit", "subject-report", "N-1", str(html)).exit_code == 0
    page = html.read_text()
    assert decided["denial"] in page and "Nora Example" in page and "contest" in page
    # after forget
    assert run(root, "audit", "forget", "N-1").exit_code == 0
    result = run(root, "audit", "subject-report", "N-1", str(out))
    assert result.exit_code == 0 and "personal data erased" in result.stdout
    report = json.loads(out.read_text())
    assert report["erased"] and report["decisions"][0]["record"]["body"]["pii"] == ERASED
    assert report["erasures"][0]["keys_destroyed"] >= 1
    assert run(root, "audit", "subject-report", "N-1", str(html)).exit_code == 0
    page = html.read_text()
    assert "Personal data erased on" in page and "Nora Example" not in page
    missing = run(root, "audit", "subject-report", "nobody", str(tmp_path / "x.json"))
    assert missing.exit_code == 1 and "no records about this subject" in missing.stderr


def test_legal_hold_blocks_forget_until_released(
    trained: tuple[Path, Settings], decided: dict[str, Any]
) -> None:
    root = trained[0]
    held = run(root, "audit", "hold", "N-2", "--reason", "litigation 42", "--by", "Legal")
    assert held.exit_code == 0, held.output
    again = run(root, "audit", "hold", "N-2", "--reason", "r", "--by", "Legal")
    assert again.exit_code == 1 and "already under a legal hold" in again.stderr
    refused = run(root, "audit", "forget", "N-2")
    assert refused.exit_code == 1 and "legal hold" in refused.stderr
    report = run(root, "audit", "retention", "--now", "2099-01-01T00:00:00Z", "--json")
    assert report.exit_code == 0, report.output
    doc = json.loads(report.stdout)
    with Ledger.open(trained[1].ledger_url, home=trained[1].home) as book:
        sk = book.subject_key("N-2")
    assert sk in doc["subjects_held"] and sk not in doc["subjects_due"]
    decision_row = next(r for r in doc["types"] if r["type"] == "decision")
    assert decision_row["months"] == 25 and decision_row["records_due"] == decision_row["records"]
    now = run(root, "audit", "retention", "--json")
    assert json.loads(now.stdout)["subjects_due"] == []
    assert (
        run(root, "audit", "release", "N-2", "--reason", "settled", "--by", "Legal").exit_code == 0
    )
    assert run(root, "audit", "release", "N-2", "--reason", "r", "--by", "L").exit_code == 1
    assert run(root, "audit", "forget", "N-2").exit_code == 0


def _size(settings: Settings) -> int:
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        return book.size()


def _one_error_line(result: Any, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def _no_tmp(*folders: Path) -> None:
    assert not [p for f in folders for p in f.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("folder", "--out {out}: is a directory"),
        ("file/n.html", "is not a directory"),
        ("HOME/ledger.db", "is this project's ledger: refusing"),
        ("HOME/n.html", "inside the state directory"),
    ],
)
def test_a_notice_that_cannot_be_written_is_not_recorded(
    trained: tuple[Path, Settings],
    decided: dict[str, Any],
    tmp_path: Path,
    where: str,
    message: str,
) -> None:
    root, settings = trained
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("mine\n")
    out = settings.home / where[5:] if where.startswith("HOME/") else tmp_path / where
    before, listed = _size(settings), sorted(tmp_path.rglob("*"))
    result = run(root, "notice", decided["denial"], "--out", str(out))
    _one_error_line(result, message.format(out=out))
    assert _size(settings) == before  # no notice event for a notice never written
    assert sorted(tmp_path.rglob("*")) == listed and (tmp_path / "file").read_text() == "mine\n"
    _no_tmp(tmp_path, settings.home)


def test_issue_prepares_the_file_before_recording_the_notice(
    trained: tuple[Path, Settings], decided: dict[str, Any], tmp_path: Path
) -> None:
    from governance.subjects import notices

    root, settings = trained
    with Ledger.open(settings.ledger_url, home=settings.home) as book:
        before = book.size()
        with pytest.raises(ValueError, match="is not a regular file"):
            notices.issue(book, root, decided["denial"], tmp_path)
        (tmp_path / "file").write_text("mine\n")
        with pytest.raises(ValueError, match="cannot write the notice"):
            notices.issue(book, root, decided["denial"], tmp_path / "file" / "n.html")
        assert book.size() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("folder", "OUT {out}: is a directory"),
        ("missing/r.html", "directory {parent} does not exist"),
        ("file/r.json", "is not a directory"),
        ("HOME/ledger.db", "is this project's ledger: refusing"),
        ("", "not a file name"),
    ],
)
def test_a_subject_report_that_cannot_be_written_leaves_nothing(
    trained: tuple[Path, Settings],
    decided: dict[str, Any],
    tmp_path: Path,
    where: str,
    message: str,
) -> None:
    root, settings = trained
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("mine\n")
    out: Path | str = (
        settings.home / where[5:]
        if where.startswith("HOME/")
        else (tmp_path / where if where else "")
    )
    before, listed = _size(settings), sorted(tmp_path.rglob("*"))
    result = run(root, "audit", "subject-report", "N-2", str(out))
    _one_error_line(result, message.format(out=out, parent=Path(out).parent))
    assert _size(settings) == before
    assert sorted(tmp_path.rglob("*")) == listed and (tmp_path / "file").read_text() == "mine\n"
    _no_tmp(tmp_path, settings.home)
