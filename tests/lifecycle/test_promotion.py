"""Governed promotion: every refused condition has its own message; moves and rollbacks are
ledger events, and ``history`` answers "which version held the alias at time T" from them."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from support import copy_state, set_params
from typer.testing import CliRunner

from governance.cli import app
from governance.ledger import Ledger
from governance.lifecycle import promotion
from governance.lifecycle.promotion import (
    REFUSALS,
    REFUSE_ALIAS_DRIFT,
    REFUSE_CARD,
    REFUSE_DATA,
    REFUSE_DIRTY,
    REFUSE_FAIRNESS,
    REFUSE_LINEAGE,
    REFUSE_NO_PREVIOUS,
    REFUSE_VALIDATION,
    PromotionError,
    PromotionRefused,
    history,
    promote,
    rollback,
)
from governance.pipeline import stages
from governance.registry import mlflow as registry
from governance.settings import Settings

MODEL = "mortgage-denial"
ENV_VARS = (
    "GOVERNANCE_HOME",
    "GOVERNANCE_MLFLOW_URI",
    "MLFLOW_TRACKING_URI",
    "GOVERNANCE_DVC_REMOTE",
    "GOVERNANCE_LEDGER_URL",
    "GOVERNANCE_ARTIFACTS",
    "GOVERNANCE_PROJECT",
)
ENV: dict[str, str | None] = dict.fromkeys(ENV_VARS)  # the CLI reads --project, nothing else


class Lab:
    """A trained project with three versions: 1 clean, 2 dirty, 3 clean (for breaking)."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings

    def ledger(self) -> Ledger:
        return Ledger.open(self.settings.ledger_url, home=self.settings.home)

    def artifact(self, version: str, path: str) -> Path:
        with registry.tracking(self.settings) as client:
            run_id = client.get_model_version(MODEL, version).run_id
            uri = client.get_run(run_id).info.artifact_uri
        return Path(unquote(urlparse(uri).path)) / path

    def alias(self, alias: str) -> str | None:
        with registry.tracking(self.settings) as client:
            return promotion._alias_target(client, MODEL, alias)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    from support import build_trained_project

    root, settings = build_trained_project(tmp_path_factory.mktemp("promotion"))
    ws = stages.Workspace.open(root, settings=settings)
    # version 2: registered with an uncommitted change to params.yaml (git dirty)
    set_params(root, **{"model_card.owner": "uncommitted owner"})
    assert (
        stages.register(stages.Workspace.open(root, settings=settings)).evidence["version"] == "2"
    )
    subprocess.run(["git", "checkout", "--", "params.yaml"], cwd=root, check=True)
    # version 3: clean again; tests break one thing about it at a time
    assert stages.register(ws).evidence["version"] == "3"
    return Lab(root, settings)


@pytest.fixture
def ledger(lab: Lab) -> Iterator[Ledger]:
    with lab.ledger() as ledger:
        yield ledger


@contextmanager
def edited_lineage(lab: Lab, version: str, change: dict[str, Any]) -> Iterator[None]:
    """Rewrite a version's stored lineage.json (a version registered around the gates)."""
    path = lab.artifact(version, "lineage.json")
    original = path.read_bytes()
    doc = json.loads(original)
    for dotted, value in change.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(json.dumps(doc))
    try:
        yield
    finally:
        path.write_bytes(original)


@contextmanager
def moved_away(*paths: Path) -> Iterator[None]:
    saved = [(p, p.with_name(p.name + ".away")) for p in paths]
    for p, away in saved:
        p.rename(away)
    try:
        yield
    finally:
        for p, away in saved:
            away.rename(p)


def refused(lab: Lab, ledger: Ledger, version: str) -> PromotionRefused:
    before, size = lab.alias("champion"), ledger.size()
    with pytest.raises(PromotionRefused) as info:
        promote(lab.settings, ledger, MODEL, version, approver="ann", reason="quarterly review")
    assert lab.alias("champion") == before, "a refusal must not move the alias"
    assert ledger.size() == size + 1, "a refusal is one ledger event"
    event = ledger.get(info.value.event.id)
    assert event is not None and event.type == "promotion"
    body = event.body
    assert body["action"] == "refuse" and body["requested"] == "promote"
    assert body["model"] == {"name": MODEL, "version": version}
    assert (body["approver"], body["reason"], body["alias"]) == (
        "ann",
        "quarterly review",
        "champion",
    )
    assert body["failures"] == info.value.failures
    assert set(body["checks"]) == {*promotion.CHECK_NAMES, "separation_of_duties"}
    return info.value


