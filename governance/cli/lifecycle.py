"""``governance promote``, ``rollback``, ``history`` and ``evidence`` (build and verify)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from governance.cli.common import (
    JsonOpt,
    ProjectOpt,
    app,
    emit,
    fail,
    guard,
    output_file,
    printable,
    service,
)

ModelArg = Annotated[str, typer.Argument(help="Registered model name.")]
ApproverOpt = Annotated[
    str, typer.Option("--approver", help="Who approves this move (recorded in the ledger).")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")]
AliasOpt = Annotated[str, typer.Option("--alias", help="The alias to move.")]


def _moved(doc: dict[str, Any]) -> str:
    before = doc["previous_version"]
    was = f" (was version {before})" if before is not None else " (was unset)"
    return (
        f"{doc['alias']} of {doc['model']} is now version {doc['version']}{was}:"
        f" {doc['action']} approved by {printable(doc['approver'])} ({printable(doc['reason'])});"
        f" ledger event"
        f" {doc['event']['id']} at {doc['event']['ts']}"
    )


@app.command()
def promote(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The version to promote.")],
    approver: ApproverOpt,
    reason: ReasonOpt,
    alias: AliasOpt = "champion",
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Move an alias (default champion) to a version that passed every gate; recorded.

    Refuses, naming each failed condition, unless the version's lineage resolves, it passed the
    validation and fairness gates, its data is restorable, its commit was clean and its model
    card exists. Refusals are recorded too.
    """
    from governance.lifecycle import promotion

    with service(project) as svc:
        doc = guard(
            lambda: promotion.promote(
                svc.settings,
                svc.ledger,
                model,
                version,
                approver=approver,
                reason=reason,
                alias=alias,
            )
        )
    emit(doc) if as_json else typer.echo(_moved(doc))


