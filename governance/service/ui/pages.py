"""What the explorer's decision and model pages show, built from the service's answers.

:class:`UiConfig` holds where the pages link out to (MLflow UI, Dagster UI); :func:`lineage_steps`
lays out a decision's lineage chain, :func:`event_rows` its later events, and
:func:`card_html` and :func:`monitoring_report` what a model version's page shows. :class:`Cache`
keeps immutable registry artifacts (model cards, experiment ids) between pages.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from governance.service.ui.render import num_text
from governance.service.ui.sessions import SESSION_SECONDS
from governance.settings import Settings

MLFLOW_UI_ENV = "GOVERNANCE_MLFLOW_UI_URL"
DAGSTER_UI_ENV = "GOVERNANCE_DAGSTER_UI_URL"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
DEFAULT_DAGSTER_UI = "http://127.0.0.1:3000"
DAGSTER_ASSET = "register"
CARD_CACHE = 32


@dataclass(frozen=True)
class UiConfig:
    """Where the explorer links out to, and how long a session lasts.

    Attributes
    ----------
    mlflow_url
        Base URL of the MLflow UI (runs and model versions are linked under it).
    dagster_url
        Base URL of the Dagster UI (the ``register`` asset is linked under it).
    session_seconds
        Lifetime of a signed-in session.
    secure_cookie
        Mark the session cookie ``Secure``; ``None`` means: when the request came over HTTPS.
    """

    mlflow_url: str = DEFAULT_MLFLOW_UI
    dagster_url: str = DEFAULT_DAGSTER_UI
    session_seconds: int = SESSION_SECONDS
    secure_cookie: bool | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UiConfig:
        """Read ``GOVERNANCE_MLFLOW_UI_URL`` and ``GOVERNANCE_DAGSTER_UI_URL``."""
        env = os.environ if env is None else env
        return cls(
            mlflow_url=(env.get(MLFLOW_UI_ENV) or DEFAULT_MLFLOW_UI).rstrip("/"),
            dagster_url=(env.get(DAGSTER_UI_ENV) or DEFAULT_DAGSTER_UI).rstrip("/"),
        )

    def mlflow_run(self, experiment_id: str | None, run_id: str) -> str:
        """The MLflow UI page of a run."""
        if experiment_id is None:
            return f"{self.mlflow_url}/#/runs/{quote(run_id, safe='')}"
        return f"{self.mlflow_url}/#/experiments/{quote(experiment_id, safe='')}/runs/" + quote(
            run_id, safe=""
        )

    def mlflow_version(self, name: str, version: str) -> str:
        """The MLflow UI page of a registered model version."""
        return f"{self.mlflow_url}/#/models/{quote(name, safe='')}/versions/{quote(version)}"

    def dagster_asset(self, asset: str = DAGSTER_ASSET) -> str:
        """The Dagster UI page of an asset."""
        return f"{self.dagster_url}/assets/{quote(asset)}"


@dataclass(frozen=True)
class Step:
    """One link of the lineage chain shown on a decision page."""

    label: str
    text: str
    href: str | None = None
    external: tuple[tuple[str, str], ...] = ()
    details: tuple[str, ...] = ()
    ok: bool | None = None


def lineage_steps(
    trace: Mapping[str, Any],
    config: UiConfig,
    model_href: str,
    experiment_id: str | None,
) -> list[Step]:
    """The chain model version → run → data → validation → fairness → card → commit."""
    m = trace["model"]
    run_id = str(trace["training_run"]["mlflow_run_id"])
    run = trace["training_run"].get("run") or {}
    validation = trace["validation"] or {}
    stats = validation.get("statistics") or {}
    fairness = trace["fairness"] or {}
    code = trace["code"] or {}
    source = str(run.get("source") or "unknown")
    run_details = [f"produced by: {source}" + (f" run {run['id']}" if run.get("id") else "")]
    data_lines = tuple(
        f"{d['name']}: {d['path']} · md5 {d['md5']} · {num_text(d.get('rows'))} rows"
        for d in trace["data"]
    )
    passed_expectations = stats.get("successful_expectations")
    evaluated = stats.get("evaluated_expectations")
    commit = str(code.get("git_commit") or "unknown")
    return [
        Step(
            "Model version",
            f"{m['name']} version {m['version']}"
            + (f" (decided through alias {m['alias']})" if m.get("alias") else ""),
            href=model_href,
            external=(("MLflow model version", config.mlflow_version(m["name"], m["version"])),),
            details=(
                f"lineage id {m['lineage_id']}",
                "matches the registered version's lineage"
                if m.get("lineage_id_matches")
                else "DOES NOT match the registered version's lineage",
            ),
            ok=bool(m.get("lineage_id_matches")),
        ),
        Step(
            "Training run",
            f"MLflow run {run_id}",
            external=(
                ("MLflow run", config.mlflow_run(experiment_id, run_id)),
                ("Dagster asset", config.dagster_asset()),
            ),
            details=tuple(run_details),
        ),
        Step(
            "Training data",
            f"{len(trace['data'])} dataset(s), content-addressed by DVC md5",
            href=f"{model_href}#lineage-data",
            details=data_lines,
        ),
        Step(
            "Data validation",
            ("passed" if validation.get("success") else "FAILED")
            + (
                f": {passed_expectations}/{evaluated} expectations of suite"
                f" {validation.get('suite')}"
                if evaluated is not None
                else ""
            ),
            href=f"{model_href}#lineage-validation",
            details=tuple(
                f"{k}: {validation[k]}" for k in ("data_md5", "result") if validation.get(k)
            ),
            ok=bool(validation.get("success")),
        ),
        Step(
            "Fairness report",
            str(fairness.get("message") or ("passed" if fairness.get("passed") else "failed")),
            href=f"{model_href}#lineage-fairness",
            details=tuple(headline_fairness(fairness.get("metrics") or {})),
            ok=bool(fairness.get("passed")),
        ),
        Step(
            "Model card",
            str((trace.get("model_card") or {}).get("path") or "model card"),
            href=f"{model_href}#card",
            details=(
                "MLflow artifact " + str((trace.get("model_card") or {}).get("mlflow_artifact")),
            ),
        ),
        Step(
            "Code commit",
            commit,
            href=f"{model_href}#lineage-code",
            details=(
                "clean working tree" if not code.get("git_dirty") else "UNCOMMITTED changes",
                f"governance {code.get('package_version')}",
                f"params sha256 {trace.get('params_hash')}",
            ),
            ok=not code.get("git_dirty"),
        ),
    ]


_HEADLINE = ("approval_ratio", "demographic_parity_difference", "equalized_odds_difference")


def headline_fairness(metrics: Mapping[str, Any]) -> list[str]:
    """``group: approval ratio 0.934 · …`` for each grouping, from the flat metric names."""
    groups: dict[str, list[str]] = {}
    for key, value in metrics.items():
        group, _, metric = key.rpartition(".")
        if metric in _HEADLINE and group and "." not in group:
            groups.setdefault(group, []).append(f"{metric.replace('_', ' ')} {num_text(value)}")
    return [f"{g}: " + " · ".join(parts) for g, parts in sorted(groups.items())]


def event_rows(shown: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A decision's reviews, outcomes and overrides as table rows (recourse, notices apart)."""
    out = []
    for event in shown.get("events", []):
        if event["type"] in ("recourse", "notice"):  # their own sections of the page
            continue
        body = event.get("body") or {}
        kind = body.get("kind") if event["type"] == "review" else event["type"]
        who = (
            body.get("reviewer")
            or body.get("recorded_by")
            or body.get("source")
            or body.get("approver")
        )
        if event["type"] == "outcome" and body.get("recorded_by") and body.get("source"):
            who = f"{body['recorded_by']} (source {body['source']})"
        outcome = body.get("outcome") if event["type"] == "review" else body.get("observed")
        out.append(
            {
                "id": event["id"],
                "seq": event["seq"],
                "ts": event["ts"],
                "type": event["type"],
                "kind": kind,
                "who": who,
                "reason": body.get("reason"),
                "outcome": outcome,
                "observed_at": body.get("observed_at"),
                "corrects": body.get("corrects"),
            }
        )
    return out


