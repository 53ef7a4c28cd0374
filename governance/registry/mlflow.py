"""The one MLflow adapter: tracking store, registry lookups, registration, lineage resolution.

Every other module reaches MLflow through here. Lookups raise typed errors --
:class:`ModelNotFound`, :class:`VersionNotFound`, :class:`AliasNotFound` (all
:class:`RegistryLookupError`, a :class:`LookupError`) and :class:`RegistryUnavailable` -- so
callers (the HTTP layer above all) decide by type, never by message text.

``mlflow`` is imported inside the functions that use it: importing it costs about a second,
which the CLI's ledger commands (``audit verify`` ...) and the HTTP service's start should not
pay when they never touch the registry.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from governance.core import recourse_record
from governance.core.contract import Contract
from governance.core.lineage import lineage_id
from governance.core.recourse import RecoursePolicy
from governance.core.scorecard import Scorecard
from governance.registry import signing
from governance.settings import Settings, explorer_version_url

log = logging.getLogger(__name__)

TAG_PREFIX = "governance."
ERR_NO_MODEL = "no registered model named {name!r}"
ERR_NO_VERSION = "model {name!r} has no version {version!r}"
ERR_NO_ALIAS = "model {name!r} has no alias {alias!r}"
ERR_UNAVAILABLE = "the model registry does not answer: {problem}"
ERR_VERSION_AND_ALIAS = "give a version or an alias, not both"
ERR_PARAM_NAME = "params.yaml: {name!r} cannot be recorded as an MLflow parameter: {why}"
ERR_PARAM_VALUE = (
    "params.yaml: {name} is {length} characters as text; MLflow records at most {limit}"
    " (it would cut the rest)"
)
ERR_MODEL_NAME = "the dataset spec's model_name cannot be registered: {why}"
ERR_PARAM_TWICE = "params.yaml: two settings are both named {name!r} once flattened"
DEFAULT_ALIAS = "champion"
ALIAS_TTL_SECONDS = 5.0  # how long an alias -> version answer is reused before asking again
# MlflowException error codes that mean "no such thing" (anything else: the registry failed)
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


class RegistryLookupError(LookupError):
    """A registered model, version or alias that does not exist."""


class ModelNotFound(RegistryLookupError):
    """No registered model of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(ERR_NO_MODEL.format(name=name))
        self.name = name


class VersionNotFound(RegistryLookupError):
    """The model exists but has no such version."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(ERR_NO_VERSION.format(name=name, version=str(version)))
        self.name = name
        self.version = str(version)


class AliasNotFound(RegistryLookupError):
    """The model exists but has no such alias."""

    def __init__(self, name: str, alias: str) -> None:
        super().__init__(ERR_NO_ALIAS.format(name=name, alias=alias))
        self.name = name
        self.alias = alias


class ModelLoadError(RuntimeError):
    """A registered version that cannot be loaded (no lineage, a broken artifact)."""


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked (connection refused, server error ...)."""

    def __init__(self, problem: object) -> None:
        super().__init__(ERR_UNAVAILABLE.format(problem=problem))


ERR_NO_LINEAGE = "model {name!r} version {version} has no lineage.json in run {run_id}: {problem}"


def _quiet() -> None:
    # MLflow's SQLite store logs every alembic migration at INFO on first use.
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextmanager
def tracking(settings: Settings) -> Iterator[Any]:
    """Point MLflow at the configured tracking store for the duration of the block."""
    import mlflow

    _quiet()
    settings.home.mkdir(parents=True, exist_ok=True)
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    try:
        yield mlflow.MlflowClient(settings.mlflow_uri, settings.mlflow_uri)
    finally:
        if previous is not None:
            mlflow.set_tracking_uri(previous)


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) in NOT_FOUND_CODES


