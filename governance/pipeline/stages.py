"""The governed pipeline's stages: one implementation, called by the DVC stages (through the CLI)
and by the Dagster assets.

Stages talk through files in the workspace (:mod:`governance.pipeline.workspace`: the paths
DVC tracks). Each returns a
:class:`StageResult` whose ``evidence`` becomes Dagster metadata and whose ``passed`` /
``message`` carry a gate's verdict. A failed gate writes its report (so it can be read), leaves
an MLflow run that says which gate failed and why, and stops everything downstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from governance import decisions
from governance.core import dataset as ds
from governance.core.lineage import (
    code_url,
    environment,
    git_state,
    package_version,
    params_hash,
)
from governance.pipeline.workspace import (
    PATHS,
    REQUIRED,
    StageResult,
    Workspace,
    read_json,
    write_json,
)
from governance.registry import signing
from governance.settings import actor

ERR_NOT_VALIDATED = "refusing to {stage}: {path} has not passed validation ({why})"
ERR_GATE_FAILED = "refusing to register: the {gate} gate did not pass ({why})"
ERR_AGREEMENT = "compiled scorecard disagrees with scikit-learn by {diff:.3g} (> 1e-9)"
ERR_OWNER = "params.yaml model_card.owner must name the accountable owner in one line, got {got}"
ERR_REGISTER_ALIAS = "params.yaml register.alias {alias!r}: {why}"
ERR_GOVERNED_ALIAS = (
    "the pipeline may not move an alias that promotion governs ({why}); it sets a candidate"
    " alias, and `governance promote` moves {alias!r} (approved, gated, recorded)"
)


def _dataset_evidence(ws: Workspace, name: str) -> dict[str, Any]:
    path = ws.path(name)
    return {
        "name": name,
        "path": getattr(PATHS, name),
        "md5": ds.file_md5(path),
        "size": path.stat().st_size,
        "rows": len(ds.read_csv(path)),
    }


def _require_validated(ws: Workspace, stage: str) -> None:
    report_path = ws.path("validation")
    raw = ws.path("raw")
    if not report_path.is_file():
        raise RuntimeError(ERR_NOT_VALIDATED.format(stage=stage, path=raw, why="no report"))
    report = read_json(report_path)
    if not report.get("success"):
        why = report.get("message", "validation failed")
        raise RuntimeError(ERR_NOT_VALIDATED.format(stage=stage, path=raw, why=why))
    if report.get("data_md5") != ds.file_md5(raw):
        why = "the file changed since it was validated"
        raise RuntimeError(ERR_NOT_VALIDATED.format(stage=stage, path=raw, why=why))


def _run_context(context: dict[str, str] | None) -> dict[str, str]:
    return context or {"source": "cli"}


def _ledger_event(ws: Workspace, event: str, body: dict[str, Any]) -> str:
    """Record a pipeline event (training, validation, registration) in the decision ledger."""
    from governance.ledger import Ledger

    ws.settings.home.mkdir(parents=True, exist_ok=True)
    with Ledger.open(ws.settings.ledger_url, home=ws.settings.home) as ledger:
        return ledger.append(event, body).id


# -- stages -------------------------------------------------------------------------------


def ingest(ws: Workspace) -> StageResult:
    """Read the configured source into ``data/raw/applications.csv``."""
    spec = ws.spec
    frame = ds.ingest(spec, ws.path("raw"), source=ws.source)
    return StageResult(
        "ingest",
        evidence={
            "dataset": spec.name,
            "source": ws.params["ingest"].get("source") or spec.source,
            "source_md5": ds.source_fingerprint(ws.source),
            "path": PATHS.raw,
            "rows": len(frame),
            "columns": list(map(str, frame.columns)),
            "md5": ds.file_md5(ws.path("raw")),
        },
    )


def validate(ws: Workspace, context: dict[str, str] | None = None) -> StageResult:
    """Run the dataset's Great Expectations suite on the raw data; a failure is a gate."""
    from governance.core.validation import validate as run_suite

    spec = ws.spec
    raw = ws.path("raw")
    result = run_suite(ds.read_csv(raw), ws.suite_path())
    report = {
        **result.to_dict(),
        "message": result.message(),
        "data": PATHS.raw,
        "data_md5": ds.file_md5(raw),
        "suite_path": spec.suite,
        "full_result": result.result,
    }
    write_json(ws.path("validation"), report)
    outcome = StageResult(
        "validate",
        passed=result.success,
        message=result.message(),
        evidence={k: v for k, v in report.items() if k != "full_result"},
    )
    if not result.success:
        outcome.evidence["mlflow_run_id"] = _record_failure(ws, "validation", outcome, context)
    outcome.evidence["ledger_event"] = _ledger_event(
        ws,
        "validation",
        {
            "gate": "data",
            "dataset": spec.name,
            "suite": result.suite,
            "passed": result.success,
            "message": result.message(),
            "statistics": result.statistics,
            "data_md5": report["data_md5"],
            "run": _run_context(context),
        },
    )
    return outcome


