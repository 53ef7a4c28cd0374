"""Tests for :mod:`governance.core.openlineage`.

openlineage-python 1.54 ships no JSON Schema files (its classes are generated from them), so
events are checked against those generated classes: :func:`parse_event` must accept every event
the builders make, written by the client's own file transport, and reject each kind of schema
violation. A GX validation of the real HMDA data supplies the data-quality assertions.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.transport.file import FileConfig, FileTransport

from governance.core import dataset as ds
from governance.core import openlineage as ol
from governance.core.validation import validate

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
RAW_MD5 = "9e107d9d372bb6826bd81d3542a419d6"


def _run(stage: str, **changes: Any) -> ol.StageRun:
    base: dict[str, Any] = {
        "stage": stage,
        "run_id": str(uuid.uuid4()),
        "via": "dvc",
        "params_hash": "a" * 64,
        "git_commit": COMMIT,
        "git_dirty": False,
        "code_url": "file:///project",
        "code_path": "governance/pipeline/stages.py",
    }
    return ol.StageRun(**(base | changes))


@pytest.fixture(scope="module")
def gx_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    raw = tmp_path_factory.mktemp("hmda") / "applications.csv"
    ds.ingest(ds.load_spec("hmda"), raw)
    result = validate(ds.read_csv(raw), ROOT / "expectations" / "hmda.json")
    assert result.success
    return dict(result.result)


def test_gx_assertions_one_per_expectation(gx_result: dict[str, Any]) -> None:
    assertions = ol.gx_assertions(gx_result)
    suite = json.loads((ROOT / "expectations" / "hmda.json").read_text())
    assert len(assertions) == len(suite["expectations"])
    assert all(a["success"] is True for a in assertions)
    columns = {a.get("column") for a in assertions}
    assert {"deny", "afam"} <= columns
    assert all(a["assertion"].startswith("expect_") for a in assertions)


def test_events_carry_the_facets_and_parse_back(gx_result: dict[str, Any]) -> None:
    raw = ol.DatasetRef(
        "file",
        "/project/data/raw/applications.csv",
        version=RAW_MD5,
        size=1234,
        rows=2380,
        columns=(("deny", "string"), ("pirat", "number")),
        assertions=ol.gx_assertions(gx_result),
    )
    report = ol.DatasetRef("file", "/project/reports/validation.json", version="b" * 32, size=99)
    run = _run(
        "validate",
        via="dagster",
        dagster_run_id=str(uuid.uuid4()),
        dagster_version="1.13.27",
        mlflow_run_id="abc123",
        inputs=(raw,),
        outputs=(report,),
    )
    for kind in ("START", "COMPLETE", "FAIL"):
        doc = json.loads(json.dumps(ol.event_dict(ol.run_event(run, kind, "2026-01-02T03:04:05Z"))))
        parsed = ol.parse_event(doc)
        assert parsed.eventType is not None and parsed.eventType.value == kind
    doc = ol.event_dict(ol.run_event(run, "COMPLETE", "2026-01-02T03:04:05Z"))
    job = doc["job"]["facets"]
    assert job["sourceCodeLocation"]["version"] == COMMIT
    assert {"key": "git.dirty", "value": "false", "source": "GOVERNANCE"} in job["tags"]["tags"]
    assert job["jobType"]["integration"] == "DAGSTER"
    facets = doc["run"]["facets"]
    assert facets["governance"]["dagsterRunId"] == run.dagster_run_id
    assert facets["governance"]["paramsHash"] == "a" * 64
    assert facets["externalQuery"] == {
        "_producer": ol.PRODUCER,
        "_schemaURL": facets["externalQuery"]["_schemaURL"],
        "externalQueryId": "abc123",
        "source": "mlflow",
    }
    assert facets["processing_engine"]["version"] == "1.13.27"
    (inp,) = doc["inputs"]
    assert inp["facets"]["version"]["datasetVersion"] == RAW_MD5
    assert [f["name"] for f in inp["facets"]["schema"]["fields"]] == ["deny", "pirat"]
    assert inp["inputFacets"]["inputStatistics"]["rowCount"] == 2380
    dq = inp["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert len(dq) == len(ol.gx_assertions(gx_result))
    (out,) = doc["outputs"]
    assert out["facets"]["version"]["datasetVersion"] == "b" * 32
    assert out["outputFacets"]["outputStatistics"]["size"] == 99


def test_start_names_outputs_without_versions_and_fail_says_why() -> None:
    out = ol.DatasetRef("file", "/p/models/scorecard.json", version="c" * 32, size=10)
    run = _run("train", outputs=(out,))
    start = ol.event_dict(ol.run_event(run, "START", "2026-01-02T03:04:05Z"))
    (named,) = start["outputs"]
    assert (named["name"], named["facets"], named["outputFacets"]) == (
        "/p/models/scorecard.json",
        {},
        {},
    )
    fail = ol.event_dict(ol.run_event(run, "FAIL", "2026-01-02T03:04:06Z", error="no data"))
    assert fail["run"]["facets"]["errorMessage"]["message"] == "no data"
    assert fail["run"]["runId"] == start["run"]["runId"]
    assert "governance" in fail["run"]["facets"]
    with pytest.raises(ValueError, match="event type"):
        ol.run_event(run, "DONE", "2026-01-02T03:04:05Z")  # type: ignore[arg-type]


def _event() -> dict[str, Any]:
    raw = ol.DatasetRef("file", "/p/raw.csv", version=RAW_MD5, rows=3, columns=(("a", "integer"),))
    run = _run("split", inputs=(raw,), outputs=(raw,), mlflow_run_id="r1")
    return json.loads(
        json.dumps(ol.event_dict(ol.run_event(run, "COMPLETE", "2026-01-02T03:04:05Z")))
    )


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is KeyError:
            del node[leaf]
        else:
            node[leaf] = value

    return change


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_set("run.runId", "not-a-uuid"), "event.run"),
        (_set("eventTime", "yesterday"), "event"),
        (_set("eventType", "DONE"), "event.eventType"),
        (_set("job.facets.jobType.integration", KeyError), "required field 'integration'"),
        (_set("run.facets.governance.gitDirty", "false"), "expected bool"),
        (_set("inputs.0.facets.version.extra", 1), "field 'extra' is not in"),
        (_set("inputs.0.inputFacets.inputStatistics.rowCount", "3"), "expected int"),
        (_set("inputs.0.facets.version._schemaURL", "https://example.com/x.json"), "facet schema"),
        (_set("inputs.0.facets.schema.fields", {"a": 1}), "expected a list"),
        (_set("job.name", 7), "expected str"),
        (_set("outputs", "none"), "expected a list"),
    ],
)
def test_parse_event_rejects_what_the_schema_forbids(
    change: Callable[[dict[str, Any]], None], says: str
) -> None:
    doc = _event()
    ol.parse_event(copy.deepcopy(doc))  # the unchanged event is fine
    change(doc)
    with pytest.raises(ValueError, match=says):
        ol.parse_event(doc)


def test_file_transport_log_rebuilds_data_to_model_chain(tmp_path: Path) -> None:
    """Events written by the client's own file transport, one JSON line each, and read back."""
    log = tmp_path / "events.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(str(log), append=True)))
    raw = ol.DatasetRef("file", "/p/data/raw.csv", version=RAW_MD5, rows=10)
    old_raw = ol.DatasetRef("file", "/p/data/raw.csv", version="f" * 32, rows=9)
    train = ol.DatasetRef("file", "/p/data/train.csv", version="1" * 32, rows=7)
    old_train = ol.DatasetRef("file", "/p/data/train.csv", version="2" * 32, rows=6)
    model = ol.DatasetRef("sqlite:///m.db", "mortgage-denial", version="3", kind="MODEL")
    runs = [
        _run("ingest", outputs=(old_raw,)),
        _run("split", inputs=(old_raw,), outputs=(old_train,)),
        _run("ingest", outputs=(raw,)),
        _run("split", inputs=(raw,), outputs=(train,)),
        _run("train", inputs=(train,)),
        _run("register", inputs=(train,), outputs=(model,)),
    ]
    for n, run in enumerate(runs):
        client.emit(ol.run_event(run, "START", f"2026-01-02T03:04:{n:02d}Z"))
        client.emit(ol.run_event(run, "COMPLETE", f"2026-01-02T03:04:{n:02d}.5Z"))
    failed = _run("split", inputs=(raw,), outputs=(train,))
    client.emit(ol.run_event(failed, "START", "2026-01-02T03:05:00Z"))
    client.emit(ol.run_event(failed, "FAIL", "2026-01-02T03:05:01Z", error="boom"))
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * len(runs) + 2
    events = [json.loads(line) for line in lines]
    for e in events:
        ol.parse_event(e)
    chain = ol.lineage_graph(events).chain("sqlite:///m.db", "mortgage-denial", "3")
    assert [c["stage"] for c in chain] == ["register", "split", "ingest"]
    assert chain[0]["run_id"] == runs[5].run_id
    assert chain[1]["run_id"] == runs[3].run_id  # the split that wrote this md5, not the old one
    assert chain[-1]["outputs"] == [
        {"namespace": "file", "name": "/p/data/raw.csv", "version": RAW_MD5}
    ]
    assert ol.lineage_graph(events).chain("sqlite:///m.db", "mortgage-denial", "4") == []