def only(exc: PromotionRefused, condition: str) -> None:
    """The refusal names this condition, with its own message, and no other."""
    assert exc.failures == [condition]
    message = str(exc)
    assert message.startswith(f"refusing to promote {MODEL} version")
    assert REFUSALS[condition] in message
    for other, text in REFUSALS.items():
        if other != condition:
            assert text not in message, f"{other!r} named but only {condition!r} failed"


def test_refusal_messages_are_distinct() -> None:
    assert len(set(REFUSALS.values())) == len(REFUSALS)
    assert all(not a.startswith(b) for a in REFUSALS.values() for b in REFUSALS.values() if a != b)


def test_clean_version_passes_every_check(lab: Lab) -> None:
    checked = promotion.check_version(lab.settings, MODEL, "3")
    assert checked["failures"] == []
    assert all(c["passed"] is True for c in checked["checks"].values())


def test_refuses_dirty_commit(lab: Lab, ledger: Ledger) -> None:
    exc = refused(lab, ledger, "2")
    only(exc, "git_clean")
    assert REFUSE_DIRTY in str(exc) and "params.yaml" in str(exc)


@pytest.mark.parametrize(
    ("change", "condition", "message"),
    [
        ({"validation.success": False}, "validation", REFUSE_VALIDATION),
        ({"fairness.passed": False}, "fairness", REFUSE_FAIRNESS),
    ],
    ids=["validation", "fairness"],
)
def test_refuses_failed_gate(
    lab: Lab, ledger: Ledger, change: dict[str, Any], condition: str, message: str
) -> None:
    with edited_lineage(lab, "3", change):
        exc = refused(lab, ledger, "3")
    only(exc, condition)
    assert message in str(exc)


def test_refuses_unresolvable_lineage(lab: Lab, ledger: Ledger) -> None:
    with moved_away(lab.artifact("3", "lineage.json")):
        exc = refused(lab, ledger, "3")
    only(exc, "lineage")
    assert REFUSE_LINEAGE in str(exc)
    # the gates could not be read, so they are not claimed to have failed
    assert {exc.checks[n]["passed"] for n in ("validation", "fairness", "data", "git_clean")} == {
        None
    }


def test_refuses_missing_training_data(lab: Lab, ledger: Ledger) -> None:
    lineage = registry.resolve(lab.settings, MODEL, "1")
    train = next(d for d in lineage["datasets"] if d["name"] == "train")
    md5 = train["md5"]
    objects = [
        Path(lineage["storage"][where]) / "files" / "md5" / md5[:2] / md5[2:]
        for where in ("cache", "remote")
    ]
    assert all(p.is_file() for p in objects)
    with moved_away(*objects):
        exc = refused(lab, ledger, "1")
    only(exc, "data")
    assert REFUSE_DATA in str(exc) and md5 in str(exc)


def test_refuses_missing_model_card(lab: Lab, ledger: Ledger) -> None:
    with moved_away(lab.artifact("3", "model_card/model_card.md")):
        exc = refused(lab, ledger, "3")
    only(exc, "model_card")
    assert REFUSE_CARD in str(exc)


def test_several_failures_are_all_named(lab: Lab, ledger: Ledger) -> None:
    with (
        edited_lineage(lab, "2", {"fairness.passed": False}),
        moved_away(lab.artifact("2", "model_card/model_card.md")),
    ):
        exc = refused(lab, ledger, "2")
    assert exc.failures == ["fairness", "git_clean", "model_card"]
    for condition in exc.failures:
        assert REFUSALS[condition] in str(exc)


@pytest.mark.parametrize(("approver", "reason"), [("", "why"), ("  ", "why"), ("ann", "")])
def test_approver_and_reason_are_required(
    lab: Lab, ledger: Ledger, approver: str, reason: str
) -> None:
    size = ledger.size()
    with pytest.raises(PromotionError, match="is required"):
        promote(lab.settings, ledger, MODEL, "3", approver=approver, reason=reason)
    with pytest.raises(PromotionError, match="is required"):
        rollback(lab.settings, ledger, MODEL, approver=approver, reason=reason)
    assert ledger.size() == size