def require_model(client: Any, name: str) -> None:
    """Raise :class:`ModelNotFound` unless ``name`` is registered."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if not _is_not_found(exc):
            raise RegistryUnavailable(exc) from exc
        raise ModelNotFound(name) from None


def version_info(client: Any, name: str, version: str) -> Any:
    """A registered version (MLflow's ``ModelVersion``: run id, aliases, tags ...).

    Raises :class:`ModelNotFound` or :class:`VersionNotFound`.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if not _is_not_found(exc):
            raise RegistryUnavailable(exc) from exc
        require_model(client, name)
        raise VersionNotFound(name, str(version)) from None


def alias_version(client: Any, name: str, alias: str) -> str:
    """The version an alias points at.

    Raises :class:`ModelNotFound`, :class:`AliasNotFound` or :class:`RegistryUnavailable`.
    """
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if not _is_not_found(exc):
            raise RegistryUnavailable(exc) from exc
        require_model(client, name)
        raise AliasNotFound(name, alias) from None
    except Exception as exc:  # connection errors surface as many types
        raise RegistryUnavailable(exc) from exc


def first_alias(client: Any, name: str, aliases: Sequence[str]) -> tuple[str, str] | None:
    """``(version, alias)`` for the first of ``aliases`` the model has, else ``None``.

    Raises :class:`ModelNotFound` if the model is not registered.
    """
    require_model(client, name)
    for alias in aliases:
        try:
            return alias_version(client, name, alias), alias
        except AliasNotFound:
            continue
    return None


def experiment_id(settings: Settings, dataset: str) -> str:
    """The experiment of a dataset, created with its artifact root in the state directory."""
    import mlflow

    name = f"governance-{dataset}"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    return str(mlflow.create_experiment(name, artifact_location=settings.artifacts.as_uri()))


def record_gate_failure(
    settings: Settings,
    *,
    dataset: str,
    gate: str,
    message: str,
    evidence: dict[str, Any],
    context: dict[str, str],
) -> str:
    """Leave an MLflow run that says which gate failed and why. Returns its run id."""
    import mlflow

    with tracking(settings):
        exp = experiment_id(settings, dataset)
        with mlflow.start_run(experiment_id=exp, run_name=f"{gate}-gate-failed") as run:
            mlflow.set_tags(
                {
                    f"{TAG_PREFIX}gate": gate,
                    f"{TAG_PREFIX}gate.passed": "false",
                    f"{TAG_PREFIX}gate.message": message[:4900],
                    f"{TAG_PREFIX}registered": "false",
                    **{f"{TAG_PREFIX}{k}": v for k, v in context.items()},
                }
            )
            mlflow.log_dict(evidence, f"gates/{gate}.json")
            mlflow.end_run(status="FAILED")
        return str(run.info.run_id)


CHAMPION = "champion"
"""The alias that answers applicants by default: moved only by promotion, never by the pipeline."""


def check_alias(alias: object) -> str:
    """``alias`` if MLflow can set it, else :class:`ValueError` with MLflow's reason.

    Checked before anything is logged: MLflow refuses a bad or reserved alias (``latest``,
    ``v2``) only in ``set_registered_model_alias``, after the version exists.
    """
    from mlflow.exceptions import MlflowException

    # MLflow's own rules (mlflow is pinned): its public API checks only when it sets the alias
    from mlflow.utils.validation import (
        _validate_model_alias_name,
        _validate_model_alias_name_reserved,
    )

    if not isinstance(alias, str):
        raise ValueError(f"an alias is text, not {type(alias).__name__}")
    try:
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
    except MlflowException as exc:
        raise ValueError(exc.message) from None
    return alias


def check_model_name(name: str) -> str:
    """``name`` if MLflow can register a model under it, else :class:`ValueError` with MLflow's
    reason (it checks only when it registers, after the run is logged)."""
    from mlflow.exceptions import MlflowException

    # MLflow's own rule (mlflow is pinned)
    from mlflow.utils.validation import _validate_model_name

    try:
        _validate_model_name(name)
    except MlflowException as exc:
        raise ValueError(ERR_MODEL_NAME.format(why=exc.message)) from None
    return name


def check_params(params: dict[str, Any]) -> dict[str, str]:
    """``params`` flattened to the dotted names and text MLflow records, else :class:`ValueError`
    naming the setting.

    Checked before the run starts: MLflow refuses a bad name (``bad key!``) only in
    ``log_params``, leaving a failed run, and cuts a value past its limit to that limit.
    """
    from mlflow.exceptions import MlflowException

    # MLflow's own rules (mlflow is pinned): a name it would refuse, a value it would truncate
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, _validate_param_name

    flat = {name: str(value) for name, value in _flatten(params).items()}
    for name, value in flat.items():
        try:
            _validate_param_name(name)
        except MlflowException as exc:
            raise ValueError(ERR_PARAM_NAME.format(name=name, why=exc.message)) from None
        if len(value) > MAX_PARAM_VAL_LENGTH:
            raise ValueError(
                ERR_PARAM_VALUE.format(name=name, length=len(value), limit=MAX_PARAM_VAL_LENGTH)
            )
    return flat


def register(
    settings: Settings,
    *,
    dataset: str,
    model_name: str,
    alias: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    inputs: list[dict[str, Any]],
    artifacts: list[tuple[str, Path]],
    model_artifacts: dict[str, Path],
    signature_frame: Any,
    lineage: dict[str, Any],
    card: dict[str, Any],
    materials: dict[str, str],
    code_url: str,
    comparison: dict[str, Any] | None = None,
    model_code: Path | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log the run, the pyfunc model, the card and the lineage; register a version; alias it.

    The logged model is signed before it is registered (:mod:`governance.registry.signing`):
    its provenance statement names ``materials`` (``params.yaml`` and the lock file by sha256)
    besides the lineage's data md5s and commit, and the code at ``code_url``; the signed model
    must then load through verification and score the input example as the scorecard does.
    ``model_code`` is the "models from code" file MLflow logs and runs on load (default:
    :mod:`governance.registry.pyfunc`, which records nothing; the pipeline passes
    :mod:`governance.decisions.pyfunc`, which records every prediction in the ledger); it is
    signed with the rest of the model directory.

    ``lineage`` is completed here with the MLflow run id and the version, then logged as
    ``lineage.json`` and attached to the version as tags (with the signing digests); the model
    card gains its registration section and is logged as Markdown, HTML and JSON under
    ``model_card/``. Returns the registration (``signing``: the digests) and the final card.
    """
    import mlflow
    from mlflow.models import infer_signature

    from governance.core.model_card import render_html, render_markdown
    from governance.registry import pyfunc
    from governance.registry.pyfunc import GovernedModel

    with tracking(settings) as client, warnings.catch_warnings():
        # A local file URI matches two equivalent MLflow dataset-source classes; harmless.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interp")
        exp = experiment_id(settings, dataset)
        with mlflow.start_run(experiment_id=exp, run_name=f"train-{dataset}") as run:
            run_id = run.info.run_id
            mlflow.log_params(check_params(params))
            mlflow.log_metrics(metrics)
            mlflow.set_tags({**tags, f"{TAG_PREFIX}gate.passed": "true"})
            for item in inputs:
                mlflow.log_input(dataset_input(item), context=item["context"])
            for dest, path in artifacts:
                mlflow.log_artifact(str(path), artifact_path=dest)
            example = signature_frame.head(5)
            scorer = GovernedModel.from_scorecard_file(model_artifacts["scorecard"])
            signature = infer_signature(
                example, scorer.predict(None, example), params=pyfunc.PARAMS
            )
            with _unsigned_example_check_quiet():
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(model_code or pyfunc.__file__),  # models from code
                    artifacts={k: str(v) for k, v in model_artifacts.items()},
                    signature=signature,
                    input_example=example,
                    code_paths=[str(Path(__file__).resolve().parents[1])],  # the package
                    pip_requirements=_pip_requirements(),
                    # the loader passes the key it trusts; the model names none itself
                    model_config={signing.PUBLIC_KEY_CONFIG: ""},
                )
            with tempfile.TemporaryDirectory() as tmp:
                signed = signing.sign_logged_model(
                    settings,
                    client,
                    model_id=str(info.model_id),
                    model_uri=info.model_uri,
                    dest=Path(tmp),
                    lineage=lineage,
                    materials=materials,
                    code_url=code_url,
                )
            _check_signed_model(settings, info.model_uri, example, scorer.predict(None, example))
            version = mlflow.register_model(info.model_uri, model_name, tags=None)
            lineage = {
                **lineage,
                "model": model_name,
                "version": str(version.version),
                "mlflow_run_id": run_id,
                "model_uri": f"models:/{model_name}/{version.version}",
            }
            lineage["run"]["mlflow_run_id"] = run_id
            mlflow.log_dict(lineage, "lineage.json")
            registration = {
                "model": model_name,
                "version": str(version.version),
                "alias": alias,
                "mlflow_run_id": run_id,
                "experiment_id": exp,
                "model_uri": lineage["model_uri"],
                "signing": signed.digests(),
            }
            if comparison is not None:
                mlflow.log_dict(comparison, "comparison.json")
            card = {
                **card,
                "registration": registration,
                "lineage": lineage,
                "comparison": comparison,
            }
            mlflow.log_dict(card, "model_card/model_card.json")
            mlflow.log_text(render_markdown(card), "model_card/model_card.md")
            mlflow.log_text(render_html(card), "model_card/model_card.html")
        tags = {**version_tags(lineage), **signing.signing_tags(signed)}
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version.version, key, value)
        client.set_registered_model_alias(model_name, alias, version.version)
        return registration, card


def representative_rows(frame: Any) -> Any:
    """Rows of ``frame`` from which MLflow infers the same dataset schema as from all of it.

    MLflow looks at every value of every column in Python (whether one is missing; the type of
    each value of an object column): 83% of the register stage at 1M rows. What it concludes
    depends only on each column's dtype, on whether a value is missing and, for object columns,
    on which (type, value) pairs occur. The rows kept are, for every column, its first row and
    its first missing value, and for object and string columns the first row of each distinct
    pair (of each distinct string).
    """
    import numpy as np
    import pandas as pd

    keep = np.zeros(len(frame), dtype=bool)
    keep[:1] = True
    for name in frame.columns:
        column = frame[name]
        missing = column.isna().to_numpy()
        keep[np.flatnonzero(missing)[:1]] = True
        if isinstance(column.dtype, pd.StringDtype):  # every present value is a str
            keep |= ~column.duplicated().to_numpy()
        elif column.dtype.kind == "O":
            pairs = pd.DataFrame({"type": column.map(type), "value": column})
            keep |= ~pairs.duplicated().to_numpy()
    return frame.iloc[np.flatnonzero(keep)]


def dataset_input(item: dict[str, Any]) -> Any:
    """The MLflow dataset of one training input: its CSV, md5 digest and schema."""
    import pandas as pd
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.pandas_dataset import PandasDataset

    class _Dataset(PandasDataset):
        @cached_property
        def schema(self) -> Any:
            """MLflow's own inference, on :func:`representative_rows` (the same schema)."""
            sample = representative_rows(self.df)
            return PandasDataset(sample, source=self.source, digest=self.digest).schema

    frame = pd.read_csv(item["path"])
    frame = frame.astype({c: "float64" for c in frame.select_dtypes("integer")})
    return _Dataset(
        frame,
        source=resolve_dataset_source(Path(item["path"]).resolve().as_uri()),
        name=item["name"],
        digest=item["md5"],
    )


@contextmanager
def _unsigned_example_check_quiet() -> Iterator[None]:
    """Silence MLflow's check of the input example while the model is not signed yet.

    ``log_model`` loads the model it just wrote to score the input example; the pyfunc refuses
    to load without a signature, which comes only after logging. The signed model is then
    checked for real (:func:`_check_signed_model`); only that one refusal is silenced.
    """
    logger = logging.getLogger("mlflow.models.model")

    def keep(record: logging.LogRecord) -> bool:
        return signing.UNSIGNED_MARK not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _check_signed_model(settings: Settings, model_uri: str, example: Any, expected: Any) -> None:
    """The signed model loads through verification and scores the example as expected."""
    import mlflow.pyfunc
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        local, _ = signing.download_verified(
            settings, model_uri, Path(tmp), lineage=None, what="the model just signed"
        )
        model = mlflow.pyfunc.load_model(str(local), model_config=_model_config(settings))
        got = model.predict(example)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))


