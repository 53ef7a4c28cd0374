"""Adverse-action notices rendered from real decision records in a real ledger."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest

from governance.core import notice
from governance.core.contract import derive_contract
from governance.core.dataset import load_spec, read_source
from governance.core.recourse import build_policy, compute
from governance.core.scorecard import compile_pipeline
from governance.core.training import TrainParams, model_inputs, split, train
from governance.core.validation import load_suite
from governance.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
ECOA = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against "
    "credit applicants on the basis of race, color, religion, national origin, sex, marital "
    "status, age (provided the applicant has the capacity to enter into a binding contract)"
)
CONFIG = notice.NoticeConfig(
    creditor_name="Harbor Savings Bank",
    creditor_address="1 Dock Street, Boston, MA 02110",
    creditor_contact="call 617-555-0100 or write to Credit Review, 1 Dock Street",
    agency_name="Consumer Financial Protection Bureau",
    agency_address="1700 G Street NW, Washington, DC 20552",
)


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A denial and an approval recorded in a real SQLite ledger, and the denial's recourse."""
    spec = load_spec("hmda")
    frame = read_source(spec.source).rename(columns=spec.rename)
    train_frame, test = split(frame, spec, test_size=0.25, seed=20240611)
    params = TrainParams(seed=20240611)
    scorecard = compile_pipeline(train(train_frame, spec, params), spec, train_frame, params)
    contract = derive_contract(spec, load_suite(REPO / spec.suite), train_frame)
    policy = build_policy(spec, scorecard, contract)
    rows = model_inputs(test, spec).to_dict(orient="records")
    home = tmp_path_factory.mktemp("ledger")
    out: dict[str, Any] = {}
    with Ledger.open(f"sqlite:///{home}/ledger.db", home=home) as ledger:
        for inputs in rows:
            s = scorecard.score(inputs)
            kind = "denial" if s.adverse else "approval"
            if kind in out:
                continue
            body = {
                "inputs": inputs,
                "outcome": s.outcome,
                "score": s.score,
                "threshold": scorecard.threshold,
                "explanation": s.explanation.to_dict(),
                "reasons": s.reasons,
                "model": {"name": spec.model_name, "version": "1", "alias": None},
                "caller": "test",
                "purpose": "notice test",
            }
            receipt = ledger.append("decision", body, subject_id=f"A-{kind}")
            out[kind] = ledger.decode(ledger.get(receipt.id))
            if s.adverse:
                out["recourse"] = compute(scorecard, policy, inputs).to_dict()
            if len(out) == 3:
                break
    return out


def ctx(decided: dict[str, Any], **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "adverse_outcome": "deny",
        "recourse": decided["recourse"],
        "config": CONFIG,
        "issued": "2026-11-30",
        **changes,
    }
    record = args.pop("record", decided["denial"])
    return notice.context(record, **args)


def test_markdown_has_every_required_element(decided: dict[str, Any]) -> None:
    md = notice.render(ctx(decided), dataset="hmda", fmt="md").decode()
    record = decided["denial"]
    reasons = [r["reason"] for r in record["body"]["reasons"]][: notice.MAX_REASONS]
    assert reasons, "the denial has principal reasons"
    numbered = re.findall(r"^(\d)\. (.+)$", md, flags=re.M)
    assert [r for _, r in numbered] == reasons  # in the dataset's wording, most important first
    assert ECOA in md
    assert "Consumer Financial Protection Bureau, 1700 G Street NW" in md
    assert "Harbor Savings Bank, 1 Dock Street, Boston" in md
    assert "call 617-555-0100" in md
    assert "**Date:** 2026-11-30" in md
    assert "mortgage loan" in md  # the HMDA template's wording
    for line in decided["recourse"]["summary"]:
        assert f"- {line}" in md
    assert record["id"] in md and record["hash"] in md
    assert f"version {record['body']['model']['version']}" in md


def test_at_most_four_reasons(decided: dict[str, Any]) -> None:
    record = json.loads(json.dumps(decided["denial"]))
    extra = [{"feature": f"f{i}", "reason": f"Reason number {i}"} for i in range(7)]
    record["body"]["reasons"] = extra
    md = notice.render(ctx(decided, record=record), dataset="hmda", fmt="md").decode()
    assert "Reason number 3" in md and "Reason number 4" not in md


