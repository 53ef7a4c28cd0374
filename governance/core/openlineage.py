"""OpenLineage run events of the pipeline's stages, built from what a stage knows.

Pure: no MLflow, no Dagster, no transport. :func:`run_event` turns a :class:`StageRun` (the
stage, its code, its run identities and its input and output datasets) into an
``openlineage-python`` ``RunEvent``; the adapter that runs the stage emits it through the
client's configured transport. :func:`parse_event` reads an emitted event back strictly against
the client's schema-generated classes, and :func:`lineage_graph` rebuilds, from an event log
alone, the chain data md5 → stage → registered model version.

Facets used (all standard, except one documented custom run facet):

* job: ``sourceCodeLocation`` (git URL, commit, the stage's code path), ``jobType``
  (BATCH, integration DVC or DAGSTER), ``tags`` (``git.dirty``, ``via``, ``stage``);
* run: ``processing_engine`` (Dagster's version), ``externalQuery`` (the MLflow run id),
  ``errorMessage`` on FAIL, and ``governance`` (:class:`GovernanceRunFacet`: via, stage, Dagster
  run id or DVC stage, the parameters' hash, commit and dirty flag);
* datasets: ``version`` (the DVC md5, or the registered model version), ``schema`` (columns and
  types), ``datasetType`` (FILE or MODEL), ``inputStatistics`` / ``outputStatistics`` (rows and
  bytes) and ``dataQualityAssertions`` (the Great Expectations result, one assertion per
  expectation).
"""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

import attr
import pandas as pd
from openlineage.client import event_v2, generated
from openlineage.client.facet_v2 import (
    BaseFacet,
    DatasetFacet,
    InputDatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    data_quality_assertions_dataset,
    dataset_type_dataset,
    dataset_version_dataset,
    error_message_run,
    external_query_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    processing_engine_run,
    schema_dataset,
    source_code_location_job,
    tags_job,
)
from openlineage.client.serde import Serde
from pandas.api import types as ptypes

EventType = Literal["START", "COMPLETE", "FAIL"]
Via = Literal["dvc", "dagster", "cli"]

PRODUCER = "urn:governance:pipeline"
GOVERNANCE_FACET_SCHEMA = "urn:governance:openlineage:GovernanceRunFacet:1-0-0"
DEFAULT_NAMESPACE = "governance"
FILE_NAMESPACE = "file"
TAG_SOURCE = "GOVERNANCE"
INTEGRATION = {"dvc": "DVC", "dagster": "DAGSTER", "cli": "GOVERNANCE"}

ERR_EVENT_TYPE = "event type must be one of START, COMPLETE, FAIL, got {value!r}"
ERR_NOT_OBJECT = "{where}: expected a JSON object, got {kind}"
ERR_MISSING = "{where}: required field {name!r} is missing"
ERR_UNKNOWN = "{where}: field {name!r} is not in {cls} (OpenLineage schema)"
ERR_TYPE = "{where}: expected {expected}, got {value!r}"
ERR_FACET_SCHEMA = "{where}: facet schema {url!r} is not one the client knows"
ERR_INVALID = "{where}: {problem}"


@attr.define
class GovernanceRunFacet(RunFacet):
    """The run as the governed pipeline knows it (custom facet, ``governance``).

    Attributes
    ----------
    stage
        The pipeline stage (``ingest`` ... ``register``).
    via
        What ran it: ``dvc`` (``dvc repro``), ``dagster`` or ``cli``.
    paramsHash
        sha256 of ``params.yaml``'s values as canonical JSON (the lineage's ``params_hash``).
    gitCommit, gitDirty
        The commit checked out and whether model-shaping files differ from it.
    dagsterRunId, dvcStage, mlflowRunId
        The run identities other tools know it by (when there is one).
    """

    stage: str
    via: str
    paramsHash: str
    gitCommit: str | None = attr.field(default=None)
    gitDirty: bool = attr.field(default=True)
    dagsterRunId: str | None = attr.field(default=None)
    dvcStage: str | None = attr.field(default=None)
    mlflowRunId: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return GOVERNANCE_FACET_SCHEMA


