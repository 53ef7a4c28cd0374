"""``governance notice ...`` and the audit commands about one subject: ``audit recourse``,
``audit subject-report``, ``audit retention``, ``audit hold`` / ``audit release``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from governance.cli.audit import IdArg, audit_app
from governance.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    emit,
    fail,
    guard,
    ledger,
    output_file,
    write_whole,
)
from governance.settings import Settings

# The subjects' modules (notices, recourse, reports) import scikit-learn, MLflow and model
# signing: about 3.5 s, paid by every command if imported here. Each command imports its own.
SubjectArg = Annotated[str, typer.Argument(help="Subject id (stored only as its keyed hash).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded).")]
ByOpt = Annotated[str, typer.Option("--by", help="Who decided (recorded).")]


@audit_app.command("recourse")
def recourse_command(
    decision_id: IdArg, as_json: JsonOpt = False, project: ProjectOpt = None
) -> None:
    """The exact recourse recorded with an adverse decision: single changes and the
    minimal-cost combined change, each re-scored to the favourable outcome, or "no feasible
    recourse"."""
    from governance.subjects.recourse import recourse_of

    with ledger(project) as book:
        doc = guard(lambda: recourse_of(book, decision_id))
    if as_json:
        emit(doc)
        return
    if not doc["adverse"] and doc["effective_outcome"] != doc["outcome"]:
        typer.echo(
            f"decision {decision_id}: the model's outcome {doc['outcome']} was not adverse, so no"
            f" recourse was computed; a reviewer's override made it {doc['effective_outcome']}"
        )
        return
    if not doc["adverse"]:
        typer.echo(f"decision {decision_id} is {doc['outcome']}: not adverse, no recourse needed")
        return
    rc = doc["recourse"]
    event = doc["event"]
    typer.echo(
        f"decision {decision_id}: {doc['outcome']} (score {rc['score']:.4f}, threshold "
        f"{rc['threshold']}); recourse recorded as {event['id']} (seq {event['seq']})"
    )
    for line in rc["summary"]:
        typer.echo(f"  - {line}")
    if rc["feasible"]:
        c = rc["combined"]
        typer.echo(
            f"minimal combined cost {c['cost']:.4g}; re-scored {c['score']:.4f} -> {c['outcome']}"
        )
    typer.echo("immutable: " + (", ".join(rc["immutable"]) or "none"))