@app.command()
def rollback(
    model: ModelArg,
    approver: ApproverOpt,
    reason: ReasonOpt,
    alias: AliasOpt = "champion",
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Move an alias back to the version it held before its last recorded move; recorded."""
    from governance.lifecycle import promotion

    with service(project) as svc:
        doc = guard(
            lambda: promotion.rollback(
                svc.settings, svc.ledger, model, approver=approver, reason=reason, alias=alias
            )
        )
    emit(doc) if as_json else typer.echo(_moved(doc))


@app.command()
def history(
    model: ModelArg,
    alias: AliasOpt = "champion",
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Which version held the alias at this time (ISO 8601; no zone = UTC)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Who moved an alias, when and why (refusals included), from the ledger alone."""
    from governance.lifecycle import promotion

    with service(project) as svc:
        doc = guard(lambda: promotion.history(svc.ledger, model, alias=alias, at=at))
    if as_json:
        emit(doc)
        return
    if isinstance(doc, dict):
        if doc["version"] is None:
            typer.echo(f"at {doc['at']}: {alias} of {model} pointed at no version")
        else:
            who = f" by {printable(doc['approver'])}" if doc["approver"] else ""
            typer.echo(
                f"at {doc['at']}: {alias} of {model} was version {doc['version']}"
                f" ({doc['action']} at {doc['since']}{who}: {printable(doc['reason'])}; event"
                f" {doc['event_id']})"
            )
        return
    if not doc:
        typer.echo(f"no recorded moves of {alias} for {model}", err=True)
    for e in doc:
        if e["action"] == "refuse":
            what = f"REFUSED {e['requested']} of v{e['version']}: {', '.join(e['failures'])}"
        else:
            before = e["previous_version"]
            what = f"{e['action']:<8} v{e['version']}" + (f" (was v{before})" if before else "")
        reason = printable(e["reason"] or "")
        who = f"by {printable(e['approver'])}: {reason}" if e["approver"] else reason
        typer.echo(f"{e['ts']}  {what}  {who}  [{e['event_id']}]")


class _EvidenceGroup(TyperGroup):
    """``evidence MODEL VERSION OUT`` means ``evidence build ...``; ``evidence verify`` too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["build", *args]
        return super().parse_args(ctx, args)


evidence_app = typer.Typer(
    cls=_EvidenceGroup,
    help="Evidence packs: `evidence MODEL VERSION OUT.zip` builds one, `evidence verify OUT.zip`"
    " checks one offline.",
    no_args_is_help=True,
)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("build")
def evidence_build(
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The model version.")],
    out: Annotated[Path, typer.Argument(help="The zip file to write.")],
    sample: Annotated[
        int, typer.Option(min=0, help="Decisions of the version to prove (seeded sample).")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the decision sample.")] = 0,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Bundle a version's card, lineage, reports, promotion history, checkpoint and proofs."""
    from governance.lifecycle.evidence import build_evidence

    output_file(out, project, parents=True)
    with service(project) as svc:
        doc = guard(
            lambda: build_evidence(
                svc.settings, svc.ledger, model, version, out, sample=sample, seed=seed
            )
        )
    if as_json:
        emit(doc)
        return
    d = doc["decisions"]
    absent = "".join(f"\nabsent: {k}: {why}" for k, why in doc["absent"].items())
    typer.echo(
        f"wrote {out}: {doc['files']} files for {model} version {version};"
        f" {d['sampled']} of {d['population']} decisions proved (seed {d['seed']}),"
        f" {doc['promotions']} promotion events, checkpoint of {doc['checkpoint']['size']}"
        f" records (key {doc['checkpoint']['key_id']}), anchored as ledger record"
        f" {doc['anchor']['record_id']}{absent}"
    )


@evidence_app.command("verify")
def evidence_verify(
    pack: Annotated[Path, typer.Argument(help="The evidence pack (zip).")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="A trusted copy of the ledger's checkpoint public key (PEM)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a pack offline: file hashes, checkpoint signature, inclusion proofs, anchor."""
    from governance.lifecycle.evidence import verify_evidence

    if not pack.is_file():
        fail(f"{pack} does not exist")
    report = verify_evidence(pack, public_key=public_key)
    if as_json:
        emit(report.to_dict())
    elif report.ok:
        cp = report.checkpoint or {}
        typer.echo(
            f"ok: {pack} ({report.model} version {report.version}): {report.files} files match"
            f" the manifest, {report.proofs} inclusion proofs verify under the checkpoint of"
            f" {cp.get('size')} records signed by key {cp.get('key_id')}"
            + (f" (trusted copy {public_key})" if public_key else " (the key in the pack)")
        )
    if not report.ok:
        if not as_json:
            typer.echo(f"error: evidence pack does not verify: {report.problem}", err=True)
        raise typer.Exit(1)


@app.command()
def monitor(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str | None, typer.Option(help="Version (default: by alias).")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Alias (default champion, else candidate).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 start of the window.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end of the window.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Production monitoring from the ledger: drift, performance, fairness; exit 1 on a failed
    check."""
    from governance.lifecycle import monitoring
    from governance.pipeline.stages import Workspace

    ws = guard(lambda: Workspace.open(project))
    result = guard(
        lambda: monitoring.run(
            ws.settings, ws.params, model, version=version, alias=alias, since=since, until=until
        )
    )
    if as_json:
        typer.echo(json.dumps(result.doc, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(result.markdown)
        typer.echo(f"report: {result.paths.get('html', '')}", err=True)
    if not result.doc["passed"]:
        raise typer.Exit(1)


@app.command()
def mirror(
    model: Annotated[
        str | None, typer.Argument(help="Registered model (default: the project's model).")
    ] = None,
    version: Annotated[
        list[str] | None,
        typer.Option(
            "--version",
            help="Only this version (repeatable; default: every version with decisions).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Copy the ledger's decisions to MLflow: a decisions table, metrics and an explorer link
    on each registered version (incremental; the ledger stays the source of truth)."""
    from governance.lifecycle import mirror as decision_mirror
    from governance.pipeline.stages import Workspace

    ws = guard(lambda: Workspace.open(project))
    name = model or ws.spec.model_name
    doc = guard(lambda: decision_mirror.mirror_model(ws.settings, name, versions=version or None))
    if as_json:
        emit(doc)
    else:
        typer.echo(decision_mirror.summary(doc))