def test_placeholders_when_not_configured(decided: dict[str, Any]) -> None:
    md = notice.render(
        ctx(decided, config=notice.NoticeConfig()), dataset="credit", fmt="md"
    ).decode()
    assert "[to be configured: notice.creditor.name in params.yaml]" in md
    assert "[to be configured: notice.agency.address in params.yaml]" in md
    assert "extend the credit you applied for" in md  # the credit template's wording


def test_config_from_params() -> None:
    config = notice.NoticeConfig.from_params(
        {"creditor": {"name": "X Bank", "contact": "c"}, "agency": {"name": "FTC"}, "product": "p"}
    )
    assert (config.creditor_name, config.creditor_address, config.agency_name, config.product) == (
        "X Bank",
        "",
        "FTC",
        "p",
    )


def test_html_is_escaped_and_self_contained(decided: dict[str, Any]) -> None:
    hostile = notice.NoticeConfig(creditor_name="<script>alert(1)</script>")
    html = notice.render(ctx(decided, config=hostile), dataset="hmda", fmt="html").decode()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<ol>" in html and "http" not in html.replace(ECOA, "")


def pdf_streams(data: bytes) -> list[bytes]:
    """Every stream's bytes, cut by its /Length: a compressed stream may itself end in CR or hold
    "endstream", so a delimiter search would truncate it whenever the content happens to."""
    streams = []
    for m in re.finditer(rb"/Length (\d+)\s*>>\s*stream\r?\n", data):
        streams.append(data[m.end() : m.end() + int(m.group(1))])
    assert streams, "no stream with a /Length in the PDF"
    return streams


def test_pdf_is_reproducible_and_holds_the_text(decided: dict[str, Any]) -> None:
    a = notice.render(ctx(decided), dataset="hmda", fmt="pdf")
    b = notice.render(ctx(decided), dataset="hmda", fmt="pdf")
    assert a.startswith(b"%PDF-") and a == b
    text = b"".join(zlib.decompress(stream) for stream in pdf_streams(a))
    first_reason = decided["denial"]["body"]["reasons"][0]["reason"]
    # fpdf2 writes text as (...) Tj strings; words can be split across strings
    assert first_reason.split()[0].encode() in text
    assert b"Equal Credit Opportunity Act" in text
    other_day = notice.render(ctx(decided, issued="2026-12-01"), dataset="hmda", fmt="pdf")
    assert other_day != a


def test_one_changed_character_changes_the_hash(decided: dict[str, Any]) -> None:
    data = notice.render(ctx(decided), dataset="hmda", fmt="md")
    event = notice.notice_event(
        decided["denial"],
        fmt="md",
        data=data,
        issued="2026-11-30",
        dataset="hmda",
        config=CONFIG,
        recourse_id=None,
    )
    assert event["sha256"] == notice.sha256(data)
    issued = [{"type": "notice", "body": event}]
    assert notice.find_issued(issued, notice.sha256(data)) is issued[0]
    i = data.index(b"Harbor")
    tampered = data[:i] + b"h" + data[i + 1 :]
    assert notice.find_issued(issued, notice.sha256(tampered)) is None