def _number(ws: Workspace, key: str) -> float:
    """The setting ``key`` as a finite number, else an error naming it."""
    from governance.core.training import number

    return number(ws.setting(key), key)


def _whole(ws: Workspace, key: str, default: Any = REQUIRED) -> int:
    """The setting ``key`` as a whole number >= 0 (never truncated: a seed, a count), else an
    error naming it."""
    from governance.core.training import ERR_WHOLE, whole

    value = whole(ws.setting(key, default), key)
    if value < 0:  # numpy's "expected non-negative integer" named no setting
        raise ValueError(ERR_WHOLE.format(key=key, got=value) + " (>= 0)")
    return value


def split(ws: Workspace) -> StageResult:
    """Seeded, stratified train/test split of validated data."""
    from governance.core.training import split as split_frame

    _require_validated(ws, "split")
    spec = ws.spec
    seed, test_size = _whole(ws, "split.seed"), _number(ws, "split.test_size")
    train, test = split_frame(ds.read_csv(ws.path("raw")), spec, test_size=test_size, seed=seed)
    ds.write_csv(train, ws.path("train"))
    ds.write_csv(test, ws.path("test"))
    return StageResult(
        "split",
        evidence={
            "train": _dataset_evidence(ws, "train"),
            "test": _dataset_evidence(ws, "test"),
            "seed": seed,
            "test_size": test_size,
        },
    )


def _train_params(ws: Workspace) -> Any:
    from governance.core.training import TrainParams

    return TrainParams(
        model=str(ws.setting("train.model")),
        C=_number(ws, "train.C"),
        max_iter=_whole(ws, "train.max_iter"),
        seed=_whole(ws, "train.seed"),
        threshold=_number(ws, "train.threshold"),
        reason_count=_whole(ws, "train.reason_count"),
    )


def train(ws: Workspace) -> StageResult:
    """Fit the pipeline and compile it to a scorecard that must agree with it."""
    import joblib

    from governance.core.contract import derive_contract
    from governance.core.recourse import build_policy
    from governance.core.scorecard import agreement, compile_pipeline
    from governance.core.training import train as fit
    from governance.core.validation import load_suite

    spec = ws.spec
    params = _train_params(ws)
    _require_validated(ws, "train")  # the split must come from the raw data as validated now
    train_frame = ds.read_csv(ws.path("train"))
    pipeline = fit(train_frame, spec, params)
    scorecard = compile_pipeline(pipeline, spec, train_frame, params)
    everything = ds.read_csv(ws.path("raw"))
    diff = agreement(scorecard, pipeline, everything, spec)
    if diff > 1e-9:
        raise RuntimeError(ERR_AGREEMENT.format(diff=diff))
    # everything that can refuse, before the first file is written: never half a model
    contract = derive_contract(spec, load_suite(ws.suite_path()), train_frame)
    policy = build_policy(spec, scorecard, contract)  # recourse for the adverse decisions
    ws.path("model").parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, ws.path("model"))
    write_json(ws.path("scorecard"), scorecard.to_dict())
    write_json(ws.path("recourse_policy"), policy.to_dict())
    event = _ledger_event(
        ws,
        "training",
        {
            "dataset": spec.name,
            "model": {"name": spec.model_name},
            "params": ws.params["train"],
            "train_md5": ds.file_md5(ws.path("train")),
            "scorecard_sha256": hashlib.sha256(ws.path("scorecard").read_bytes()).hexdigest(),
            "scorecard_max_abs_diff": diff,
            "recourse_policy_sha256": policy.sha256(),
        },
    )
    return StageResult(
        "train",
        evidence={
            "model": params.model,
            "C": params.C,
            "seed": params.seed,
            "threshold": params.threshold,
            "inputs": spec.feature_names,
            "excluded_sensitive": list(spec.sensitive_features),
            "scorecard_max_abs_diff": diff,
            "train_rows": len(train_frame),
            "ledger_event": event,
        },
    )