@pytest.mark.parametrize(
    ("approver", "reason", "message"),
    [
        ("ann\nbob", "why", "approver contains a control character (U+000A)"),
        ("ann", "why\x1b[2K", "reason contains a control character (U+001B)"),
        ("ann", "shown\rhidden", "reason contains a control character (U+000D)"),
    ],
)
def test_control_characters_in_approver_or_reason_are_refused(
    lab: Lab, ledger: Ledger, approver: str, reason: str, message: str
) -> None:
    size = ledger.size()
    with pytest.raises(PromotionError, match=re.escape(message)):
        promote(lab.settings, ledger, MODEL, "3", approver=approver, reason=reason)
    with pytest.raises(PromotionError, match=re.escape(message)):
        rollback(lab.settings, ledger, MODEL, approver=approver, reason=reason)
    assert ledger.size() == size


def test_a_reason_may_span_lines(lab: Lab, ledger: Ledger) -> None:
    reason = "MRM review 2026-11:\r\n\t- passed\n\t- signed off"
    moved = promote(lab.settings, ledger, MODEL, "3", approver="ann", reason=reason, alias="notes")
    assert ledger.get(moved["event"]["id"]).body["reason"] == reason  # type: ignore[union-attr]


def test_reserved_alias_is_an_error(lab: Lab, ledger: Ledger) -> None:
    size = ledger.size()
    with pytest.raises(PromotionError, match="cannot set alias 'latest'"):
        promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="x", alias="latest")
    assert ledger.size() == size


def test_unknown_version_is_an_error_not_a_refusal(lab: Lab, ledger: Ledger) -> None:
    size = ledger.size()
    with pytest.raises(PromotionError, match="has no version '99'"):
        promote(lab.settings, ledger, MODEL, "99", approver="ann", reason="x")
    with pytest.raises(PromotionError, match="no registered model named 'nope'"):
        promote(lab.settings, ledger, "nope", "1", approver="ann", reason="x")
    assert ledger.size() == size


def _before(ts: str) -> str:
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00")) - timedelta(microseconds=1)
    return moment.isoformat()


def test_promotion_rollback_and_history(lab: Lab, ledger: Ledger) -> None:
    moved: list[dict[str, Any]] = []
    first = promote(
        lab.settings, ledger, MODEL, "1", approver="ann", reason="initial", on_move=moved.append
    )
    assert first["previous_version"] is None and lab.alias("champion") == "1"
    second = promote(lab.settings, ledger, MODEL, 3, approver="bob", reason="retrained")
    assert second["previous_version"] == "1" and lab.alias("champion") == "3"
    back = rollback(lab.settings, ledger, MODEL, approver="cy", reason="incident 7")
    assert lab.alias("champion") == "1"
    assert (back["action"], back["version"], back["previous_version"]) == ("rollback", "1", "3")
    assert back["undoes"] == second["event"]["id"]
    assert moved == [first], "on_move is called after a successful move"
    assert first["lineage_id"].startswith("sha256:")

    record = ledger.get(second["event"]["id"])
    assert record is not None and record.type == "promotion"
    assert record.body["action"] == "promote"
    assert record.body["model"] == {"name": MODEL, "version": "3"}
    assert (record.body["previous_version"], record.body["approver"]) == ("1", "bob")
    assert record.body["lineage_id"] == second["lineage_id"]
    assert all(c["passed"] for c in record.body["checks"].values())

    events = history(ledger, MODEL)
    assert isinstance(events, list)
    moves = [(e["action"], e["version"], e["approver"]) for e in events if e["action"] != "refuse"]
    assert moves == [("promote", "1", "ann"), ("promote", "3", "bob"), ("rollback", "1", "cy")]

    def at(when: str) -> dict[str, Any]:
        answer = history(ledger, MODEL, at=when)
        assert isinstance(answer, dict)
        return answer

    t1, t2, t3 = (m["event"]["ts"] for m in (first, second, back))
    assert at(_before(t1))["version"] is None
    assert at(t1)["version"] == "1"
    assert at(_before(t2))["version"] == "1"
    between = at(t2)
    assert (between["version"], between["approver"], between["reason"]) == ("3", "bob", "retrained")
    assert between["since"] == t2 and between["previous_version"] == "1"
    assert at(_before(t3))["version"] == "3"
    after = at(t3)
    assert (after["version"], after["action"], after["approver"]) == ("1", "rollback", "cy")
    assert at("2999-01-01")["version"] == "1", "a time without zone is UTC"
    assert at("0999-01-01") == {**at(_before(t1)), "at": "0999-01-01T00:00:00.000000Z"}
    with pytest.raises(PromotionError, match="outside the years 1 to 9999 in UTC"):
        at("0001-01-01T00:00:00+01:00")  # in UTC: the last hour of year 0

    # the same answers on the command line, from the ledger alone
    runner = CliRunner()
    args = ["history", MODEL, "--project", str(lab.root), "--json"]
    result = runner.invoke(app, [*args, "--at", _before(t2)], env=ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "1"
    result = runner.invoke(app, [*args, "--at", "9999-12-31T23:59:59-01:00"], env=ENV)
    assert result.exit_code != 0 and "outside the years 1 to 9999 in UTC" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["history", MODEL, "--project", str(lab.root)], env=ENV)
    assert result.exit_code == 0 and "rollback v1 (was v3)  by cy: incident 7" in result.stdout

    # the pipeline's own aliasing (registration -> candidate) is part of the history too
    candidate = history(ledger, MODEL, alias="candidate")
    assert isinstance(candidate, list)
    assert [(e["action"], e["version"]) for e in candidate] == [
        ("register", "1"),
        ("register", "2"),
        ("register", "3"),
    ]
    assert candidate[-1]["previous_version"] == "2"


