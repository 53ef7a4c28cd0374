"""``governance audit ...``: show, trace, find, replay, prove, export, forget.

``verify``, ``checkpoint``, ``bundle`` and ``vkey`` are in :mod:`governance.cli.integrity`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from governance.cli.common import (
    EXIT_CANNOT_CHECK,
    EXPECTED_ERRORS,
    JsonOpt,
    ProjectOpt,
    app,
    emit,
    fail,
    guard,
    ledger,
    printable,
    service,
)
from governance.core.text import refuse_control

ERR_FORGET_UNKNOWN = (
    "no records about this subject in the ledger: nothing erased, nothing recorded (check the id)"
)

audit_app = typer.Typer(help="Audit the decision ledger.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

IdArg = Annotated[str, typer.Argument(help="Decision id.")]


@audit_app.command()
def show(decision_id: IdArg, as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """One decision as recorded, with outcomes and reviews and its effective outcome."""
    with service(project) as svc:
        doc = guard(lambda: svc.show(decision_id))
    if as_json:
        emit(doc)
        return
    b = doc["body"]
    lines = [
        f"decision {doc['id']}  seq {doc['seq']}  {doc['ts']}",
        f"model    {b['model']['name']} v{b['model']['version']} (alias {b['model']['alias']})",
        f"outcome  {b['outcome']} (score {b['score']:.4f}, threshold {b['threshold']})"
        f"  effective: {doc['effective_outcome']}  status: {doc['status']}",
        *_reason_lines(b, "  "),
        f"inputs   {json.dumps(b['inputs'], sort_keys=True)}",
        f"caller   {printable(b['caller'])}  purpose {printable(b['purpose'])}",
        f"events   {len(doc['events'])}",
    ]
    lines += [f"  {_event_line(e)}" for e in doc["events"]]
    typer.echo("\n".join(lines))


def _reason_lines(body: dict[str, Any], pad: str) -> list[str]:
    """Principal reasons (adverse outcomes) or main factors (favorable), named as such."""
    out = []
    if body.get("reasons"):
        out.append(f"reasons{pad} " + "; ".join(r["reason"] for r in body["reasons"]))
    if body.get("main_factors"):
        factors = "; ".join(f["factor"] for f in body["main_factors"])
        out.append(f"main factors (not adverse-action reasons): {factors}")
    if body.get("out_of_distribution"):
        out.append(f"out of distribution: {', '.join(body['out_of_distribution'])}")
    return out


def _event_line(e: dict[str, Any]) -> str:
    """One later event: when, what, who (every caller-given text escaped)."""
    b = e["body"]
    if e["type"] == "outcome":
        what = f"outcome observed {printable(b.get('observed'))}"
        if b.get("observed_at"):
            what += f" at {printable(b['observed_at'])}"
        if b.get("corrects"):
            what += f" (correction of {b['corrects']})"
        who = b.get("recorded_by") or b.get("source")
        if b.get("source") and b.get("recorded_by"):
            who = f"{b['recorded_by']} (source {b['source']})"
    elif e["type"] == "review":
        what = f"{b.get('kind')}"
        if b.get("outcome"):
            what += f" -> {printable(b['outcome'])}"
        what += f": {printable(b.get('reason'))}"
        who = b.get("reviewer")
        if b.get("recorded_by") and b.get("recorded_by") != who:
            who = f"{who} (recorded by {b['recorded_by']})"
    else:  # e.g. the recourse recorded with a denial, an adverse-action notice issued
        what, who = e["type"], b.get("caller") or b.get("issued_by") or b.get("recorded_by")
    by = f"  by {printable(who)}" if who is not None else ""
    return f"{e['ts']}  {e['id']}  {what}{by}"


@audit_app.command()
def trace(decision_id: IdArg, as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """A decision joined to its model version, training run, data, validation, fairness, card
    and code commit."""
    with service(project) as svc:
        doc = guard(lambda: svc.trace(decision_id))
    if as_json:
        emit(doc)
        return
    d = doc["decision"]
    b = d["body"]
    m = doc["model"]
    matches = "matches" if m["lineage_id_matches"] else "MISMATCH"
    lines = [
        f"decision   {d['id']}  {d['ts']}  seq {d['seq']}  hash {d['hash'][:16]}…",
        f"outcome    {b['outcome']} (score {b['score']:.4f} vs threshold {b['threshold']}),"
        f" effective {d['effective_outcome']}, status {d['status']}",
        *_reason_lines(b, "   "),
        f"model      {m['name']} version {m['version']} via alias {m['alias']}"
        f"  lineage {m['lineage_id'][:23]}… ({matches})",
        f"training   MLflow run {doc['training_run']['mlflow_run_id']}"
        f"  ({doc['training_run']['run'].get('source')})",
    ]
    lines += [f"data       {x['path']}  md5 {x['md5']}  {x['rows']} rows" for x in doc["data"]]
    v = doc["validation"]
    lines += [
        f"validation {v['suite']}: {'passed' if v['success'] else 'FAILED'} on md5 {v['data_md5']}",
        f"fairness   {doc['fairness']['message']}",
        f"card       {doc['model_card']['path']} (MLflow artifact"
        f" {doc['model_card']['mlflow_artifact']})",
        f"code       commit {doc['code']['git_commit']}"
        + (" (dirty)" if doc["code"]["git_dirty"] else ""),
    ]
    typer.echo("\n".join(lines))


@audit_app.command()
def find(
    subject: Annotated[str | None, typer.Option("--subject", help="Subject id.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Model version.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, exclusive.")] = None,
    event: Annotated[str, typer.Option("--type", help="Event type.")] = "decision",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Find events by subject, model version or time range (seq order)."""
    from governance.decisions.reviews import effective_outcome, review_status

    if not any([subject, model, since, until]):
        fail("give --subject, --model (with --version) or --since/--until")
    with ledger(project) as book:
        records = guard(
            lambda: book.find(
                subject_id=subject,
                model=model,
                version=version,
                since=since,
                until=until,
                type=event,
                limit=limit,
                offset=offset,
            )
        )
        rows: list[dict[str, Any]] = []
        for r in records:
            events = book.events_for(r.id) if r.type == "decision" else []
            decided = r.type == "decision"
            rows.append(
                {
                    "id": r.id,
                    "seq": r.seq,
                    "ts": r.ts,
                    "type": r.type,
                    "outcome": r.body.get("outcome"),
                    "effective_outcome": effective_outcome(r, events) if decided else None,
                    "status": review_status(events) if decided else None,
                    "score": r.body.get("score"),
                    "model": r.body.get("model"),
                }
            )
    if as_json:
        emit(rows)
        return
    for r in rows:
        m = r["model"] if isinstance(r["model"], dict) else {}
        model_txt = " v".join(printable(m[k]) for k in ("name", "version") if m.get(k) is not None)
        score = f"{r['score']:.4f}" if isinstance(r["score"], float) else ""
        overridden = (
            f" (effective {r['effective_outcome']})"
            if r["effective_outcome"] not in (None, r["outcome"])
            else ""
        )
        status = f" [{r['status']}]" if r["status"] not in (None, "decided") else ""
        typer.echo(
            f"{r['seq']:>8}  {r['ts']}  {r['id']}  {r['type']:<8} {model_txt}"
            f"  {printable(r['outcome'] or '')}{overridden}{status} {score}"
        )
    if not rows:
        typer.echo("no matching records", err=True)


