"""Pipeline commands: ``governance stage ...`` (dvc.yaml calls these) and ``governance lineage``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from governance.cli.common import ProjectOpt, app, fail, guard, ledger, stage_app
from governance.core.text import refuse_control
from governance.settings import Settings

ViaOpt = Annotated[str, typer.Option("--via", help="What runs the stage, recorded in lineage.")]


def _run_stage(name: str, project: Path | None, via: str) -> None:
    # Imported here: the stages pull in pandas (seconds of start-up under load), which the
    # ledger commands (`governance audit verify`, timed with its start-up) never need.
    from governance.pipeline import runner, stages

    guard(lambda: refuse_control("--via", via))  # recorded in lineage and the ledger

    def go() -> stages.StageResult:
        ws = stages.Workspace.open(project)
        return runner.run(ws, name, {"source": via, "stage": name})

    result: stages.StageResult = guard(go)
    if not result.passed:
        fail(result.message)
    summary = {k: v for k, v in result.evidence.items() if isinstance(v, str | int | float | bool)}
    typer.echo(f"{name}: ok " + json.dumps(summary, sort_keys=True)[:400], err=True)


def _stage_command(name: str, doc: str) -> None:
    def command(project: ProjectOpt = None, via: ViaOpt = "cli") -> None:
        _run_stage(name, project, via)

    command.__doc__ = doc
    stage_app.command(name)(command)


# One command per stage of governance.pipeline.stages.STAGES, by the same name (a test checks it).
_DOCS = {
    "ingest": "Read the configured source into data/raw/applications.csv.",
    "validate": "Run the Great Expectations suite; exit 1 naming failed expectations.",
    "split": "Seeded, stratified train/test split of validated data.",
    "train": "Fit the model and compile its scorecard (checked against scikit-learn).",
    "evaluate": "Held-out metrics with bootstrap intervals; ROC and calibration plots.",
    "fairness": "fairlearn metrics by group; exit 1 with the measured gap if a gate fails.",
    "alternatives": "Less discriminatory alternatives: frontier; exit 1 if the LDA gate fails.",
    "model_card": "Write the model card as JSON, Markdown and HTML.",
    "register": "Register the model in MLflow with its lineage; alias it candidate.",
}
for _name, _doc in _DOCS.items():
    _stage_command(_name, _doc)


@app.command()
def lineage(
    model: Annotated[str, typer.Argument(help="Registered model name, e.g. mortgage-denial.")],
    version: Annotated[str | None, typer.Argument(help="Version (default: the newest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    restore: Annotated[
        Path | None, typer.Option("--restore", help="Write the exact training data here.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="prov-json or prov-n: the version's W3C PROV document (datasets by md5, code"
            " by commit, parameters, model, card; stage runs; pipeline and approvers).",
        ),
    ] = None,
    verify_signature: Annotated[
        bool,
        typer.Option(
            "--verify-signature",
            help="Check the version's files in the artifact store against its signature, its"
            " provenance statement against its lineage, and both against the registration"
            " ledger event; exit 1 naming what differs.",
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Show a model version's lineage: code, data, params, validation, fairness, metrics."""
    from governance.core.lineage import DataStore
    from governance.registry import mlflow as registry

    settings = Settings.resolve(project)
    if fmt is not None:
        _print_prov(settings, project, model, version, fmt)
        return
    if verify_signature:
        _verify_signature(settings, project, model, version, as_json)
        return
    info: dict[str, Any] = guard(lambda: registry.resolve(settings, model, version))
    restored = []
    if restore is not None:
        storage = info.get("storage", {})
        store = DataStore(
            Path(storage.get("cache", settings.project_dir / ".dvc" / "cache")), settings.dvc_remote
        )
        for d in info["datasets"]:
            dest = restore / Path(d["path"]).name

            def put(d: dict[str, Any] = d, dest: Path = dest) -> Path:
                return store.restore(d["md5"], dest)

            guard(put)
            restored.append({"path": str(dest), "md5": d["md5"]})
    if as_json:
        doc = {**info, "restored": restored} if restore is not None else info
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    _print_lineage(info)
    for r in restored:
        typer.echo(f"restored   {r['path']}  md5 {r['md5']} (verified)")