def test_rollback_refusals(lab: Lab, ledger: Ledger) -> None:
    with pytest.raises(PromotionRefused) as info:
        rollback(lab.settings, ledger, MODEL, approver="ann", reason="x", alias="shadow")
    assert info.value.failures == ["previous_version"]
    assert REFUSE_NO_PREVIOUS in str(info.value)
    assert ledger.get(info.value.event.id).body["requested"] == "rollback"  # type: ignore[union-attr]

    promote(lab.settings, ledger, MODEL, "1", approver="ann", reason="a", alias="staging")
    promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="b", alias="staging")
    with registry.tracking(lab.settings) as client:  # someone moves it behind governance's back
        client.set_registered_model_alias(MODEL, "staging", "1")
    with pytest.raises(PromotionRefused) as info:
        rollback(lab.settings, ledger, MODEL, approver="ann", reason="c", alias="staging")
    assert info.value.failures == ["alias_consistent"]
    assert REFUSE_ALIAS_DRIFT in str(info.value)
    assert lab.alias("staging") == "1"
    # a governed promotion records the drift it repairs
    fixed = promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="d", alias="staging")
    assert fixed["alias_drift"] == {"ledger": "3", "registry": "1"}


def test_rollback_target_must_still_pass(lab: Lab, ledger: Ledger) -> None:
    promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="a", alias="canary")
    promote(lab.settings, ledger, MODEL, "1", approver="ann", reason="b", alias="canary")
    card = lab.artifact("3", "model_card/model_card.md")
    with moved_away(card), pytest.raises(PromotionRefused) as info:
        rollback(lab.settings, ledger, MODEL, approver="ann", reason="c", alias="canary")
    assert info.value.failures == ["model_card"]
    assert str(info.value).startswith(f"refusing to roll back {MODEL} version 3 to canary")
    assert lab.alias("canary") == "1"


def test_cli_promote_refusal_is_one_line(lab: Lab) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["promote", MODEL, "2", "--approver", "ann", "--reason", "x", "--project", str(lab.root)],
        env=ENV,
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to promote")
    assert REFUSE_DIRTY in lines[0]