def _model_config(settings: Settings) -> dict[str, str]:
    """What the pyfunc needs at load time: the public key it trusts."""
    return {signing.PUBLIC_KEY_CONFIG: str(settings.signing_public_key)}


def version_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """The lineage contract as model-version tags (DESIGN §3), and the explorer's page."""
    tags = {
        "git.commit": str(lineage["git_commit"]),
        "git.dirty": str(lineage["git_dirty"]).lower(),
        "governance.version": lineage["package_version"],
        "params.sha256": lineage["params_hash"],
        "environment.lock_sha256": str(lineage["environment"]["lock_sha256"]),
        "validation.success": str(lineage["validation"]["success"]).lower(),
        "fairness.passed": str(lineage["fairness"]["passed"]).lower(),
        "model_card": "model_card/model_card.md",
        "mlflow.run_id": lineage["mlflow_run_id"],
        "run.source": lineage["run"]["source"],
        "run.id": lineage["run"].get("id", ""),
        "governance.explorer": explorer_version_url(lineage["model"], lineage["version"]),
    }
    for d in lineage["datasets"]:
        tags[f"data.{d['name']}.md5"] = d["md5"]
        tags[f"data.{d['name']}.path"] = d["path"]
        tags[f"data.{d['name']}.rows"] = str(d["rows"])
    return tags