def _test_scores(ws: Workspace) -> tuple[Any, Any, Any]:
    from governance.core.scorecard import Scorecard
    from governance.core.training import model_inputs

    spec = ws.spec
    test = ds.read_csv(ws.path("test"))
    scorecard = Scorecard.from_dict(read_json(ws.path("scorecard")))
    scores, _ = scorecard.score_frame(model_inputs(test, spec))
    return test, spec.labels(test).to_numpy(), scores


def evaluate(ws: Workspace) -> StageResult:
    """AUC, accuracy, Brier score and calibration on the held-out split, with intervals."""
    import pandas as pd

    from governance.core.evaluation import evaluate as run_evaluation

    _require_validated(ws, "evaluate")
    _, y, scores = _test_scores(ws)
    n_bootstrap = _whole(ws, "evaluate.n_bootstrap")
    result = run_evaluation(
        y,
        scores,
        threshold=_number(ws, "train.threshold"),
        n_bootstrap=n_bootstrap,
        confidence=_number(ws, "evaluate.confidence"),
        bins=_whole(ws, "evaluate.calibration_bins"),
        seed=_whole(ws, "evaluate.seed"),
    )
    write_json(ws.path("evaluation"), result.flat())
    for name, rows in (("roc", result.roc), ("calibration", result.calibration)):
        ws.path(name).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(ws.path(name), index=False, lineterminator="\n")
    return StageResult(
        "evaluate",
        evidence={
            **result.to_dict(),
            "n_bootstrap": n_bootstrap,
        },
    )


def _thresholds(ws: Workspace) -> Any:
    """The fairness gate's bounds; an unknown ``fairness`` setting (a typo) is refused."""
    from governance.core.fairness import FairnessThresholds
    from governance.core.fairness.gate import check_section

    check_section(ws.setting("fairness"))
    parity = ws.setting("fairness.max_demographic_parity_difference", None)
    return FairnessThresholds(
        min_approval_ratio=_number(ws, "fairness.min_approval_ratio"),
        max_equalized_odds_difference=_number(ws, "fairness.max_equalized_odds_difference"),
        max_demographic_parity_difference=(
            None if parity is None else _number(ws, "fairness.max_demographic_parity_difference")
        ),
        gate_on=ws.setting("fairness.gate_on", "each"),
        min_group_size=_whole(ws, "fairness.min_group_size", 30),
    )


def fairness(ws: Workspace, context: dict[str, str] | None = None) -> StageResult:
    """fairlearn MetricFrame by each sensitive attribute and their intersection; a gate."""
    import pandas as pd

    from governance.core.fairness import evaluate_gate, fairness_report

    _require_validated(ws, "fairness")
    spec = ws.spec
    p = ws.params["fairness"]
    thresholds = _thresholds(ws)  # before the bootstrap: a bad bound is named at once
    threshold = _number(ws, "train.threshold")
    test, y, scores = _test_scores(ws)
    report = fairness_report(
        y,
        (scores >= threshold).astype(int),
        sensitive_features=spec.sensitive_frame(test).reset_index(drop=True),
        n_bootstrap=_whole(ws, "fairness.n_bootstrap"),
        random_state=_whole(ws, "fairness.seed"),
        min_group_size=_whole(ws, "fairness.min_group_size", 30),
    )
    gate = evaluate_gate(report, thresholds)
    doc = {
        "report": report.to_dict(),
        "gate": gate.to_dict(),
        "thresholds": dict(p),
    }
    write_json(ws.path("fairness"), doc)
    write_json(ws.path("fairness_metrics"), {**report.metrics(), "gate_passed": int(gate.passed)})
    rows = [
        {
            "grouping": g.name,
            "group": r["group"],
            "approval_rate": r["approval_rate"],
            "selection_rate": r["selection_rate"],
            "count": r["count"],
        }
        for g in report.groupings
        for r in g.by_group
    ]
    ws.path("selection_rate").parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(ws.path("selection_rate"), index=False, lineterminator="\n")
    outcome = StageResult("fairness", passed=gate.passed, message=gate.message(), evidence=doc)
    if not gate.passed:
        outcome.evidence["mlflow_run_id"] = _record_failure(ws, "fairness", outcome, context)
    outcome.evidence["ledger_event"] = _ledger_event(
        ws,
        "validation",
        {
            "gate": "fairness",
            "dataset": spec.name,
            "passed": gate.passed,
            "message": gate.message(),
            "metrics": report.metrics(),
            "thresholds": dict(p),
            "run": _run_context(context),
        },
    )
    return outcome