def test_cli_promote_and_rollback(lab: Lab) -> None:
    runner = CliRunner()
    base = ["--approver", "ann", "--reason", "cli", "--alias", "cli", "--project", str(lab.root)]
    result = runner.invoke(app, ["promote", MODEL, "3", *base, "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "3"
    result = runner.invoke(app, ["promote", MODEL, "1", *base], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"cli of {MODEL} is now version 1 (was version 3)")
    result = runner.invoke(app, ["rollback", MODEL, *base], env=ENV)
    assert result.exit_code == 0, result.output
    assert lab.alias("cli") == "3"
    result = runner.invoke(app, ["promote", MODEL, "1", *base[4:], "--approver", ""], env=ENV)
    assert result.exit_code != 0


def test_cli_prints_a_reason_of_several_lines_on_one(lab: Lab) -> None:
    """A reason may span lines; printed, it must not forge a line of output."""
    forged = "MRM-1\n2026-12-01T00:00:00Z  promote  v9  by ceo: approved  [evt-x]"
    base = ["--approver", "ann", "--alias", "cli-lines", "--project", str(lab.root)]
    runner = CliRunner()
    moved = runner.invoke(app, ["promote", MODEL, "3", *base, "--reason", forged], env=ENV)
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.count("\n") == 1 and "(MRM-1\\n2026-12-01T00:00:00Z" in moved.stdout
    shown = runner.invoke(app, ["history", MODEL, *base[2:]], env=ENV)
    assert shown.exit_code == 0, shown.output
    (line,) = shown.stdout.splitlines()
    assert line.endswith("]") and "by ann: MRM-1\\n2026-12-01T00:00:00Z  promote  v9" in line
    at = runner.invoke(app, ["history", MODEL, *base[2:], "--at", "2999-01-01"], env=ENV)
    assert at.exit_code == 0 and at.stdout.count("\n") == 1, at.output


def _versions(lab: Lab) -> list[str]:
    with registry.tracking(lab.settings) as client:
        return sorted(v.version for v in client.search_model_versions(f"name='{MODEL}'"))


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "'latest' alias name (case insensitive) is reserved"),
        ("v7", "Version alias name 'v7' is reserved"),
        ("two words", "Invalid alias name"),
        (5, "an alias is text, not int"),
        ("champion", "may not move an alias that promotion governs (the alias that answers"),
    ],
)
def test_the_register_stage_refuses_an_alias_before_registering_anything(
    lab: Lab, ledger: Ledger, alias: object, message: str
) -> None:
    """A bad alias used to be refused by MLflow after the version was registered; champion
    used to be set by the pipeline, with no approval, gate or clean commit."""
    versions, size = _versions(lab), ledger.size()
    ws = stages.Workspace.open(lab.root, settings=lab.settings, overrides={"register.alias": alias})
    with pytest.raises(ValueError, match=re.escape(message)):
        stages.register(ws)
    assert _versions(lab) == versions and ledger.size() == size


def test_the_register_stage_refuses_an_alias_a_promotion_moved(lab: Lab, ledger: Ledger) -> None:
    moved = promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="x", alias="prod-eu")
    versions, size = _versions(lab), ledger.size()
    ws = stages.Workspace.open(
        lab.root, settings=lab.settings, overrides={"register.alias": "prod-eu"}
    )
    with pytest.raises(
        ValueError, match=f"ledger event {moved['event']['id']} records its promote"
    ):
        stages.register(ws)
    assert _versions(lab) == versions and ledger.size() == size
    assert lab.alias("prod-eu") == "3"


def _runs(lab: Lab) -> int:
    with registry.tracking(lab.settings) as client:
        experiments = [e.experiment_id for e in client.search_experiments()]
        return len(client.search_runs(experiments, max_results=1000))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"bad key!": 1}, "'extra.bad key!' cannot be recorded as an MLflow parameter"),
        ({"a/../b": 1}, "'extra.a/../b' cannot be recorded as an MLflow parameter"),
        ({"owner": "x" * 6001}, "extra.owner is 6001 characters as text"),
        ({"a.b": 1, "a": {"b": 2}}, "two settings are both named 'extra.a.b'"),
    ],
)
def test_the_register_stage_refuses_settings_mlflow_cannot_record_before_any_run(
    lab: Lab, ledger: Ledger, extra: dict[str, object], message: str
) -> None:
    """MLflow refused a bad name only in ``log_params``, leaving a FAILED run and a traceback;
    it cut a value past 6,000 characters; two settings sharing a dotted name lost one."""
    versions, runs, size = _versions(lab), _runs(lab), ledger.size()
    ws = stages.Workspace.open(lab.root, settings=lab.settings)
    ws.params["extra"] = extra
    with pytest.raises(ValueError, match=re.escape(message)):
        stages.register(ws)
    assert (_versions(lab), _runs(lab), ledger.size()) == (versions, runs, size)