@dataclass(frozen=True)
class DatasetRef:
    """A dataset a stage reads or writes.

    Attributes
    ----------
    namespace, name
        OpenLineage identity: ``file`` and the absolute path for files; the MLflow tracking URI
        and the registered model name for a model version.
    version
        The DVC md5 of a file, or the registered model version.
    size, rows
        Bytes and rows (when known).
    columns
        ``(name, type)`` of each column, in order (tabular data only).
    assertions
        Data-quality assertions: mappings with ``assertion``, ``success`` and optionally
        ``column`` and ``params`` (see :func:`gx_assertions`).
    kind
        ``FILE`` or ``MODEL`` (the OpenLineage dataset type).
    """

    namespace: str
    name: str
    version: str | None = None
    size: int | None = None
    rows: int | None = None
    columns: tuple[tuple[str, str], ...] = ()
    assertions: tuple[Mapping[str, Any], ...] = ()
    kind: str = "FILE"


@dataclass(frozen=True)
class StageRun:
    """One run of one stage: who ran it, on which code, reading and writing what.

    ``run_id`` is a UUID shared by the run's START and COMPLETE / FAIL events.
    """

    stage: str
    run_id: str
    via: Via
    params_hash: str
    git_commit: str | None
    git_dirty: bool
    code_url: str
    code_path: str
    namespace: str = DEFAULT_NAMESPACE
    job_name: str | None = None
    dagster_run_id: str | None = None
    dagster_version: str | None = None
    mlflow_run_id: str | None = None
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = field(default=())

    @property
    def job(self) -> str:
        """The OpenLineage job name of this stage run."""
        return self.job_name or self.stage


# -- building ------------------------------------------------------------------------------


def gx_assertions(full_result: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """One data-quality assertion per expectation of a Great Expectations validation result.

    Parameters
    ----------
    full_result
        The GX 1.x validation result as JSON (``results`` of ``expectation_config`` and
        ``success``).

    Returns
    -------
    tuple of dict
        ``assertion`` (the expectation type), ``success``, ``column`` (if the expectation is
        about one) and ``params`` (its other arguments).
    """
    out = []
    for r in full_result.get("results") or []:
        config = r.get("expectation_config") or {}
        kwargs = dict(config.get("kwargs") or {})
        kwargs.pop("batch_id", None)
        column = kwargs.pop("column", None)
        item: dict[str, Any] = {"assertion": str(config.get("type")), "success": bool(r["success"])}
        if column is not None:
            item["column"] = str(column)
        if kwargs:
            item["params"] = kwargs
        out.append(item)
    return tuple(out)


def schema_of(frame: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """``(column, type)`` of a table, in JSON Schema's words (integer, number, boolean, string)."""

    def kind(column: pd.Series) -> str:
        if ptypes.is_bool_dtype(column):
            return "boolean"
        if ptypes.is_integer_dtype(column):
            return "integer"
        if ptypes.is_numeric_dtype(column):
            return "number"
        return "string"

    return tuple((str(c), kind(frame[c])) for c in frame.columns)


def _dataset_facets(ref: DatasetRef) -> dict[str, DatasetFacet]:
    facets: dict[str, DatasetFacet] = {
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(
            datasetType=ref.kind, producer=PRODUCER
        )
    }
    if ref.version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=ref.version, producer=PRODUCER
        )
    if ref.columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=n, type=t, ordinal_position=i + 1)
                for i, (n, t) in enumerate(ref.columns)
            ],
            producer=PRODUCER,
        )
    return facets


def _input(ref: DatasetRef) -> event_v2.InputDataset:
    facets: dict[str, InputDatasetFacet] = {}
    if ref.rows is not None or ref.size is not None:
        facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            rowCount=ref.rows, size=ref.size, producer=PRODUCER
        )
    if ref.assertions:
        facets["dataQualityAssertions"] = (
            data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(
                        assertion=a["assertion"],
                        success=a["success"],
                        column=a.get("column"),
                        params=dict(a.get("params") or {}),
                    )
                    for a in ref.assertions
                ],
                producer=PRODUCER,
            )
        )
    return event_v2.InputDataset(
        namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref), inputFacets=facets
    )