class _NoticeGroup(TyperGroup):
    """``notice ID`` means ``notice issue ID``; ``notice verify FILE`` checks a file."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["issue", *args]
        return super().parse_args(ctx, args)


notice_app = typer.Typer(
    cls=_NoticeGroup,
    help="Adverse-action notices: `notice ID [--format html|md|pdf]` issues one from the ledger"
    " and records its SHA-256; `notice verify FILE` proves a file is a notice issued.",
    no_args_is_help=True,
)
app.add_typer(notice_app, name="notice")


@notice_app.command("issue")
def notice_issue(
    decision_id: IdArg,
    fmt: Annotated[str, typer.Option("--format", help="html, md or pdf.")] = "html",
    out: Annotated[
        Path | None, typer.Option(help="File to write (default notice-ID.FORMAT).")
    ] = None,
    date: Annotated[
        str | None,
        typer.Option(
            help="Issue date YYYY-MM-DD (default: today, UTC): from the decision's day to today,"
            " a day either way for the creditor's time zone."
        ),
    ] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Issue the adverse-action notice of a denial from the ledger alone (no model registry)
    and record it as a `notice` event holding the document's SHA-256."""
    from governance.core.notice import FORMATS
    from governance.subjects import notices

    if fmt not in FORMATS:
        fail(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    settings = Settings.resolve(project)
    path = out or Path(f"notice-{decision_id}.{fmt}")
    output_file(path, project, what="--out" if out else "notice file", parents=True)
    with ledger(project) as book:
        doc = guard(
            lambda: notices.issue(
                book, settings.project_dir, decision_id, path, fmt=fmt, issued=date
            )
        )
    if as_json:
        emit(doc)
    else:
        typer.echo(
            f"notice for decision {decision_id} written to {path} (sha256 {doc['sha256']}); "
            f"recorded as notice event {doc['event']['id']} (seq {doc['event']['seq']})"
        )


@notice_app.command("verify")
def notice_verify(
    file: Annotated[Path, typer.Argument(help="The notice file (html, md or pdf).")],
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Prove that a file is a notice issued from this ledger: its SHA-256 is in a `notice`
    event, the decision it names is unchanged, and rendering it again from the ledger gives the
    same bytes; the event's inclusion proof verifies. Exit 1 otherwise (one changed character
    is enough)."""
    from governance.subjects import notices

    settings = Settings.resolve(project)
    with ledger(project) as book:
        doc = guard(lambda: notices.verify(book, settings.project_dir, file))
    ok = doc["rendered_again_matches"] and doc["proof_verified"]
    if as_json:
        emit(doc)
    elif ok:
        typer.echo(
            f"ok: {file} is the {doc['format']} notice issued {doc['issued_on']} for decision "
            f"{doc['decision_id']} (notice event {doc['event']['id']}, seq {doc['event']['seq']})"
        )
    else:
        why = (
            "no longer renders the same from the ledger"
            if not doc["rendered_again_matches"]
            else "its notice event's inclusion proof does not verify"
        )
        typer.echo(f"error: {file} was issued but {why}", err=True)
    if not ok:
        raise typer.Exit(1)


@audit_app.command("hold")
def hold_command(
    subject: SubjectArg, reason: ReasonOpt = "", by: ByOpt = "", project: ProjectOpt = None
) -> None:
    """Put a subject's records under a legal hold: `forget` is refused until it is released."""
    from governance.subjects import holds

    with ledger(project) as book:
        receipt = guard(lambda: holds.hold(book, subject, reason=reason, by=by))
    typer.echo(f"legal hold recorded as {receipt.id} (seq {receipt.seq})")


@audit_app.command("release")
def release_command(
    subject: SubjectArg, reason: ReasonOpt = "", by: ByOpt = "", project: ProjectOpt = None
) -> None:
    """Release the legal hold on a subject."""
    from governance.subjects import holds

    with ledger(project) as book:
        receipt = guard(lambda: holds.release(book, subject, reason=reason, by=by))
    typer.echo(f"legal hold released: recorded as {receipt.id} (seq {receipt.seq})")


@audit_app.command("retention")
def retention_command(
    now: Annotated[
        str | None, typer.Option(help="Judge as of this ISO 8601 time (default: now).")
    ] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """What is past its retention period (params.yaml `retention`; Reg B 25 months, AI Act 6
    months minimum) and which subjects may be erased; subjects under a legal hold are kept."""
    from governance.core.retention import RetentionPolicy
    from governance.subjects import holds
    from governance.subjects.project import params

    settings = Settings.resolve(project)
    policy = guard(
        lambda: RetentionPolicy.from_params(params(settings.project_dir).get("retention"))
    )
    when = guard(lambda: _instant(now)) if now else None
    with ledger(project) as book:
        doc = guard(lambda: holds.retention_report(book, policy, now=when))
    if as_json:
        emit(doc)
        return
    typer.echo(f"retention as of {doc['now']} (minimum {doc['minimum_months']} months)")
    for row in doc["types"]:
        typer.echo(
            f"  {row['type']:<20} {row['months']:>3} months  before {row['cutoff'][:10]}"
            f"  {row['records_due']:>8} of {row['records']} records due"
        )
    typer.echo(
        f"subjects: {doc['subjects']}; due for erasure {len(doc['subjects_due'])}; "
        f"under a legal hold {len(doc['subjects_held'])}"
    )


def _instant(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--now: {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError("--now must have a time zone (e.g. a trailing Z for UTC)")
    return when


@audit_app.command("subject-report")
def subject_report_command(
    subject: SubjectArg,
    out: Annotated[Path, typer.Argument(help="File to write (.html or .json).")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="html or json (default: from OUT's suffix).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Everything the ledger holds about one subject (GDPR art. 15): decisions with inputs,
    outcome, logic, contributions, recourse, reviews, contests, overrides, notices, legal holds
    and erasures, each record with its inclusion proof."""
    from governance.subjects import report

    kind = fmt or ("json" if out.suffix.lower() == ".json" else "html")
    if kind not in ("html", "json"):
        fail(f"--format must be html or json, got {kind!r}")
    output_file(out, project)
    settings = Settings.resolve(project)
    with ledger(project) as book:
        doc = guard(lambda: report.build(book, subject, cards=report.registry_cards(settings)))
    text = (
        json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
        if kind == "json"
        else report.render_html(doc)
    )
    try:
        write_whole(out, lambda tmp: tmp.write_text(text))
    except OSError as exc:
        fail(f"cannot write {out}: {exc}")
    typer.echo(
        f"subject report written to {out}: {len(doc['decisions'])} decision(s), "
        f"{len(doc['records'])} record(s), proofs "
        f"{'verified' if doc['all_proofs_verified'] else 'NOT VERIFIED'}"
        + (f"; personal data erased {doc['erasures'][-1]['ts']}" if doc["erased"] else "")
    )
    if not doc["all_proofs_verified"]:
        raise typer.Exit(1)
