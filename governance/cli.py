"""The ``governance`` command. DVC's stages call ``governance stage ...``.

Errors are one line on stderr and a non-zero exit; ``--json`` prints one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from governance.settings import Settings

app = typer.Typer(
    help="Auditable ML lifecycle: governed pipeline, lineage and decision ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stage_app = typer.Typer(help="Pipeline stages (dvc.yaml calls these).", no_args_is_help=True)
app.add_typer(stage_app, name="stage")

EXIT_FAILED = 1  # a gate failed or the request could not be carried out
EXPECTED_ERRORS = (ValueError, RuntimeError, LookupError, FileNotFoundError, KeyError)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except EXPECTED_ERRORS as exc:
        fail(str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}")


ProjectOpt = Annotated[
    Path | None, typer.Option("--project", help="Project directory (default: current directory).")
]
ViaOpt = Annotated[str, typer.Option("--via", help="What runs the stage, recorded in lineage.")]


def _run_stage(name: str, project: Path | None, via: str) -> None:
    from governance import stages

    def go() -> stages.StageResult:
        ws = stages.Workspace.open(project)
        fn = getattr(stages, name)
        if name in {"validate", "fairness", "register"}:
            return fn(ws, {"source": via, "stage": name})  # type: ignore[no-any-return]
        return fn(ws)  # type: ignore[no-any-return]

    result: stages.StageResult = _guard(go)
    if not result.passed:
        fail(result.message)
    summary = {k: v for k, v in result.evidence.items() if isinstance(v, str | int | float | bool)}
    typer.echo(f"{name}: ok " + json.dumps(summary, sort_keys=True)[:400], err=True)


def _stage_command(name: str, doc: str) -> None:
    def command(project: ProjectOpt = None, via: ViaOpt = "cli") -> None:
        _run_stage(name, project, via)

    command.__doc__ = doc
    stage_app.command(name.replace("_", "-"))(command)


for _name, _doc in [
    ("ingest", "Read the configured source into data/raw/applications.csv."),
    ("validate", "Run the Great Expectations suite; exit 1 naming failed expectations."),
    ("split", "Seeded, stratified train/test split of validated data."),
    ("train", "Fit the model and compile its scorecard (checked against scikit-learn)."),
    ("evaluate", "Held-out metrics with bootstrap intervals; ROC and calibration plots."),
    ("fairness", "fairlearn metrics by group; exit 1 with the measured gap if a gate fails."),
    ("model_card", "Write the model card as JSON, Markdown and HTML."),
    ("register", "Register the model in MLflow with its lineage; alias it candidate."),
]:
    _stage_command(_name, _doc)


@app.command()
def lineage(
    model: Annotated[str, typer.Argument(help="Registered model name, e.g. mortgage-denial.")],
    version: Annotated[str | None, typer.Argument(help="Version (default: the newest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    restore: Annotated[
        Path | None, typer.Option("--restore", help="Write the exact training data here.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Show a model version's lineage: code, data, params, validation, fairness, metrics."""
    from governance import registry
    from governance.core.lineage import DataStore

    settings = Settings.resolve(project)
    info: dict[str, Any] = _guard(lambda: registry.resolve(settings, model, version))
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

            _guard(put)
            restored.append({"path": str(dest), "md5": d["md5"]})
    if as_json:
        doc = {**info, "restored": restored} if restore is not None else info
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    _print_lineage(info)
    for r in restored:
        typer.echo(f"restored   {r['path']}  md5 {r['md5']} (verified)")


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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