def alternatives(ws: Workspace, context: dict[str, str] | None = None) -> StageResult:
    """Search for less discriminatory alternatives on the same rows; the frontier; the LDA gate.

    The gate fails (and registration is refused) when an alternative is less discriminatory
    by more than ``alternatives.gate.fairness_tolerance`` at an AUC within
    ``alternatives.gate.auc_tolerance`` of the model's; the message names it.
    """
    import pandas as pd

    from governance.core import alternatives as lda

    spec = ws.spec
    config = lda.AlternativesConfig.from_params(ws.params.get("alternatives"))
    settings = lda.EvaluationSettings(
        n_bootstrap=_whole(ws, "evaluate.n_bootstrap"),
        confidence=_number(ws, "evaluate.confidence"),
        bins=_whole(ws, "evaluate.calibration_bins"),
        seed=_whole(ws, "evaluate.seed"),
        fairness_n_bootstrap=_whole(ws, "fairness.n_bootstrap"),
        fairness_seed=_whole(ws, "fairness.seed"),
        min_group_size=_whole(ws, "fairness.min_group_size", 30),
        gate_on=str(ws.setting("fairness.gate_on", "each")),
    )
    test, _, scores = _test_scores(ws)
    found = lda.search(
        spec=spec,
        train=ds.read_csv(ws.path("train")),
        test=test,
        baseline_scores=scores,
        params=_train_params(ws),
        config=config,
        settings=settings,
    )
    doc = found.to_dict()
    write_json(ws.path("alternatives"), doc)
    write_json(ws.path("alternatives_metrics"), found.metrics())
    ws.path("alternatives_plot").parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(found.plot_rows()).to_csv(
        ws.path("alternatives_plot"), index=False, lineterminator="\n"
    )
    ws.path("alternatives_svg").write_text(lda.frontier_svg(doc))
    outcome = StageResult(
        "alternatives", passed=found.gate.passed, message=found.gate.message, evidence=doc
    )
    if not found.gate.passed:
        outcome.evidence["mlflow_run_id"] = _record_failure(ws, "alternatives", outcome, context)
    outcome.evidence["ledger_event"] = _ledger_event(
        ws,
        "validation",
        {
            "gate": "alternatives",
            "dataset": spec.name,
            "passed": found.gate.passed,
            "message": found.gate.message,
            "blocking": list(found.gate.blocking),
            "frontier": doc["frontier"],
            "run": _run_context(context),
        },
    )
    return outcome


def _record_failure(
    ws: Workspace, gate: str, outcome: StageResult, context: dict[str, str] | None
) -> str:
    from governance.registry.mlflow import record_gate_failure

    return record_gate_failure(
        ws.settings,
        dataset=ws.spec.name,
        gate=gate,
        message=outcome.message,
        evidence=outcome.evidence,
        context={
            **{f"run.{k}": v for k, v in _run_context(context).items()},
            "dataset": ws.spec.name,
            "git.commit": str(git_state(ws.root).commit),
        },
    )