def _print_prov(
    settings: Settings, project: Path | None, model: str, version: str | None, fmt: str
) -> None:
    from governance.core.provenance import FORMATS, serialize
    from governance.lifecycle.provenance import version_prov

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    with ledger(project) as book:
        doc = guard(lambda: version_prov(settings, book, model, version))
    typer.echo(serialize(doc, fmt))


def _verify_signature(
    settings: Settings, project: Path | None, model: str, version: str | None, as_json: bool
) -> None:
    from governance.lifecycle.provenance import verify_version

    with ledger(project) as book:
        doc = guard(lambda: verify_version(settings, book, model, version))
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    typer.echo(
        f"{doc['model']} version {doc['version']}: signature and provenance verified\n"
        f"signature  model.sig sha256 {doc['signature_sha256']} (key {doc['key_id'][:16]})\n"
        f"provenance provenance.intoto.jsonl sha256 {doc['provenance_sha256']}: {doc['files']}"
        " files, data md5s, commit, params and lock file match the lineage\n"
        f"ledger     both digests as recorded by registration event"
        f" {doc['registration_event']}"
    )


def _print_lineage(info: dict[str, Any]) -> None:
    dirty = " (dirty)" if info["git_dirty"] else ""
    lines = [
        f"model      {info['model']} version {info['version']}  aliases {info.get('aliases', [])}",
        f"code       commit {info['git_commit']}{dirty}  governance {info['package_version']}",
        f"params     sha256 {info['params_hash']}",
        f"mlflow     run {info['mlflow_run_id']}",
        f"run        {info['run']}",
    ]
    for d in info["datasets"]:
        lines.append(f"data       {d['path']}  md5 {d['md5']}  {d['rows']} rows  {d['size']} bytes")
    v = info["validation"]
    stats = v["statistics"]
    lines.append(
        f"validation {v['suite']}: {'passed' if v['success'] else 'FAILED'} "
        f"({stats['successful_expectations']}/{stats['evaluated_expectations']})"
    )
    lines.append(f"fairness   {info['fairness']['message']}")
    m = info["metrics"]
    lines.append(
        f"metrics    AUC {m['auc']:.3f} [{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}]  "
        f"accuracy {m['accuracy']:.3f}  Brier {m['brier']:.3f}"
    )
    lines.append(f"card       {info['model_card']} (MLflow: model_card/model_card.md)")
    typer.echo("\n".join(lines))


card_app = typer.Typer(help="Model cards of registered versions.", no_args_is_help=True)
app.add_typer(card_app, name="card")


@card_app.command("diff")
def card_diff(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    a: Annotated[str, typer.Argument(help="First version.")],
    b: Annotated[str, typer.Argument(help="Second version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    project: ProjectOpt = None,
) -> None:
    """What changed between two versions' cards: data md5s, params, metrics, fairness."""
    from governance.core.card_diff import diff_cards
    from governance.registry import mlflow as registry

    settings = Settings.resolve(project)
    doc = guard(
        lambda: diff_cards(
            registry.model_card(settings, model, a), registry.model_card(settings, model, b)
        )
    )
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    lines = [
        f"{model}: version {a} → {b}"
        + (
            f"  (code {doc['a']['git_commit'][:10]} → {doc['b']['git_commit'][:10]})"
            if doc["code_changed"]
            else "  (same code commit)"
        )
    ]
    for d in doc["data"]:
        mark = "changed" if d["changed"] else "same"
        lines.append(
            f"data     {d['path']}: {mark}  {d['a_md5']} → {d['b_md5']}"
            f"  ({d['a_rows']} → {d['b_rows']} rows)"
        )
    for p in doc["params"]:
        lines.append(f"param    {p['name']}: {p['a']} → {p['b']}")
    for section in ("metrics", "fairness"):
        for m in doc[section]:
            if m["delta"] is not None:
                lines.append(
                    f"{section:<8} {m['name']}: {m['a']:.4f} → {m['b']:.4f} ({m['delta']:+.4f})"
                )
    typer.echo("\n".join(lines))