@pytest.mark.parametrize("name", ["bad/name", "a:b", ".."])
def test_the_register_stage_refuses_a_model_name_mlflow_cannot_register_before_any_run(
    lab: Lab, ledger: Ledger, tmp_path: Path, name: str
) -> None:
    """MLflow checks the name only when it registers: a FAILED run tagged gate-passed, with a
    signed logged model, was left behind with a traceback."""
    spec = tmp_path / "spec.yaml"
    text = Path(stages.Workspace.open(lab.root, settings=lab.settings).spec.spec_path).read_text()
    text = text.replace("name: hmda", "name: mine")
    spec.write_text(text.replace("model_name: mortgage-denial", f'model_name: "{name}"'))
    versions, runs, size = _versions(lab), _runs(lab), ledger.size()
    ws = stages.Workspace.open(lab.root, settings=lab.settings)
    ws.params["ingest"]["dataset"] = str(spec)
    with pytest.raises(ValueError, match=r"the dataset spec's model_name cannot be registered"):
        stages.register(ws)
    assert (_versions(lab), _runs(lab), ledger.size()) == (versions, runs, size)


def _written(ws: stages.Workspace) -> dict[str, int]:
    """When each file the train stage writes was last written."""
    names = ("model", "scorecard", "recourse_policy")
    return {n: ws.path(n).stat().st_mtime_ns for n in names}


def test_training_stages_refuse_data_that_changed_since_validation(
    lab: Lab, ledger: Ledger
) -> None:
    """A new raw file that failed (or skipped) validation must not be trained on: the split on
    disk comes from the data as it was before."""
    ws = stages.Workspace.open(lab.root, settings=lab.settings)
    raw = ws.path("raw")
    original, written, size = raw.read_bytes(), _written(ws), ledger.size()
    raw.write_bytes(original + b"\n")
    try:
        for name, stage in [
            ("train", stages.train),
            ("evaluate", stages.evaluate),
            ("fairness", stages.fairness),
        ]:
            with pytest.raises(RuntimeError, match=f"refusing to {name}: .* changed since it"):
                stage(ws)
    finally:
        raw.write_bytes(original)
    assert _written(ws) == written and ledger.size() == size


_WRITES = {
    "split": ("train", "test"),
    "train": ("model", "scorecard", "recourse_policy"),
    "evaluate": ("evaluation",),
    "fairness": ("fairness", "fairness_metrics"),
    "alternatives": ("alternatives",),
    "model_card": ("card_json", "card_md", "card_html"),
}