def lineage(ws: Workspace) -> dict[str, Any]:
    """The lineage the pipeline knows before registration (DESIGN §3)."""
    git = git_state(ws.root)
    validation = read_json(ws.path("validation"))
    fairness_doc = read_json(ws.path("fairness"))
    return {
        "schema": "governance.lineage/1",
        "dataset": ws.spec.name,
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "git_changes": list(git.changes),
        "package_version": package_version(),
        "datasets": [_dataset_evidence(ws, n) for n in ("raw", "train", "test")],
        "params": ws.params,
        "params_hash": params_hash(ws.params),
        "environment": environment(ws.root),
        "validation": {
            "success": validation["success"],
            "suite": validation["suite"],
            "suite_path": validation["suite_path"],
            "statistics": validation["statistics"],
            "data_md5": validation["data_md5"],
            "result": PATHS.validation,
        },
        "fairness": {
            "passed": fairness_doc["gate"]["passed"],
            "message": fairness_doc["gate"]["message"],
            "not_gated": [
                c["sentence"]
                for c in fairness_doc["gate"].get("not_gated", [])
                if not c["within_bound"]
            ],
            "metrics": {k: v for k, v in read_json(ws.path("fairness_metrics")).items()},
        },
        "metrics": read_json(ws.path("evaluation")),
        "model_card": PATHS.card_md,
    }


def _owner(ws: Workspace) -> str:
    """``model_card.owner``: the accountable owner the card names, one line of text."""
    from governance.core.text import refuse_control

    owner = ws.setting("model_card.owner")
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError(ERR_OWNER.format(got=repr(owner)))
    refuse_control("params.yaml model_card.owner", owner)
    return owner


def model_card(ws: Workspace) -> StageResult:
    """The model card as JSON, Markdown and HTML."""
    from governance.core.model_card import build_card, render_html, render_markdown
    from governance.core.scorecard import Scorecard, catalogue

    spec = ws.spec
    scorecard = Scorecard.from_dict(read_json(ws.path("scorecard")))
    reasons, reworded = catalogue(spec.features, scorecard)
    params = _train_params(ws)
    evaluation = read_json(ws.path("evaluation"))
    metrics = {k: v for k, v in evaluation.items() if not k.endswith(("_ci_low", "_ci_high"))}
    metrics.pop("n")
    fairness_doc = read_json(ws.path("fairness"))
    info = lineage(ws)
    by_name = {d["name"]: d for d in info["datasets"]}
    card = build_card(
        model_details={
            "name": spec.model_name,
            "type": "regularised logistic regression scorecard",
            "library": "scikit-learn, compiled to exact per-feature contributions",
            "owner": _owner(ws),
            "dataset": spec.name,
            "dataset_title": spec.title,
            "target": spec.target,
            "adverse_label": spec.adverse_label,
            "outcomes": spec.outcomes,
            "threshold": params.threshold,
            "inputs": spec.feature_names,
            "train_params": ws.params["train"],
            "params_hash": info["params_hash"],
        },
        intended_use={"primary": spec.intended_use, "out_of_scope": spec.out_of_scope},
        sensitive_features=list(spec.sensitive_features),
        evaluation={
            "n": int(evaluation["n"]),
            "confidence": _number(ws, "evaluate.confidence"),
            "n_bootstrap": _whole(ws, "evaluate.n_bootstrap"),
            "metrics": metrics,
            "intervals": {
                k: [evaluation[f"{k}_ci_low"], evaluation[f"{k}_ci_high"]] for k in metrics
            },
        },
        fairness=fairness_doc["report"],
        gate=fairness_doc["gate"],
        training_data={**by_name["train"], "description": f"{spec.title}: training split"},
        evaluation_data={**by_name["test"], "description": f"{spec.title}: held-out test split"},
        lineage=info,
        validation=info["validation"],
        reasons=reasons,
        reason_count=params.reason_count,
        alternatives=_alternatives_for_card(ws),
        reworded=reworded,
    )
    write_json(ws.path("card_json"), card)
    markdown = render_markdown(card)
    ws.path("card_md").write_text(markdown)
    ws.path("card_html").write_text(render_html(card))
    return StageResult("model_card", evidence={"markdown": markdown, "path": PATHS.card_md})


def _alternatives_for_card(ws: Workspace) -> dict[str, Any]:
    """The LDA search as the card shows it: the table's rows and the frontier plot."""
    doc = read_json(ws.path("alternatives"))
    return {**doc, "svg": ws.path("alternatives_svg").read_text()}


