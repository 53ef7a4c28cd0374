"""Production monitoring of a registered model version, from the ledger and the registry.

The thin layer between :mod:`governance.core.monitoring` (pure computation) and the places that
run it (the Dagster ``production_monitoring`` asset, tests, a future CLI):

* :func:`resolve_version` — which version to monitor: an explicit version, else an alias; by
  default the ``champion``, falling back to the ``candidate`` while nothing has been promoted;
* :func:`load_production` — a version's decisions in a time window from the ledger, joined to
  their later ``outcome`` events (ground truth) and ``review`` events (overrides change the
  effective outcome) and to the sensitive attributes callers supplied (stored encrypted in the
  decision's PII under ``"sensitive"``, decrypted here and never written out per decision);
* :func:`reference_profile` — the version's training split (restored by md5 from the DVC cache
  or remote named in its lineage) binned once, with the version's own scores; stored as
  ``reports/monitoring/<model>/v<version>/reference.json`` and reused while the training md5 and
  the number of bins are unchanged;
* :func:`run` — all of it, writing ``report.json``, ``report.md`` and ``report.html`` (and a
  timestamped copy of the JSON under ``history/``) next to the profile.

Thresholds and settings come from ``params.yaml`` ``monitoring`` (see
:class:`governance.core.monitoring.MonitoringParams` for the keys and their defaults).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.core import monitoring as core
from governance.core.dataset import DatasetSpec, load_spec, read_csv
from governance.core.lineage import DataStore
from governance.ledger import ERASED, Ledger
from governance.ledger.paging import iter_find
from governance.registry import mlflow as registry
from governance.settings import Settings

DEFAULT_ALIASES = ("champion", "candidate")  # tried in this order when no alias is given
REPORT_DIR = "reports/monitoring"

ERR_NO_DEFAULT_ALIAS = (
    "model {model!r} has none of the aliases {aliases}; give a version or an alias"
)
ERR_VERSION_AND_ALIAS = "give a version or an alias, not both"
ERR_NO_TRAIN = "the lineage of {model!r} version {version} lists no training split"
ERR_SPEC = "cannot load the dataset spec of {model!r} version {version}: {problem}"


def resolve_version(
    settings: Settings, model: str, *, version: str | None = None, alias: str | None = None
) -> tuple[str, str | None]:
    """The version to monitor and the alias it was reached through.

    Parameters
    ----------
    settings : Settings
        Where the registry is.
    model : str
        Registered model name.
    version : str, optional
        An explicit version (then no alias is looked up).
    alias : str, optional
        An alias. Neither given: ``champion``, else ``candidate``.

    Returns
    -------
    tuple of (str, str or None)

    Raises
    ------
    LookupError
        If the model or the alias does not exist.
    """
    if version and alias:
        raise ValueError(ERR_VERSION_AND_ALIAS)
    if version:
        return str(version), None
    with registry.tracking(settings) as client:
        if alias:
            return registry.alias_version(client, model, alias), alias
        found = registry.first_alias(client, model, DEFAULT_ALIASES)
    if found is None:
        raise LookupError(ERR_NO_DEFAULT_ALIAS.format(model=model, aliases=list(DEFAULT_ALIASES)))
    return found


def _sensitive_values(
    supplied: Mapping[str, Any], features: Sequence[str], spec: DatasetSpec | None
) -> dict[str, str]:
    """The sensitive attributes of one decision as strings; derived ones banded if needed."""
    derived = {d.name: d for d in spec.derived} if spec else {}
    out: dict[str, str] = {}
    for name in features:
        value = supplied.get(name)
        if value is None and name in derived and supplied.get(derived[name].source) is not None:
            d = derived[name]
            try:
                x = float(supplied[d.source])
            except (TypeError, ValueError):
                continue
            band = pd.cut([x], bins=list(d.bins), labels=list(d.labels), right=False)[0]
            value = None if pd.isna(band) else band
        if value is not None:
            out[name] = str(value)
    return out


def load_production(
    ledger: Ledger,
    model: str,
    version: str,
    *,
    features: Sequence[str],
    sensitive_features: Sequence[str],
    spec: DatasetSpec | None = None,
    since: str | None = None,
    until: str | None = None,
    purpose: str | None = None,
) -> core.ProductionFrames:
    """A version's decisions in ``[since, until)`` with outcomes, overrides, sensitive attributes.

    Parameters
    ----------
    ledger : Ledger
        The decision ledger.
    model, version : str
        The model version (decisions made by it, through any alias).
    features : sequence of str
        The model inputs to take from each decision.
    sensitive_features : sequence of str
        The sensitive attributes to take from the decisions' PII (``pii["sensitive"]``).
    spec : DatasetSpec, optional
        To band derived attributes (e.g. ``age_band`` from ``Age``) when callers supplied the
        source value instead.
    since, until : str, optional
        ISO 8601 time range of the decisions (outcomes and reviews count whenever they arrived).
    purpose : str, optional
        Only decisions recorded with this purpose.

    Returns
    -------
    ProductionFrames
    """
    ids: list[str] = []
    rows: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    sensitive: list[dict[str, str]] = []
    erased = 0
    records = iter_find(
        ledger,
        model=model,
        version=version,
        type="decision",
        since=since or None,
        until=until or None,
    )
    for record in records:
        body = record.body
        if purpose and body.get("purpose") != purpose:
            continue
        ids.append(record.id)
        rows.append(
            {
                "ts": record.ts,
                "seq": record.seq,
                "score": body["score"],
                "outcome": body["outcome"],
                "out_of_distribution": tuple(body.get("out_of_distribution") or ()),
            }
        )
        recorded = body.get("inputs") or {}
        inputs.append({f: recorded.get(f) for f in features})
        supplied: dict[str, str] = {}
        if isinstance(body.get("pii"), dict):
            pii = ledger.decode(record)["body"]["pii"]
            if pii == ERASED:
                erased += 1
            elif isinstance(pii, dict) and isinstance(pii.get("sensitive"), dict):
                supplied = _sensitive_values(pii["sensitive"], sensitive_features, spec)
        sensitive.append(supplied)
    index = pd.Index(ids, name="decision_id", dtype=object)
    columns = ["ts", "seq", "score", "outcome", "out_of_distribution"]
    decisions = pd.DataFrame(rows, index=index, columns=columns)
    decisions["score"] = decisions["score"].astype("float64")

    outcome_rows = [
        {"decision_id": r.body["decision_id"], "seq": r.seq, "observed": r.body["observed"]}
        for r in iter_find(ledger, model=model, version=version, type="outcome")
    ]
    override_rows = [
        {"decision_id": r.body["decision_id"], "seq": r.seq, "outcome": r.body["outcome"]}
        for r in iter_find(ledger, model=model, version=version, type="review")
        if r.body.get("kind") == "override" and r.body.get("outcome") is not None
    ]
    outcomes = pd.DataFrame(outcome_rows, columns=["decision_id", "seq", "observed"])
    overrides = pd.DataFrame(override_rows, columns=["decision_id", "seq", "outcome"])
    decisions["effective_outcome"] = core.effective_outcomes(decisions["outcome"], overrides)
    decisions["overridden"] = decisions.index.isin(overrides["decision_id"])
    observed = core.latest_by_decision(outcomes, "observed")
    decisions["observed"] = observed.reindex(decisions.index).astype(object)
    decisions["observed"] = decisions["observed"].where(decisions["observed"].notna(), None)

    input_frame = pd.DataFrame(inputs, index=index, columns=list(features))
    sensitive_frame = pd.DataFrame(sensitive, index=index, columns=list(sensitive_features))
    return core.ProductionFrames(decisions, input_frame, sensitive_frame, erased)


def _version_spec(settings: Settings, lineage: Mapping[str, Any], model: str) -> DatasetSpec:
    """The dataset spec a version was trained with (as configured, else by its name)."""
    configured = str(((lineage.get("params") or {}).get("ingest") or {}).get("dataset") or "")
    candidates = [c for c in (configured, str(lineage.get("dataset") or "")) if c]
    problem: Exception | None = None
    for name in candidates:
        for option in (name, str(settings.project_dir / name)):
            try:
                return load_spec(option)
            except ValueError as exc:
                problem = exc
    raise ValueError(ERR_SPEC.format(model=model, version=lineage.get("version"), problem=problem))


def _training_frame(
    settings: Settings, lineage: Mapping[str, Any], model: str, version: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Restore a version's training split by md5 (from its lineage's storage, else ours)."""
    train = next((d for d in lineage.get("datasets", []) if d.get("name") == "train"), None)
    if train is None:
        raise LookupError(ERR_NO_TRAIN.format(model=model, version=version))
    storage = lineage.get("storage") or {}
    stores = []
    if storage.get("cache") and storage.get("remote"):
        stores.append(DataStore(Path(storage["cache"]), Path(storage["remote"])))
    stores.append(DataStore(settings.project_dir / ".dvc" / "cache", settings.dvc_remote))
    problem: Exception | None = None
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "train.csv"
        for store in stores:
            try:
                store.restore(train["md5"], dest)
                return read_csv(dest), dict(train)
            except (FileNotFoundError, ValueError) as exc:
                problem = exc
    assert problem is not None
    raise problem