def test_runs_after_a_version_was_made_are_not_its_lineage() -> None:
    """Re-running ingest and split on the same data after version 1 was registered writes the
    same md5s again, and a retraining can leave one output (the recourse policy) byte for byte
    the same: none of those later runs made version 1, and its chain never names them."""
    raw = ol.DatasetRef("file", "/p/data/raw.csv", version=RAW_MD5)
    train = ol.DatasetRef("file", "/p/data/train.csv", version="1" * 32)
    model_file = ol.DatasetRef("file", "/p/models/model.joblib", version="7" * 32)
    other_model = ol.DatasetRef("file", "/p/models/model.joblib", version="5" * 32)
    policy = ol.DatasetRef("file", "/p/models/recourse_policy.json", version="9" * 32)
    v1 = ol.DatasetRef("sqlite:///m.db", "mortgage-denial", version="1", kind="MODEL")
    made = [
        _run("ingest", outputs=(raw,)),
        _run("split", inputs=(raw,), outputs=(train,)),
        _run("train", inputs=(train,), outputs=(model_file, policy)),
        _run("register", inputs=(model_file, policy), outputs=(v1,)),
    ]
    later = [
        _run("ingest", outputs=(raw,)),
        _run("split", inputs=(raw,), outputs=(train,)),
        _run("train", inputs=(train,), outputs=(other_model, policy)),  # C changed
    ]
    # times in two offsets and precisions: compared as instants, not as text
    times = ["2026-12-08T00:20:00Z", "2026-12-08T01:21:00+01:00", "2026-12-08T00:22:00.5Z"]
    times += ["2026-12-08T00:23:00Z", "2026-12-08T00:25:00Z", "2026-12-08T00:26:00Z"]
    times += ["2026-12-08T00:27:00.000001+00:00"]
    events = [
        ol.event_dict(ol.run_event(run, "COMPLETE", t))
        for run, t in zip([*made, *later], times, strict=True)
    ]
    chain = ol.lineage_graph(events).chain("sqlite:///m.db", "mortgage-denial", "1")
    assert [c["run_id"] for c in chain] == [
        made[3].run_id,
        made[2].run_id,
        *(r.run_id for r in reversed(made[:2])),
    ]
    assert [c["stage"] for c in chain] == ["register", "train", "split", "ingest"]
    assert {(c["git_commit"], c["params_hash"]) for c in chain} == {(COMMIT, "a" * 64)}


