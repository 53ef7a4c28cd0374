"""The subject access report (GDPR art. 15(1)(h), art. 22(3); AI Act art. 86): everything the
ledger holds about one subject, with the proof that it is what was recorded.

For every decision about the subject: the inputs, the outcome (as decided and after review),
the logic involved (the model version, its description from the model card when the registry
can still give it, the per-feature contributions and the principal reasons), the recorded
recourse, reviews, contests, overrides, outcomes and the notices issued; for every record an
RFC 9162 inclusion proof under a signed checkpoint. Legal holds and erasures are stated: after
``forget`` the report says when the personal data was erased and by which event, and the
decrypted PII reads ``[erased]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined

from governance.core.pages import inline, markdown_page
from governance.decisions.reviews import effective_outcome
from governance.ledger import Ledger
from governance.registry.mlflow import RegistryUnavailable, model_card
from governance.settings import Settings

FORMAT: Final = "governance.subject-report/1"
PAGE: Final = 10_000
CardLookup = Callable[[str, str], dict[str, Any]]

ERR_NO_RECORDS = "no records about this subject in the ledger"

_ENV = Environment(
    loader=PackageLoader("governance", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # Markdown; the page escapes raw HTML (markdown-it, html=False)
    finalize=inline,  # every value is literal text: no link, image, heading or cell it forges
)


def _records(ledger: Ledger, subject_id: str) -> list[Any]:
    out: list[Any] = []
    while True:
        page = ledger.find(subject_id=subject_id, limit=PAGE, offset=len(out))
        out += page
        if len(page) < PAGE:
            return out


def _proof(ledger: Ledger, record_id: str) -> dict[str, Any]:
    p = ledger.inclusion_proof(record_id)
    keys = ("leaf_index", "leaf_hash", "record", "tree_size", "root", "proof", "checkpoint")
    return {**{k: p[k] for k in keys}, "verified": p["verified"]}


def _model_logic(cards: CardLookup | None, model: str, version: str) -> dict[str, Any]:
    if cards is None:
        return {"available": False, "why": "no model registry configured"}
    try:
        card = cards(model, version)
    except (LookupError, OSError, ValueError) as exc:
        return {"available": False, "why": str(exc)}
    details = card.get("model_details") or {}
    return {
        "available": True,
        "type": details.get("type"),
        "inputs": details.get("inputs"),
        "threshold": details.get("threshold"),
        "intended_use": (card.get("intended_use") or {}).get("primary"),
        "owner": details.get("owner"),
    }


def build(ledger: Ledger, subject_id: str, *, cards: CardLookup | None = None) -> dict[str, Any]:
    """The report as a JSON-able document.

    Parameters
    ----------
    ledger
        The decision ledger (its signing key makes the checkpoints the proofs rest on).
    subject_id
        The subject, as the caller knows them (looked up by its keyed hash).
    cards
        ``(model, version) -> model card``; None, or a lookup that fails, leaves the model
        description out with the reason (the ledger alone still gives everything else).

    Raises
    ------
    LookupError
        If the ledger holds nothing about the subject.
    """
    records = _records(ledger, subject_id)
    if not records:
        raise LookupError(ERR_NO_RECORDS)
    decoded = {r.id: ledger.decode(r) for r in records}
    logic: dict[tuple[str, str], dict[str, Any]] = {}
    decisions = []
    for r in records:
        if r.type != "decision":
            continue
        events = [ledger.decode(e) for e in ledger.events_for(r.id)]
        for e in events:
            decoded.setdefault(e["id"], e)
        m = r.body["model"]
        key = (str(m["name"]), str(m["version"]))
        if key not in logic:
            logic[key] = _model_logic(cards, *key)
        recourse = next((e for e in events if e["type"] == "recourse"), None)
        decisions.append(
            {
                "record": decoded[r.id],
                "effective_outcome": effective_outcome(r, events),
                "model_logic": logic[key],
                "recourse": recourse["body"]["recourse"] if recourse else None,
                "reviews": [e for e in events if e["type"] == "review"],
                "outcomes": [e for e in events if e["type"] == "outcome"],
                "notices": [e for e in events if e["type"] == "notice"],
                "events": events,
            }
        )
    by_type: dict[str, list[dict[str, Any]]] = {}
    for doc in decoded.values():
        by_type.setdefault(doc["type"], []).append(doc)
    erasures = [
        {
            "id": e["id"],
            "ts": e["ts"],
            "keys_destroyed": e["body"].get("keys_destroyed"),
            "reason": e["body"].get("reason"),
        }
        for e in by_type.get("erasure", [])
    ]
    proofs = {rid: _proof(ledger, rid) for rid in sorted(decoded, key=lambda i: decoded[i]["seq"])}
    return {
        "format": FORMAT,
        "generated": dt.datetime.now(dt.UTC).isoformat(),
        "subject_key": ledger.subject_key(subject_id),
        "decisions": decisions,
        "legal_holds": by_type.get("legal_hold", []) + by_type.get("legal_hold_release", []),
        "erasures": erasures,
        "erased": bool(erasures),
        "records": sorted(decoded.values(), key=lambda d: d["seq"]),
        "proofs": proofs,
        "all_proofs_verified": all(p["verified"] for p in proofs.values()),
    }


def registry_cards(settings: Settings) -> CardLookup:
    """Model cards from the MLflow registry; one it cannot give is left out with the reason."""

    def lookup(model: str, version: str) -> dict[str, Any]:
        try:
            return model_card(settings, model, version)
        except RegistryUnavailable as exc:
            raise LookupError(f"the model registry cannot give the card: {exc}") from None

    return lookup


def render_html(report: dict[str, Any]) -> str:
    """The report as a self-contained HTML page."""
    markdown = _ENV.get_template("subject_report.md.j2").render(r=report).strip() + "\n"
    return markdown_page("Subject access report", markdown)