def reference_profile(
    settings: Settings,
    model: str,
    version: str,
    *,
    n_bins: int,
    cache: Path | None = None,
) -> tuple[core.ReferenceProfile, DatasetSpec, dict[str, Any]]:
    """The version's reference profile, its dataset spec and its lineage.

    The profile is read from ``cache`` when it was built from the same training md5 with the
    same number of bins; otherwise the training split is restored by md5, scored with the
    registered version's own scorecard, binned, and written to ``cache``.
    """
    from governance.core.lineage import lineage_id
    from governance.core.training import model_inputs

    lineage = registry.resolve(settings, model, version)
    lid = lineage_id(lineage)
    spec = _version_spec(settings, lineage, model)
    train = next((d for d in lineage.get("datasets", []) if d.get("name") == "train"), None)
    if cache is not None and cache.is_file() and train is not None:
        try:
            stored = core.ReferenceProfile.from_dict(json.loads(cache.read_text()))
        except (ValueError, KeyError, json.JSONDecodeError):
            stored = None
        if (
            stored is not None
            and stored.n_bins == n_bins
            and stored.source.get("train_md5") == train.get("md5")
            and stored.source.get("lineage_id") == lid
        ):
            return stored, spec, lineage
    frame, train_info = _training_frame(settings, lineage, model, version)
    sc = registry.load_version(settings, model, version).scorecard  # the registered artifact itself
    inputs = model_inputs(frame, spec)[list(sc.order)]
    scores, _ = sc.score_frame(inputs)
    categorical = {
        name: [k for k in c["weights"] if k != core.MISSING_BIN]
        for name, c in sc.categorical.items()
    }
    profile = core.build_reference_profile(
        inputs,
        scores,
        numeric=list(sc.numeric),
        categorical=categorical,
        n_bins=n_bins,
        source={
            "model": model,
            "version": str(version),
            "lineage_id": lid,
            "train_md5": train_info["md5"],
            "train_path": train_info.get("path"),
        },
    )
    if cache is not None:
        _write(cache, json.dumps(profile.to_dict(), indent=2, sort_keys=True) + "\n")
    return profile, spec, lineage


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def report_dir(project_dir: Path, model: str, version: str) -> Path:
    """``reports/monitoring/<model>/v<version>/`` under the project.

    Both are made safe as one path component (``_`` for anything but letters, digits, ``._-``).
    """
    unsafe = re.compile(r"[^A-Za-z0-9._-]+")
    return project_dir / REPORT_DIR / unsafe.sub("_", model) / f"v{unsafe.sub('_', version)}"