def resolve(settings: Settings, model: str, version: str | None = None) -> dict[str, Any]:
    """A model version's lineage, from the registry alone (newest version by default)."""
    from mlflow.exceptions import MlflowException

    with tracking(settings) as client:
        try:
            versions = client.search_model_versions(f"name = '{model}'")
        except MlflowException as exc:
            raise ModelNotFound(model) from exc
        if not versions:
            raise ModelNotFound(model)
        if version is None:
            chosen = max(versions, key=lambda v: int(v.version))
        else:
            matches = [v for v in versions if str(v.version) == str(version)]
            if not matches:
                raise VersionNotFound(model, str(version))
            chosen = matches[0]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = client.download_artifacts(chosen.run_id, "lineage.json", tmp)
                lineage: dict[str, Any] = json.loads(Path(path).read_text())
            except (MlflowException, OSError, json.JSONDecodeError) as exc:
                raise LookupError(
                    ERR_NO_LINEAGE.format(
                        name=model, version=chosen.version, run_id=chosen.run_id, problem=exc
                    )
                ) from exc
        chosen = client.get_model_version(model, chosen.version)
        lineage["aliases"] = sorted(chosen.aliases)
        lineage["tags"] = dict(chosen.tags)
        return lineage


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted names; two settings that would share a name are refused."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        inner = _flatten(value, f"{name}.") if isinstance(value, dict) else {name: value}
        for dotted, leaf in inner.items():
            if dotted in out:
                raise ValueError(ERR_PARAM_TWICE.format(name=dotted))
            out[dotted] = leaf
    return out