def card_html(card: Mapping[str, Any]) -> Markup:
    """The model card as an HTML fragment (raw HTML in the Markdown escaped; the frontier plot,
    SVG drawn by our own code from numbers, inlined)."""
    from governance.core.model_card import render_fragment

    return Markup(render_fragment(dict(card)))


def monitoring_report(project_dir: Path, model: str, version: str) -> dict[str, Any] | None:
    """The latest production monitoring report of a version, if one was written."""
    from governance.lifecycle.monitoring import report_dir

    path = report_dir(project_dir, model, version) / "report.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    drift = (doc.get("drift") or {}).get("features") or []
    doc["_top_drift"] = sorted(drift, key=lambda d: -(d.get("psi") or 0.0))[:5]
    return doc


class Cache:
    """A small thread-safe memo for immutable registry artifacts (model cards, run ids)."""

    def __init__(self, size: int = CARD_CACHE) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.items: dict[Any, Any] = {}

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        """The value kept for ``key``, else ``make()`` (kept; the oldest entry goes first)."""
        with self.lock:
            if key in self.items:
                return self.items[key]
        value = make()
        with self.lock:
            if len(self.items) >= self.size:
                self.items.pop(next(iter(self.items)))
            self.items[key] = value
        return value


def experiment_of(settings: Settings, run_id: str) -> str | None:
    """The MLflow experiment id of a run, ``None`` when the tracking server cannot say."""
    from governance.registry.mlflow import tracking

    try:
        with tracking(settings) as client:
            return str(client.get_run(run_id).info.experiment_id)
    except Exception:
        return None


def load_card(
    settings: Settings, name: str, version: str
) -> tuple[dict[str, Any] | None, Markup | None, str | None]:
    """A version's model card, as logged and as HTML, or why it cannot be shown."""
    from governance.registry import mlflow as registry

    try:
        card = registry.model_card(settings, name, version)
    except LookupError as exc:
        return None, None, str(exc)
    return card, card_html(card), None