@pytest.mark.parametrize(
    ("stage", "key", "value", "message"),
    [
        ("split", "split.test_size", "a quarter", "split.test_size must be a finite number"),
        ("train", "train.C", "high", "train.C must be a finite number, got 'high'"),
        ("train", "train.threshold", None, "params.yaml has no train.threshold"),
        ("evaluate", "evaluate.confidence", "high", "evaluate.confidence must be a finite"),
        ("evaluate", "evaluate.seed", None, "params.yaml has no evaluate.seed"),
        ("fairness", "fairness.seed", 1.5, "fairness.seed must be a whole number, got 1.5"),
        ("fairness", "fairness.min_group_size", 2.5, "fairness.min_group_size must be a whole"),
        ("fairness", "fairness.min_approval_ratio", [0.8], "min_approval_ratio must be a finite"),
        ("alternatives", "fairness.n_bootstrap", "many", "fairness.n_bootstrap must be a whole"),
        ("fairness", "fairness.seed", -1, "fairness.seed must be a whole number, got -1 (>= 0)"),
        ("evaluate", "evaluate.seed", -2, "evaluate.seed must be a whole number, got -2 (>= 0)"),
        # the card named no owner ("None", "", a Python repr) or forged a section
        ("model_card", "model_card.owner", None, "params.yaml has no model_card.owner"),
        ("model_card", "model_card.owner", "", "model_card.owner must name the accountable"),
        ("model_card", "model_card.owner", ["MRM"], "owner in one line, got ['MRM']"),
        (
            "model_card",
            "model_card.owner",
            "MRM\n\n## Approval\n- Approved by: CRO",
            "params.yaml model_card.owner contains a control character (U+000A)",
        ),
        # a misspelt bound gated on nothing while the records showed it
        (
            "fairness",
            "fairness.max_demographic_parity_diference",
            0.05,
            "fairness: unknown setting(s) ['max_demographic_parity_diference']",
        ),
        ("fairness", "fairness.gate-on", "each", "unknown setting(s) ['gate-on']"),
        (
            "fairness",
            "fairness.max_demographic_parity_difference",
            True,
            "fairness.max_demographic_parity_difference must be a finite number, got True",
        ),
    ],
)
def test_a_stage_names_the_setting_it_cannot_read_and_writes_nothing(
    lab: Lab, ledger: Ledger, stage: str, key: str, value: object, message: str
) -> None:
    """``float('high')``, a missing key and ``int(1.5)`` used to be a message naming nothing,
    a bare ``KeyError`` and a fairness report bootstrapped with seed 1 that recorded 1.5."""
    ws = stages.Workspace.open(lab.root, settings=lab.settings)
    section, name = key.split(".")
    if value is None:
        del ws.params[section][name]
    else:
        ws.params[section][name] = value
    written = {n: ws.path(n).stat().st_mtime_ns for n in _WRITES[stage]}
    size = ledger.size()
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(stages, stage)(ws)
    assert {n: ws.path(n).stat().st_mtime_ns for n in _WRITES[stage]} == written
    assert ledger.size() == size


def test_the_model_card_shows_configured_text_as_text(lab: Lab) -> None:
    """One line of Markdown in the owner put a live link and a remote image (a tracking pixel
    in a page documented as having no external assets) in the registered card."""
    ws = stages.Workspace.open(lab.root, settings=lab.settings)
    ws.params["model_card"]["owner"] = (
        "MRM [Approved by the CFPB](https://evil.example/) ![x](https://attacker.example/p.png)"
    )
    try:
        stages.model_card(ws)
        html, md = ws.path("card_html").read_text(), ws.path("card_md").read_text()
    finally:
        stages.model_card(stages.Workspace.open(lab.root, settings=lab.settings))
    assert r"- **Owner:** MRM \[Approved by the CFPB\](https://evil.example/) !\[x\]" in md
    assert "<img" not in html and 'href="https://evil.example/"' not in html
    assert "[Approved by the CFPB](https://evil.example/)" in html  # the text, as written


def test_train_writes_nothing_when_its_contract_cannot_be_derived(
    lab: Lab, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.core import contract

    def refuses(*args: object, **kwargs: object) -> object:
        raise ValueError("cannot derive the contract: refused by the test")

    monkeypatch.setattr(contract, "derive_contract", refuses)
    ws = stages.Workspace.open(lab.root, settings=lab.settings)
    written, size = _written(ws), ledger.size()
    with pytest.raises(ValueError, match="refused by the test"):
        stages.train(ws)
    assert _written(ws) == written and ledger.size() == size


def test_history_reads_only_the_ledger(lab: Lab, ledger: Ledger, tmp_path: Path) -> None:
    """A copy of the state directory without MLflow gives the same answers."""
    copy = tmp_path / "home"
    copy_state(lab.settings.home, copy, leave_out=("mlflow.db*",))
    assert not (copy / "mlflow.db").exists()
    with Ledger.open(f"sqlite:///{copy / 'ledger.db'}", home=copy) as alone:
        for alias in ("champion", "candidate", None):
            assert history(alone, MODEL, alias=alias) == history(ledger, MODEL, alias=alias)
        assert history(alone, MODEL, at="2999-01-01") == history(ledger, MODEL, at="2999-01-01")


def test_unrecorded_move_is_undone(
    lab: Lab, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the ledger cannot record the promotion, the alias is put back where it was."""
    promote(lab.settings, ledger, MODEL, "1", approver="ann", reason="a", alias="undo")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ledger, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="b", alias="undo")
    assert lab.alias("undo") == "1"
    with pytest.raises(OSError, match="disk full"):
        promote(lab.settings, ledger, MODEL, "3", approver="ann", reason="b", alias="fresh")
    assert lab.alias("fresh") is None