def _compare_with_champion(ws: Workspace) -> dict[str, Any] | None:
    """The candidate against the current champion on the candidate's held-out split."""
    from governance.core.comparison import compare
    from governance.core.training import model_inputs
    from governance.registry.mlflow import ModelCache, RegistryLookupError

    spec = ws.spec
    cache = ModelCache(ws.settings)
    try:
        version, _ = cache.resolve(spec.model_name, version=None, alias="champion")
        champion = cache.get(spec.model_name, version)
    except RegistryLookupError:
        return None  # no champion yet: nothing to compare with
    test, y, scores = _test_scores(ws)
    champion_scores, _ = champion.scorecard.score_frame(model_inputs(test, spec))
    return compare(
        y=y,
        candidate_scores=scores,
        champion_scores=champion_scores,
        sensitive=spec.sensitive_frame(test).reset_index(drop=True),
        threshold=_number(ws, "train.threshold"),
        champion={"name": spec.model_name, "version": version, "lineage_id": champion.lineage_id},
        n_bootstrap=_whole(ws, "fairness.n_bootstrap"),
        seed=_whole(ws, "fairness.seed"),
        min_group_size=_whole(ws, "fairness.min_group_size", 30),
    )


def input_contract(ws: Workspace, train_frame: Any) -> Any:
    """The input contract a version is registered with: the dataset spec, its GX suite's hard
    rules and the validated training data, under ``params.yaml`` → ``contract``."""
    from governance.core.contract import ContractPolicy, derive_contract
    from governance.core.validation import load_suite

    suite_path = ws.suite_path()
    return derive_contract(
        ws.spec,
        load_suite(suite_path),
        train_frame,
        policy=ContractPolicy.from_params(ws.params.get("contract")),
        provenance={
            "suite_path": str(suite_path.relative_to(ws.root)),
            "suite_sha256": hashlib.sha256(suite_path.read_bytes()).hexdigest(),
            "training_md5": ds.file_md5(ws.path("train")),
        },
    )


def _register_alias(ws: Workspace) -> str:
    """The alias the register stage sets: one MLflow accepts, and not one promotion governs
    (``champion``, or any alias of the model a promotion or rollback has moved)."""
    from governance.ledger import Ledger
    from governance.ledger.paging import iter_find
    from governance.registry import mlflow as registry

    alias = (ws.params.get("register") or {}).get("alias")
    try:
        registry.check_alias(alias)
    except ValueError as exc:
        raise ValueError(ERR_REGISTER_ALIAS.format(alias=alias, why=exc)) from None
    why = "the alias that answers applicants" if alias == registry.CHAMPION else None
    with Ledger.open(ws.settings.ledger_url, home=ws.settings.home) as ledger:
        for e in iter_find(ledger, type="promotion", model=ws.spec.model_name):
            if (
                why is None
                and e.body.get("alias") == alias
                and e.body.get("action")
                in (
                    "promote",
                    "rollback",
                )
            ):
                why = f"ledger event {e.id} records its {e.body['action']}"
    if why is not None:
        why = ERR_GOVERNED_ALIAS.format(why=why, alias=alias)
        raise ValueError(ERR_REGISTER_ALIAS.format(alias=alias, why=why))
    return str(alias)


