"""What the explorer shows about recourse and notices (views built from the ledger alone).

:func:`recourse_view` turns a decision's recorded ``recourse`` event into the rows of the
decision page's "What would have changed the decision" section; :func:`notice_views` lists the
notices issued for it; :func:`notice_preview` and :func:`issued_notice` render a notice as an
HTML fragment (Markdown through markdown-it with raw HTML escaped) for the explorer's pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

from governance.core import notice as core_notice
from governance.core.recourse_words import change_words
from governance.ledger import Ledger
from governance.subjects import notices
from governance.subjects.recourse import is_adverse

ERR_NOT_NOTICE = "record {id} is not a notice event"


def _fragment(markdown: str) -> Markup:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    return Markup(md.render(markdown))  # raw HTML in the Markdown is escaped (html=False)


def recourse_view(body: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The decision page's recourse section: adverse or not, the sentences, the changes."""
    found = next((e for e in events if e.get("type") == "recourse"), None)
    if not is_adverse(dict(body)):
        return {"adverse": False}
    if found is None:
        return {"adverse": True, "recorded": False}
    rc = found["body"]["recourse"]
    combined = rc.get("combined") or {}
    return {
        "adverse": True,
        "recorded": True,
        "feasible": rc["feasible"],
        "summary": rc["summary"],
        "combined": [{**c, "words": change_words(c)} for c in combined.get("changes", [])],
        "combined_cost": combined.get("cost"),
        "combined_score": combined.get("score"),
        "singles": [
            {**s["changes"][0], "cost": s["cost"], "score": s["score"]} for s in rc["singles"]
        ],
        "immutable": [rc["labels"].get(f, f) for f in rc["immutable"]],
        "event": {k: found[k] for k in ("id", "seq", "ts", "hash")},
    }


def notice_views(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The notices issued for a decision, oldest first."""
    return [
        {
            "id": e["id"],
            "seq": e["seq"],
            "ts": e["ts"],
            "format": e["body"]["format"],
            "issued": e["body"]["issued"],
            "sha256": e["body"]["sha256"],
        }
        for e in events
        if e.get("type") == "notice"
    ]


def notice_preview(ledger: Ledger, project_dir: Path, decision_id: str) -> Markup:
    """The notice as it would be issued today, as an HTML fragment (nothing is recorded)."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    data, _ = notices.render_for(ledger, project_dir, decision_id, fmt="md", issued=today)
    return _fragment(data.decode())


def issued_notice(ledger: Ledger, project_dir: Path, event_id: str) -> dict[str, Any]:
    """An issued notice rendered again from the ledger, and whether it is the recorded bytes.

    Raises
    ------
    LookupError
        If ``event_id`` is not a notice event.
    """
    record = ledger.get(event_id)
    if record is None or record.type != "notice":
        raise LookupError(ERR_NOT_NOTICE.format(id=event_id))
    body = record.body
    config = core_notice.NoticeConfig(**body["config"])
    data, _ = notices.render_for(
        ledger,
        project_dir,
        body["decision_id"],
        fmt=body["format"],
        issued=body["issued"],
        config=config,
        before=record.seq,
    )
    markdown, _ = notices.render_for(
        ledger,
        project_dir,
        body["decision_id"],
        fmt="md",
        issued=body["issued"],
        config=config,
        before=record.seq,
    )
    return {
        "event": {"id": record.id, "seq": record.seq, "ts": record.ts, "hash": record.hash},
        "body": body,
        "data": data,
        "matches": core_notice.sha256(data) == body["sha256"],
        "html": _fragment(markdown.decode()),
    }