@audit_app.command()
def replay(decision_id: IdArg, as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Reload the recorded model version and re-score the recorded inputs; exit 1 on mismatch."""
    with service(project) as svc:
        doc = guard(lambda: svc.replay(decision_id))
    if as_json:
        emit(doc)
    else:
        checks = ", ".join(f"{k} {'=' if ok else '≠'}" for k, ok in doc["checks"].items())
        verdict = "reproduced exactly" if doc["match"] else "DOES NOT REPRODUCE"
        typer.echo(
            f"{decision_id}: {verdict} with {doc['model']['name']} "
            f"v{doc['model']['version']} ({checks})"
        )
    if not doc["match"]:
        raise typer.Exit(1)


@audit_app.command()
def prove(
    decision_id: IdArg,
    as_json: JsonOpt = False,
    sign: Annotated[
        bool,
        typer.Option(
            "--checkpoint", help="Sign a checkpoint if none covers the record yet (a write)."
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """RFC 9162 inclusion proof of a decision under the latest signed checkpoint covering it.

    Never writes unless --checkpoint: a record no checkpoint covers yet exits 2.
    """
    from governance.ledger import NotCovered

    with ledger(project) as book:
        try:
            doc = book.inclusion_proof(decision_id, checkpoint=sign)
        except NotCovered as exc:
            fail(str(exc), EXIT_CANNOT_CHECK)
        except EXPECTED_ERRORS as exc:
            fail(str(exc))
    if as_json:
        emit(doc)
    else:
        typer.echo(
            f"record {doc['id']} (leaf {doc['leaf_index']}) is in the tree of size "
            f"{doc['tree_size']} with root {doc['root']}: proof of {len(doc['proof'])} hashes, "
            f"{'verified' if doc['verified'] else 'NOT VERIFIED'} against checkpoint signed by "
            f"key {doc['checkpoint'].get('key_id')}"
        )
    if not doc["verified"]:
        raise typer.Exit(1)


@audit_app.command()
def export(
    out: Annotated[Path, typer.Argument(help="File to write.")],
    fmt: Annotated[
        Literal["jsonl", "parquet"], typer.Option("--format", help="jsonl or parquet.")
    ] = "jsonl",
    project: ProjectOpt = None,
) -> None:
    """Export every record (as stored, PII still encrypted); parquet adds its hash and shard.

    A sharded ledger's chains follow each other, shard 0 first, each from seq 0. OUT appears
    whole or not at all; it may not be the ledger's database nor lie inside the state
    directory.
    """
    from governance.cli.common import output_file, write_whole
    from governance.ledger.shards import ShardedLedger

    def write(book: Any, tmp: Path) -> int:
        rows: list[dict[str, Any]] = []
        count = 0
        chains = book.shards if isinstance(book, ShardedLedger) else [book]
        with tmp.open("wb") as fh:
            for shard, chain in enumerate(chains):
                seq = 0
                try:
                    for r in chain.iter_records():
                        if fmt == "jsonl":
                            fh.write(r.data + b"\n")
                        else:
                            rows.append(
                                {
                                    "shard": shard,
                                    "seq": r.seq,
                                    "id": r.id,
                                    "type": r.type,
                                    "ts": r.ts,
                                    "prev": r.prev,
                                    "hash": r.hash,
                                    "record": r.data.decode(),
                                }
                            )
                        seq += 1
                        count += 1
                except ValueError as exc:
                    where = f"shard {shard}, seq {seq}" if len(chains) > 1 else f"seq {seq}"
                    fail(
                        f"cannot export: the ledger record at {where} does not parse ({exc});"
                        " nothing written (run `governance audit verify`)"
                    )
            if fmt == "parquet":
                import pandas as pd

                pd.DataFrame(rows).to_parquet(fh, index=False)
        return count

    output_file(out, project)
    with ledger(project) as book:
        try:
            count = write_whole(out, lambda tmp: write(book, tmp))
        except OSError as exc:
            fail(f"cannot write {out}: {exc}")
    typer.echo(f"exported {count} records to {out}")


@audit_app.command()
def forget(
    subject: Annotated[str, typer.Argument(help="Subject id whose personal data to erase.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "erasure request",
    project: ProjectOpt = None,
) -> None:
    """GDPR art. 17: destroy the subject's key; their PII becomes unreadable, the chain verifies.

    A subject the ledger holds no record about is refused (a mistyped id must not be recorded
    as an erasure while the real subject's data stays)."""
    guard(lambda: refuse_control("--reason", reason, prose=True))
    with ledger(project) as book:
        if not guard(lambda: book.find(subject_id=subject, limit=1)):
            fail(ERR_FORGET_UNKNOWN)
        receipt = guard(lambda: book.forget(subject, reason=reason))
    typer.echo(f"forgot subject: erasure recorded as {receipt.id} (seq {receipt.seq})")