def _pip_requirements() -> list[str]:
    from importlib import metadata

    # model-signing (and the pyOpenSSL it imports without declaring it): the pyfunc verifies
    # its own signature when it loads.
    names = (
        "mlflow",
        "scikit-learn",
        "pandas",
        "numpy",
        "PyYAML",
        "Jinja2",
        "model-signing",
        "pyOpenSSL",
        "cryptography",
    )
    return [f"{n}=={metadata.version(n)}" for n in names]


def model_card(settings: Settings, model: str, version: str) -> dict[str, Any]:
    """A registered version's model card document (``model_card/model_card.json``)."""
    from mlflow.exceptions import MlflowException

    info = resolve(settings, model, version)
    with tracking(settings) as client, tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(
                info["mlflow_run_id"], "model_card/model_card.json", tmp
            )
        except (MlflowException, OSError) as exc:
            raise LookupError(
                f"model {model!r} version {version} has no model card: {exc}"
            ) from exc
        card: dict[str, Any] = json.loads(Path(path).read_text())
    return card


# -- loaded versions, for deciding ---------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version, ready to score."""

    name: str
    version: str
    scorecard: Scorecard
    lineage: dict[str, Any]
    lineage_id: str
    mlflow_run_id: str
    recourse_policy: RecoursePolicy | None = None  # None: registered before recourse existed
    contract: Contract | None = None  # None only for versions registered before contracts

    def recourse_memo(self) -> recourse_record.Memo | None:
        """Exact recourse for this version's adverse decisions (None: it has no policy)."""
        if self.recourse_policy is None:
            return None
        return recourse_record.Memo(self.scorecard, self.recourse_policy)