def _output(ref: DatasetRef, *, complete: bool) -> event_v2.OutputDataset:
    facets: dict[str, OutputDatasetFacet] = {}
    if complete and (ref.rows is not None or ref.size is not None):
        facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=ref.rows, size=ref.size, producer=PRODUCER
            )
        )
    dataset_facets = _dataset_facets(ref) if complete else {}
    return event_v2.OutputDataset(
        namespace=ref.namespace, name=ref.name, facets=dataset_facets, outputFacets=facets
    )


def _job(run: StageRun) -> event_v2.Job:
    tags = [
        tags_job.TagsJobFacetFields(key="stage", value=run.stage, source=TAG_SOURCE),
        tags_job.TagsJobFacetFields(key="via", value=run.via, source=TAG_SOURCE),
        tags_job.TagsJobFacetFields(
            key="git.dirty", value=str(run.git_dirty).lower(), source=TAG_SOURCE
        ),
    ]
    facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH",
            integration=INTEGRATION[run.via],
            jobType="ASSET" if run.via == "dagster" else "STAGE",
            producer=PRODUCER,
        ),
        "tags": tags_job.TagsJobFacet(tags=tags, producer=PRODUCER),
        "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
            type="git",
            url=run.code_url,
            repoUrl=run.code_url,
            path=run.code_path,
            version=run.git_commit,
            producer=PRODUCER,
        ),
    }
    return event_v2.Job(namespace=run.namespace, name=run.job, facets=facets)


def _run(run: StageRun, error: str | None) -> event_v2.Run:
    facets: dict[str, RunFacet] = {
        "governance": GovernanceRunFacet(
            stage=run.stage,
            via=run.via,
            paramsHash=run.params_hash,
            gitCommit=run.git_commit,
            gitDirty=run.git_dirty,
            dagsterRunId=run.dagster_run_id,
            dvcStage=run.stage if run.via == "dvc" else None,
            mlflowRunId=run.mlflow_run_id,
            producer=PRODUCER,
        )
    }
    if run.via == "dagster" and run.dagster_version:
        facets["processing_engine"] = processing_engine_run.ProcessingEngineRunFacet(
            version=run.dagster_version, name="Dagster", producer=PRODUCER
        )
    if run.mlflow_run_id:
        facets["externalQuery"] = external_query_run.ExternalQueryRunFacet(
            externalQueryId=run.mlflow_run_id, source="mlflow", producer=PRODUCER
        )
    if error is not None:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python", producer=PRODUCER
        )
    return event_v2.Run(runId=run.run_id, facets=facets)


def run_event(
    run: StageRun, event_type: EventType, event_time: str, *, error: str | None = None
) -> event_v2.RunEvent:
    """The OpenLineage ``RunEvent`` of a stage run's START, COMPLETE or FAIL.

    Parameters
    ----------
    run
        The stage run.
    event_type
        ``START`` (inputs with their versions; outputs named only), ``COMPLETE`` (outputs with
        versions, schemas and statistics) or ``FAIL`` (with ``error``).
    event_time
        ISO 8601 UTC time of the transition.
    error
        Why the run failed (FAIL only).

    Returns
    -------
    openlineage.client.event_v2.RunEvent
    """
    if event_type not in ("START", "COMPLETE", "FAIL"):
        raise ValueError(ERR_EVENT_TYPE.format(value=event_type))
    complete = event_type == "COMPLETE"
    return event_v2.RunEvent(
        eventType=event_v2.RunState[event_type],
        eventTime=event_time,
        run=_run(run, error if event_type == "FAIL" else None),
        job=_job(run),
        inputs=[_input(r) for r in run.inputs],
        outputs=[_output(r, complete=complete) for r in run.outputs],
        producer=PRODUCER,
    )


def event_dict(event: event_v2.RunEvent) -> dict[str, Any]:
    """The event as the JSON object transports send (``Serde``: nulls dropped, enums as text)."""
    return Serde.to_dict(event)


# -- reading back, strictly ----------------------------------------------------------------


def _facet_classes() -> dict[str, type]:
    """Every facet class the client was generated with, by its schema URL."""
    found: dict[str, type] = {GOVERNANCE_FACET_SCHEMA: GovernanceRunFacet}
    for info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseFacet) and attr.has(obj):
                found[obj._get_schema()] = obj  # type: ignore[attr-defined]
    return found


