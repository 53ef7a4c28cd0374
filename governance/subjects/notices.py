"""Issue adverse-action notices from the ledger, and prove later which document was issued.

:func:`issue` renders the notice of one adverse decision from what the ledger holds (the
decision record, its reviews and its recorded recourse) and the creditor's details in
``params.yaml`` → ``notice``, writes the file, and appends a ``notice`` event with the
document's SHA-256 (the file appears under its name only once the event is committed).
:func:`verify` finds the ``notice`` event holding a file's SHA-256, checks that the decision it
names is still the record it was issued from, and renders the notice again from the ledger to
show it is byte for byte the same.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from governance.core import notice as core
from governance.core import recourse_record
from governance.core.files import replacing
from governance.decisions.reviews import effective_outcome, override_in_force
from governance.ledger import Ledger
from governance.subjects.project import params, spec_for_model
from governance.subjects.recourse import decision_record

PAGE = 10_000
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "pdf": "application/pdf",
}
ERR_NOT_ISSUED = "{path} (sha256 {digest}) is not a notice issued from this ledger"
ERR_NOT_A_FILE = "cannot write the notice to {path}: it exists and is not a regular file"
ERR_CANNOT_WRITE = "cannot write the notice to {path}: {error}"
ERR_DECISION_CHANGED = (
    "notice event {event} names decision {id} with hash {recorded}, but that record's hash is "
    "now {actual}"
)

ERR_DATED_BEFORE = (
    "notice date {issued} is before decision {id} was made ({decided}): a notice cannot be"
    " dated before the decision it gives notice of"
)
ERR_DATED_AFTER = "notice date {issued} is in the future: a notice is dated the day it is issued"
DATE_SLACK = dt.timedelta(days=1)
"""A creditor's local date may be a day either side of UTC's (the decision's time and today)."""


def render_new(
    ledger: Ledger, project_dir: Path, decision_id: str, *, fmt: str, issued: str | None = None
) -> tuple[bytes, dict[str, Any]]:
    """A notice about to be issued: :func:`render_for` dated ``issued`` (default: today, UTC),
    which must lie between the decision's day and today, :data:`DATE_SLACK` allowed each way.

    A notice issued earlier is rendered again by :func:`render_for` alone: its date stays
    whatever it was (``verify`` proves bytes, not dates).

    Raises
    ------
    LookupError
        If ``decision_id`` is not a decision.
    ValueError
        If the date is malformed or outside that window, or no notice can be rendered.
    """
    decided = decision_record(ledger, decision_id).ts  # an unknown id is a LookupError first
    today = dt.datetime.now(dt.UTC).date()
    day = dt.date.fromisoformat(core.issue_date(issued)) if issued is not None else today
    if day < dt.date.fromisoformat(decided[:10]) - DATE_SLACK:
        raise ValueError(ERR_DATED_BEFORE.format(issued=day, id=decision_id, decided=decided))
    if day > today + DATE_SLACK:
        raise ValueError(ERR_DATED_AFTER.format(issued=day))
    return render_for(ledger, project_dir, decision_id, fmt=fmt, issued=day.isoformat())


def render_for(
    ledger: Ledger,
    project_dir: Path,
    decision_id: str,
    *,
    fmt: str,
    issued: str,
    config: core.NoticeConfig | None = None,
    before: int | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The notice's bytes and the body of its ``notice`` event (nothing is written).

    ``before``: only the decision's events recorded before this seq count (a notice rendered
    again reads the decision as it stood when the notice was issued: a later override or
    review does not change what was issued).
    """
    core.check_format(fmt)
    record = decision_record(ledger, decision_id)
    decoded = ledger.decode(record)
    events = [
        ledger.decode(r) for r in ledger.events_for(decision_id) if before is None or r.seq < before
    ]
    spec = spec_for_model(project_dir, str(record.body["model"]["name"]))
    config = config or core.NoticeConfig.from_params(params(project_dir).get("notice"))
    found = recourse_record.recorded(events)
    ctx = core.context(
        decoded,
        adverse_outcome=spec.outcomes["adverse"],
        outcome=effective_outcome(record, events),
        recourse=found["body"]["recourse"] if found else None,
        config=config,
        issued=issued,
        override=override_in_force(events),
    )
    data = core.render(ctx, dataset=spec.name, fmt=fmt)
    body = core.notice_event(
        decoded,
        fmt=fmt,
        data=data,
        issued=issued,
        dataset=spec.name,
        config=config,
        recourse_id=found["id"] if found else None,
    )
    return data, body


def issue(
    ledger: Ledger,
    project_dir: Path,
    decision_id: str,
    out: Path,
    *,
    fmt: str = "html",
    issued: str | None = None,
) -> dict[str, Any]:
    """Write the notice to ``out`` and record it; returns the event's body and receipt.

    Raises
    ------
    ValueError
        If ``out`` cannot be written (a folder, a missing or read-only parent ...): checked
        before the ``notice`` event is recorded, so nothing is recorded and nothing written.
        Or if :func:`render_new` refuses (the date, the decision): nothing is written.
    """
    data, body = render_new(ledger, project_dir, decision_id, fmt=fmt, issued=issued)
    if out.exists() and not out.is_file():
        raise ValueError(ERR_NOT_A_FILE.format(path=out))
    with replacing(out) as tmp:
        try:  # the file is ready to be renamed into place before the notice is recorded
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
        except OSError as exc:
            raise ValueError(ERR_CANNOT_WRITE.format(path=out, error=exc)) from None
        receipt = ledger.append("notice", body)
    return {**body, "path": str(out), "event": receipt._asdict()}


def verify(ledger: Ledger, project_dir: Path, path: Path) -> dict[str, Any]:
    """Prove that ``path`` is a notice issued from this ledger, and for which decision: its
    SHA-256 is in a ``notice`` event, that event is in the ledger under a signed checkpoint
    (RFC 9162 inclusion proof), the decision it names is unchanged, and rendering the notice
    again from the ledger gives the same bytes (``rendered_again_matches``).

    Raises
    ------
    LookupError
        If no ``notice`` event records the file's SHA-256 (any changed byte), or the decision
        record it names has changed since.
    """
    data = path.read_bytes()
    digest = core.sha256(data)
    event = _notice_event(ledger, digest)
    if event is None:
        raise LookupError(ERR_NOT_ISSUED.format(path=path, digest=digest))
    body = event["body"]
    record = decision_record(ledger, body["decision_id"])
    if record.hash != body["decision_hash"]:
        raise LookupError(
            ERR_DECISION_CHANGED.format(
                event=event["id"], id=record.id, recorded=body["decision_hash"], actual=record.hash
            )
        )
    config = core.NoticeConfig(**body["config"])
    again, _ = render_for(
        ledger,
        project_dir,
        body["decision_id"],
        fmt=body["format"],
        issued=body["issued"],
        config=config,
        before=event["seq"],
    )
    proof = ledger.inclusion_proof(event["id"])
    return {
        "path": str(path),
        "sha256": digest,
        "issued": True,
        "proof_verified": bool(proof["verified"]),
        "checkpoint_size": proof["tree_size"],
        "decision_id": body["decision_id"],
        "decision_hash": record.hash,
        "format": body["format"],
        "issued_on": body["issued"],
        "event": {k: event[k] for k in ("id", "seq", "ts", "hash")},
        "rendered_again_matches": again == data,
    }


def _notice_event(ledger: Ledger, digest: str) -> dict[str, Any] | None:
    offset = 0
    while True:
        page = ledger.find(type="notice", limit=PAGE, offset=offset)
        for record in page:
            if record.body.get("sha256") == digest:
                return ledger.decode(record)
        if len(page) < PAGE:
            return None
        offset += PAGE