def test_an_input_comes_from_the_run_that_wrote_it_before_its_reader_started() -> None:
    """Stages may run at once: ingest i1 writes X and completes, train starts reading X, a
    re-run of ingest (i2, another commit) writes the same X while train runs, then train
    completes. Train read i1's X: the chain names i1 and its commit, never i2."""
    i1, train = _run("ingest", outputs=(RAW,)), _run("register", inputs=(RAW,), outputs=(V1,))
    i2 = _run("ingest", outputs=(RAW,), git_commit="9" * 40)
    chain = _chain_of_v1(
        (i1, "START", "00:00:00"),
        (i1, "COMPLETE", "00:00:30"),
        (train, "START", "00:01:00"),
        (i2, "START", "00:01:10"),
        (i2, "COMPLETE", "00:02:00"),
        (train, "COMPLETE", "00:03:00"),
    )
    assert [(c["run_id"], c["git_commit"]) for c in chain] == [
        (train.run_id, COMMIT),
        (i1.run_id, COMMIT),
    ]


def test_runs_that_overlapped_still_make_a_chain() -> None:
    """Two runs begun by hand at once: the producer hashed its output and the reader read it,
    but the producer's COMPLETE is stamped after the reader's START. Nothing completed before
    the reader started, so the producer done by the time the reader completed is named."""
    ingest, register = (
        _run("ingest", outputs=(RAW,)),
        _run("register", inputs=(RAW,), outputs=(V1,)),
    )
    chain = _chain_of_v1(
        (ingest, "START", "00:00:00"),
        (register, "START", "00:00:01"),
        (ingest, "COMPLETE", "00:00:02"),
        (register, "COMPLETE", "00:00:03"),
    )
    assert [c["run_id"] for c in chain] == [register.run_id, ingest.run_id]


RAW = ol.DatasetRef("file", "/p/data/raw.csv", version=RAW_MD5)
V1 = ol.DatasetRef("sqlite:///m.db", "mortgage-denial", version="1", kind="MODEL")


def _chain_of_v1(*timeline: tuple[ol.StageRun, Any, str]) -> list[dict[str, Any]]:
    """The chain behind version 1, from these events (times of 2026-12-08, UTC)."""
    events = [
        ol.event_dict(ol.run_event(run, kind, f"2026-12-08T{t}Z")) for run, kind, t in timeline
    ]
    return ol.lineage_graph(events).chain("sqlite:///m.db", "mortgage-denial", "1")


def test_schema_types_follow_pandas_dtypes() -> None:
    frame = pd.DataFrame({"a": [1], "b": [1.5], "c": ["x"], "d": [True]})
    assert ol.schema_of(frame) == (
        ("a", "integer"),
        ("b", "number"),
        ("c", "string"),
        ("d", "boolean"),
    )