_FACETS: dict[str, type] = {}
_FACET_BASES = (RunFacet, JobFacet, DatasetFacet, InputDatasetFacet, OutputDatasetFacet)


def _decode(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _decode(value, option, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0])
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(ERR_TYPE.format(where=where, expected="a list", value=value))
        (item,) = typing.get_args(hint)
        return [_decode(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(ERR_TYPE.format(where=where, expected="an object", value=value))
        _, item = typing.get_args(hint)
        return {k: _decode(v, item, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(
                ERR_TYPE.format(where=where, expected=[e.value for e in hint], value=value)
            ) from None
    if isinstance(hint, type) and attr.has(hint):
        return _decode_object(value, hint, where)
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ValueError(ERR_TYPE.format(where=where, expected=hint.__name__, value=value))
        return value
    if hint is int or hint is float:
        ok = isinstance(value, int | float) if hint is float else isinstance(value, int)
        if not ok or isinstance(value, bool):
            raise ValueError(ERR_TYPE.format(where=where, expected=hint.__name__, value=value))
        return value
    raise ValueError(ERR_TYPE.format(where=where, expected=hint, value=value))


def _decode_object(value: Any, cls: type, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(ERR_NOT_OBJECT.format(where=where, kind=type(value).__name__))
    if issubclass(cls, _FACET_BASES) and cls in _FACET_BASES:
        url = value.get("_schemaURL")
        if not _FACETS:
            _FACETS.update(_facet_classes())
        if url not in _FACETS or not issubclass(_FACETS[url], cls):
            raise ValueError(ERR_FACET_SCHEMA.format(where=where, url=url))
        cls = _FACETS[url]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attr.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ValueError(ERR_UNKNOWN.format(where=where, name=unknown[0], cls=cls.__name__))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if not f.init:
            continue  # schemaURL / _schemaURL: fixed by the class, compared below
        if name not in value:
            if f.default is attr.NOTHING:
                raise ValueError(ERR_MISSING.format(where=where, name=name))
            continue
        kwargs[f.alias or name] = _decode(value[name], hints[name], f"{where}.{name}")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(ERR_INVALID.format(where=where, problem=exc)) from None
    schema = value.get("_schemaURL", value.get("schemaURL"))
    if schema is not None and schema != cls._get_schema():  # type: ignore[attr-defined]
        raise ValueError(ERR_FACET_SCHEMA.format(where=where, url=schema))
    return obj


def parse_event(doc: Mapping[str, Any]) -> event_v2.RunEvent:
    """Read an emitted run event back against the client's schema-generated classes.

    Every object must be the class its place (or, for a facet, its ``_schemaURL``) calls for:
    required fields present, no unknown fields, values of the declared types, the classes' own
    validators passing (UUID run ids, ISO 8601 times, URIs), and nothing lost on the way back
    to JSON.

    Parameters
    ----------
    doc
        One event as JSON.

    Returns
    -------
    openlineage.client.event_v2.RunEvent

    Raises
    ------
    ValueError
        Naming the first place where the event does not fit.
    """
    event = _decode_object(dict(doc), event_v2.RunEvent, "event")
    again = event_dict(event)
    if again != dict(doc):
        raise ValueError(ERR_INVALID.format(where="event", problem="does not survive a round trip"))
    return typing.cast(event_v2.RunEvent, event)


# -- consuming an event log ----------------------------------------------------------------


@dataclass(frozen=True)
class StageNode:
    """A completed stage run as the event log tells it."""

    run_id: str
    job: str
    stage: str
    via: str
    event_time: str
    inputs: tuple[tuple[str, str, str | None], ...]
    outputs: tuple[tuple[str, str, str | None], ...]
    git_commit: str | None = None
    git_dirty: bool | None = None
    params_hash: str | None = None
    started: str | None = None


@dataclass
class LineageGraph:
    """Datasets (by namespace, name and version) and the completed stage runs between them."""

    runs: list[StageNode] = field(default_factory=list)

    def producers(
        self, namespace: str, name: str, version: str | None, *, until: str | None = None
    ) -> list[StageNode]:
        """Completed runs that wrote this dataset version (newest first); with ``until`` (an
        event time), only those completed by then."""
        key = (namespace, name, version)
        bound = None if until is None else _instant(until)
        found = [
            r
            for r in self.runs
            if key in r.outputs and (bound is None or _instant(r.event_time) <= bound)
        ]
        return sorted(found, key=lambda r: _instant(r.event_time), reverse=True)

    def chain(self, namespace: str, name: str, version: str) -> list[dict[str, Any]]:
        """Walk back from a dataset version (e.g. a registered model version) to the data.

        Returns
        -------
        list of dict
            One entry per stage run on the way, nearest first: ``stage``, ``run_id``, ``via``,
            the run's own ``git_commit``, ``git_dirty`` and ``params_hash`` (None when its
            events do not say), ``started`` and ``ended`` (its START, if logged, and COMPLETE
            event times), ``inputs`` and ``outputs`` as
            ``{"namespace", "name", "version"}``. Each input is
            followed to the newest completed run that wrote that exact version by the time the
            run that read it started (its START event; failing that, its COMPLETE, for runs
            that overlapped):
            a later run that wrote the same bytes again (a re-run of ingest, a retraining that
            left one output unchanged) did not make this version.
        """
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        todo: list[tuple[tuple[str, str, str | None], StageNode | None]] = [
            ((namespace, name, version), None)
        ]
        while todo:
            key, reader = todo.pop(0)
            if reader is None:
                found = self.producers(*key)
            else:  # done before the reader started; else (runs begun by hand at once) ended
                found = self.producers(
                    *key, until=reader.started or reader.event_time
                ) or self.producers(*key, until=reader.event_time)
            for node in found[:1]:
                if node.run_id in seen:
                    continue
                seen.add(node.run_id)
                out.append(
                    {
                        "stage": node.stage,
                        "run_id": node.run_id,
                        "via": node.via,
                        "git_commit": node.git_commit,
                        "git_dirty": node.git_dirty,
                        "params_hash": node.params_hash,
                        "started": node.started,
                        "ended": node.event_time,
                        "inputs": [_ds(i) for i in node.inputs],
                        "outputs": [_ds(o) for o in node.outputs],
                    }
                )
                todo.extend((i, node) for i in node.inputs)
        return out


def _instant(event_time: str) -> datetime:
    """An event time as an aware instant (times in other offsets or precisions compare)."""
    instant = datetime.fromisoformat(event_time)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _ds(key: tuple[str, str, str | None]) -> dict[str, Any]:
    return {"namespace": key[0], "name": key[1], "version": key[2]}


def _versioned(datasets: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, str, str | None], ...]:
    out = []
    for d in datasets:
        version = ((d.get("facets") or {}).get("version") or {}).get("datasetVersion")
        out.append((str(d["namespace"]), str(d["name"]), version))
    return tuple(out)


def lineage_graph(events: Sequence[Mapping[str, Any]]) -> LineageGraph:
    """The lineage graph of an event log: every COMPLETE run with its versioned datasets.

    A run's inputs carry their versions on START and COMPLETE alike; outputs carry theirs on
    COMPLETE. Runs without a COMPLETE event (failed, or still running) are left out.
    """
    graph = LineageGraph()
    started = {
        str(e["run"]["runId"]): str(e["eventTime"]) for e in events if e.get("eventType") == "START"
    }
    for e in events:
        if e.get("eventType") != "COMPLETE":
            continue
        gov = (e.get("run", {}).get("facets") or {}).get("governance") or {}
        graph.runs.append(
            StageNode(
                run_id=str(e["run"]["runId"]),
                job=str(e["job"]["name"]),
                stage=str(gov.get("stage", e["job"]["name"])),
                via=str(gov.get("via", "")),
                event_time=str(e["eventTime"]),
                inputs=_versioned(e.get("inputs") or []),
                outputs=_versioned(e.get("outputs") or []),
                git_commit=gov.get("gitCommit"),
                git_dirty=gov.get("gitDirty"),
                params_hash=gov.get("paramsHash"),
                started=started.get(str(e["run"]["runId"])),
            )
        )
    return graph