def test_refuses_what_is_not_an_adverse_decision(decided: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not adverse"):
        ctx(decided, record=decided["approval"])
    with pytest.raises(ValueError, match="not adverse"):
        ctx(decided, outcome="approve")  # overridden to an approval after review
    with pytest.raises(ValueError, match="not a decision"):
        ctx(decided, record={**decided["denial"], "type": "outcome"})
    no_reasons = json.loads(json.dumps(decided["denial"]))
    no_reasons["body"]["reasons"] = []
    with pytest.raises(ValueError, match="no principal reasons"):
        ctx(decided, record=no_reasons)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        ctx(decided, issued="30/11/2026")
    with pytest.raises(ValueError, match="format must be one of"):
        notice.render(ctx(decided), dataset="hmda", fmt="docx")


def test_an_approval_overridden_to_a_denial(decided: dict[str, Any]) -> None:
    """The reviewer's reason is the principal reason of a denial the model did not make; an
    old approval record that carries reasons (from before they were given to denials only)
    keeps the notice it was issued with, so that notice still verifies."""
    override = {"kind": "override", "outcome": "deny", "reason": "Income not verified"}
    approval = decided["approval"]
    assert approval["body"]["outcome"] == "approve" and not approval["body"]["reasons"]
    with pytest.raises(ValueError, match="no principal reasons"):
        ctx(decided, record=approval, outcome="deny", recourse=None)  # no reason recorded
    c = ctx(decided, record=approval, outcome="deny", recourse=None, override=override)
    assert c["overridden"] and [r["reason"] for r in c["reasons"]] == ["Income not verified"]
    md = notice.render(c, dataset="hmda", fmt="md").decode()
    assert "below our threshold" in md and "A person then reviewed" in md
    legacy = json.loads(json.dumps(approval))
    legacy["body"]["reasons"] = decided["denial"]["body"]["reasons"]
    old = ctx(decided, record=legacy, outcome="deny", recourse=None, override=override)
    assert not old["overridden"]
    assert [r["reason"] for r in old["reasons"]] == [
        r["reason"] for r in decided["denial"]["body"]["reasons"]
    ][:4]


def test_without_recourse_says_so(decided: dict[str, Any]) -> None:
    md = notice.render(ctx(decided, recourse=None), dataset="hmda", fmt="md").decode()
    assert "No statement about changes is available" in md


FORGED = (
    "Mortgage ![t](https://attacker.example/t.png) [call us](https://evil.example) "
    "<https://evil.example> **APPROVED** | # heading"
)


def test_configured_text_cannot_forge_links_images_or_sections(
    decided: dict[str, Any], tmp_path: Path
) -> None:
    """``notice.product`` put a tracking image, a link and bold text in every issued notice,
    and an image path made the PDF embed a local file."""
    from PIL import Image

    png = tmp_path / "local.png"
    Image.new("RGB", (2, 2)).save(png)
    hostile = notice.NoticeConfig(
        creditor_name=f"Bank ![x]({png})", product=FORGED, creditor_contact="[a](b)"
    )
    md = notice.render(ctx(decided, config=hostile), dataset="base", fmt="md").decode()
    assert r"Mortgage !\[t\](https://attacker.example/t.png) \[call us\]" in md
    assert r"\<https://evil.example\> \*\*APPROVED\*\* \| \# heading" in md
    html = notice.render(ctx(decided, config=hostile), dataset="base", fmt="html").decode()
    assert "<img" not in html and "<a " not in html and "<strong>APPROVED" not in html
    assert "![t](https://attacker.example/t.png)" in html  # shown as the text it is
    pdf = notice.render(ctx(decided, config=hostile), dataset="base", fmt="pdf")
    assert b"/Subtype /Image" not in pdf


def test_a_recorded_reason_is_one_line_of_literal_text(decided: dict[str, Any]) -> None:
    """A reason recorded before the spec refused newlines cannot add a reason or a section."""
    record = json.loads(json.dumps(decided["denial"]))
    record["body"]["reasons"][0]["reason"] = "Debt\n5. Forged\n\n## Your rights\nNone"
    md = notice.render(ctx(decided, record=record), dataset="hmda", fmt="md").decode()
    assert "1. Debt 5. Forged  \\#\\# Your rights None\n" in md
    assert "\n5. Forged" not in md and "\n## Your rights\nNone" not in md


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"creditor": "Acme Bank"}, "params.yaml notice.creditor: must hold name, address"),
        ({"creditor": {"nmae": "Acme"}}, "notice.creditor: unknown setting(s) ['nmae']"),
        ({"produkt": "x"}, "params.yaml notice: unknown setting(s) ['produkt']"),
        ("Acme", "params.yaml notice: must hold product, creditor, agency"),
        ({"creditor": {"name": ["Acme", "Bank"]}}, "notice.creditor.name: must be one line of"),
        ({"creditor": {"name": False}}, "must be one line of text, got bool False"),
        ({"product": {"a": 1}}, "notice.product: must be one line of text, got dict"),
        ({"product": "Mortgage\n\n**Action taken:** approved"}, "notice.product contains a"),
    ],
)
def test_config_of_the_wrong_kind_is_refused_by_name(params: Any, message: str) -> None:
    """Each used to be a placeholder printed on an issued notice, a Python repr in it, or a
    'dictionary update sequence' error."""
    with pytest.raises(ValueError, match=re.escape(message)):
        notice.NoticeConfig.from_params(params)