def register(ws: Workspace, context: dict[str, str] | None = None) -> StageResult:
    """Register the model in MLflow with its complete lineage and alias it ``candidate``.

    Refuses unless validation and fairness passed. Every training input is first put in the
    DVC cache and the remote, so the lineage can always be restored from md5s alone.
    """
    from governance.core.training import model_inputs
    from governance.registry import mlflow as registry

    spec = ws.spec
    alias = _register_alias(ws)  # before anything is logged or registered
    registry.check_params(ws.params)
    registry.check_model_name(spec.model_name)
    _require_validated(ws, "register")
    fairness_doc = read_json(ws.path("fairness"))
    if not fairness_doc["gate"]["passed"]:
        raise RuntimeError(
            ERR_GATE_FAILED.format(gate="fairness", why=fairness_doc["gate"]["message"])
        )
    lda_gate = read_json(ws.path("alternatives"))["gate"]
    if not lda_gate["passed"]:
        raise RuntimeError(ERR_GATE_FAILED.format(gate="LDA", why=lda_gate["message"]))
    run = _run_context(context)
    info = lineage(ws)
    info["run"] = dict(run)
    info["registered_by"] = actor()  # separation of duties: they cannot approve this version
    store = ws.store()
    for d in info["datasets"]:
        store.store(ws.root / d["path"])
    info["storage"] = {"cache": str(store.cache), "remote": str(store.remote)}
    card = read_json(ws.path("card_json"))
    evaluation = read_json(ws.path("evaluation"))
    fairness_metrics = read_json(ws.path("fairness_metrics"))
    metrics = {
        **{f"eval.{k}": v for k, v in evaluation.items()},
        **{f"fairness.{k}": v for k, v in fairness_metrics.items()},
    }
    train_frame = ds.read_csv(ws.path("train"))
    contract = input_contract(ws, train_frame)
    write_json(ws.path("contract"), contract.to_dict())
    info["contract"] = {
        "contract_id": contract.contract_id,
        "policy": contract.policy.to_dict(),
        "artifact": "contract/contract.json",
    }
    comparison = _compare_with_champion(ws)
    inputs = [
        {
            "path": ws.root / d["path"],
            "name": f"{spec.name}-{d['name']}",
            "md5": d["md5"],
            "context": {"raw": "raw", "train": "training", "test": "evaluation"}[d["name"]],
        }
        for d in info["datasets"]
    ]
    result, final_card = registry.register(
        ws.settings,
        dataset=spec.name,
        model_name=spec.model_name,
        alias=alias,
        params=ws.params,
        metrics=metrics,
        tags={
            "governance.dataset": spec.name,
            "governance.git.commit": str(info["git_commit"]),
            "governance.git.dirty": str(info["git_dirty"]).lower(),
            **{f"governance.run.{k}": v for k, v in run.items()},
        },
        inputs=inputs,
        artifacts=[
            ("reports", ws.path("validation")),
            ("reports", ws.path("fairness")),
            ("metrics", ws.path("evaluation")),
            ("metrics", ws.path("fairness_metrics")),
            ("plots", ws.path("roc")),
            ("plots", ws.path("calibration")),
            ("plots", ws.path("selection_rate")),
            ("reports", ws.path("alternatives")),
            ("metrics", ws.path("alternatives_metrics")),
            ("plots", ws.path("alternatives_plot")),
            ("plots", ws.path("alternatives_svg")),
            ("scorecard", ws.path("scorecard")),
            ("contract", ws.path("contract")),
        ],
        model_artifacts={
            "scorecard": ws.path("scorecard"),
            "pipeline": ws.path("model"),
            "recourse_policy": ws.path("recourse_policy"),
            "contract": ws.path("contract"),
        },
        signature_frame=model_inputs(train_frame, spec).astype(
            {c: "float64" for c in spec.numeric}
        ),
        lineage=info,
        card=card,
        materials=signing.materials(ws.root, info),
        code_url=code_url(ws.root),
        comparison=comparison,
        model_code=Path(decisions.__file__).with_name("pyfunc.py"),
    )
    write_json(ws.path("registration"), result)
    from governance.core.lineage import lineage_id

    result["ledger_event"] = _ledger_event(
        ws,
        "registration",
        {
            "model": {"name": result["model"], "version": result["version"]},
            "alias": result["alias"],
            "lineage_id": lineage_id(final_card["lineage"]),
            "mlflow_run_id": result["mlflow_run_id"],
            "git_commit": info["git_commit"],
            "git_dirty": info["git_dirty"],
            "data": {d["name"]: d["md5"] for d in info["datasets"]},
            "params_hash": info["params_hash"],
            "signing": result["signing"],
            "run": run,
            "registered_by": info["registered_by"],
        },
    )
    return StageResult("register", evidence={**result, "lineage": final_card["lineage"]})


Stage = Callable[[Workspace, dict[str, str] | None], StageResult]

# Every stage by its one name: DVC stage = Dagster asset = defs/<name>/ = `governance stage
# <name>`. Each gets the run context (who runs it); the gated ones record it in lineage.
STAGES: dict[str, Stage] = {
    "ingest": lambda ws, context: ingest(ws),
    "validate": validate,
    "split": lambda ws, context: split(ws),
    "train": lambda ws, context: train(ws),
    "evaluate": lambda ws, context: evaluate(ws),
    "fairness": fairness,
    "alternatives": alternatives,
    "model_card": lambda ws, context: model_card(ws),
    "register": register,
}