class ModelCache:
    """Loads registered versions once; resolves aliases with a short time-to-live.

    The MLflow :class:`~governance.registry.source.ModelSource` (what the decision service uses).

    The scorecard comes from the registered MLflow pyfunc itself (``models:/NAME/VERSION``), so
    what decides is exactly what was registered, and replay loads the same artifact.
    """

    def __init__(self, settings: Settings, alias_ttl: float = ALIAS_TTL_SECONDS) -> None:
        self.settings = settings
        self.alias_ttl = alias_ttl
        self._versions: dict[tuple[str, str], LoadedModel] = {}
        self._aliases: dict[tuple[str, str], tuple[float, str]] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def resolve(
        self, name: str, *, version: str | None, alias: str | None
    ) -> tuple[str, str | None]:
        """The version to use, and the alias it was reached through (if any).

        An alias answer is reused for ``alias_ttl`` seconds; after that the cached answer is
        still served while a background thread asks the registry again, so the registry's
        latency (or an outage) never sits on the decision path. Only the very first lookup of
        an alias waits for the registry.
        """
        if version is not None and alias is not None:
            raise ValueError(ERR_VERSION_AND_ALIAS)
        if version is not None:
            return str(version), None
        alias = alias or DEFAULT_ALIAS
        key = (name, alias)
        with self._lock:
            hit = self._aliases.get(key)
            if hit is not None:
                if time.monotonic() - hit[0] >= self.alias_ttl and key not in self._refreshing:
                    self._refreshing.add(key)
                    threading.Thread(target=self._refresh, args=(key,), daemon=True).start()
                return hit[1], alias
        return self._lookup(key), alias

    def _lookup(self, key: tuple[str, str]) -> str:
        """Ask the registry which version an alias points at, and cache the answer."""
        name, alias = key
        asked = time.monotonic()
        with tracking(self.settings) as client:
            found = alias_version(client, name, alias)
        with self._lock:
            self._aliases[key] = (asked, found)
        return found

    def _refresh(self, key: tuple[str, str]) -> None:
        try:
            self._lookup(key)
        except (RegistryLookupError, RegistryUnavailable) as exc:
            # Keep serving the last known answer; say so. A removed alias is noticed here too,
            # but decisions keep the version they were told until the registry says otherwise.
            log.warning("alias %s@%s not refreshed, serving the cached version: %s", *key, exc)
            with self._lock:
                if key in self._aliases:
                    self._aliases[key] = (time.monotonic(), self._aliases[key][1])
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def invalidate(self, name: str, alias: str | None = None) -> None:
        """Forget cached alias answers (all of a model's, or one alias) after a promotion."""
        with self._lock:
            for key in [k for k in self._aliases if k[0] == name and alias in (None, k[1])]:
                del self._aliases[key]

    def get(self, name: str, version: str) -> LoadedModel:
        """A version, loaded once (raises the typed errors or :class:`ModelLoadError`)."""
        key = (name, str(version))
        with self._lock:
            if key in self._versions:
                return self._versions[key]
        loaded = load_version(self.settings, name, str(version))
        with self._lock:
            self._versions[key] = loaded
        return loaded

    def load(self, name: str, version: str) -> LoadedModel:
        """A version loaded afresh from the registry, not from this cache (for replay)."""
        return load_version(self.settings, name, str(version))

    def registry_alias(self, name: str, alias: str) -> str:
        """The version ``alias`` names in the registry now, asked without the alias cache."""
        with tracking(self.settings) as client:
            return alias_version(client, name, alias)


def load_version(settings: Settings, name: str, version: str) -> LoadedModel:
    """Load a registered version's pyfunc and lineage.

    The model directory is checked before it is loaded: its files against the OpenSSF signature
    by the trusted key, its provenance statement against the version's lineage.

    Raises :class:`RegistryLookupError` for an unknown model or version, :class:`ModelLoadError`
    when the version exists but cannot be loaded (no lineage, a broken artifact), and
    :class:`~governance.registry.signing.ModelIntegrityError` when its files, signature or
    provenance do not check out.
    """
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        info = resolve(settings, name, version)
    except RegistryLookupError:
        raise
    except LookupError as exc:
        raise ModelLoadError(str(exc)) from exc
    with tracking(settings), tempfile.TemporaryDirectory() as tmp:
        try:
            # What is loaded is exactly what was checked: the signed files, in this directory.
            local, _ = signing.download_verified(
                settings,
                f"models:/{name}/{version}",
                Path(tmp),
                lineage=info,
                what=f"{name} version {version}",
            )
            model = mlflow.pyfunc.load_model(str(local), model_config=_model_config(settings))
        except MlflowException as exc:
            raise ModelLoadError(f"cannot load model {name!r} version {version}: {exc}") from exc
    python_model = model.unwrap_python_model()
    return LoadedModel(
        name=name,
        version=str(version),
        scorecard=python_model.scorecard,
        lineage=info,
        lineage_id=lineage_id(info),
        mlflow_run_id=str(info["mlflow_run_id"]),
        recourse_policy=getattr(python_model, "recourse_policy", None),
        contract=getattr(python_model, "contract", None),
    )