@dataclass(frozen=True)
class MonitoringRun:
    """A finished monitoring run: the report and where it was written."""

    report: core.MonitoringReport
    doc: dict[str, Any]
    markdown: str
    paths: dict[str, Path]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def run(
    settings: Settings,
    params: Mapping[str, Any],
    model: str,
    *,
    version: str | None = None,
    alias: str | None = None,
    since: str | None = None,
    until: str | None = None,
    purpose: str | None = None,
    write: bool = True,
) -> MonitoringRun:
    """Monitor one registered model version and write its report under the project.

    Parameters
    ----------
    settings : Settings
        Project, registry, ledger and DVC remote locations.
    params : mapping
        The project's ``params.yaml`` (its ``monitoring`` block, defaults for what is absent).
    model : str
        Registered model name.
    version, alias : str, optional
        Which version (see :func:`resolve_version`).
    since, until : str, optional
        ISO 8601 window of the decisions.
    purpose : str, optional
        Only decisions recorded with this purpose.
    write : bool, default True
        Write the profile and the report files.

    Returns
    -------
    MonitoringRun
    """
    mp = core.MonitoringParams.from_params(params.get("monitoring"))
    version, via = resolve_version(settings, model, version=version, alias=alias)
    out = report_dir(settings.project_dir, model, version)
    profile, spec, lineage = reference_profile(
        settings,
        model,
        version,
        n_bins=mp.psi_bins,
        cache=out / "reference.json" if write else None,
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        frames = load_production(
            ledger,
            model,
            version,
            features=[f.name for f in profile.features],
            sensitive_features=list(spec.sensitive_features),
            spec=spec,
            since=since,
            until=until,
            purpose=purpose,
        )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    report = core.monitor(
        profile,
        frames,
        mp,
        adverse_outcome=spec.outcomes["adverse"],
        model={
            "name": model,
            "version": version,
            "alias": via,
            "lineage_id": profile.source.get("lineage_id"),
            "git_commit": lineage.get("git_commit"),
        },
        window={"since": since or None, "until": until or None, "purpose": purpose or None},
        reference_metrics=lineage.get("metrics"),
        generated_at=now,
    )
    doc = _jsonable(report.to_dict())
    markdown = core.render_markdown(doc)
    paths = {
        "json": out / "report.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
        "reference": out / "reference.json",
        "history": out / "history" / f"{now.replace(':', '')}.json",
    }
    if write:
        text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
        _write(paths["json"], text)
        _write(paths["history"], text)
        _write(paths["markdown"], markdown)
        _write(paths["html"], core.render_html(doc))
    return MonitoringRun(report, doc, markdown, paths)


__all__ = [
    "MonitoringRun",
    "load_production",
    "reference_profile",
    "report_dir",
    "resolve_version",
    "run",
]
