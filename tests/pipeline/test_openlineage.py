"""Stage runs as OpenLineage events, through openlineage-python's own transports.

The default is the client's file transport under the state directory; ``OPENLINEAGE_URL`` sends
the same events over HTTP to a real (local) endpoint instead; a failing catalogue never fails the
stage. Every event is read back strictly with :func:`governance.core.openlineage.parse_event`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from openlineage.client.transport.file import FileConfig

from governance.core import openlineage as ol
from governance.lifecycle.provenance import read_event_log
from governance.pipeline import openlineage as emit
from governance.pipeline.openlineage import EventLog
from governance.settings import Settings

OL_VARIABLES = (
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE_DISABLED",
    "OPENLINEAGE_ENDPOINT",
    "OPENLINEAGE_API_KEY",
    "OPENLINEAGE_NAMESPACE",
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for var in OL_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    for var in [v for v in os.environ if v.startswith("OPENLINEAGE__")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    yield Settings.resolve(tmp_path, env={})
    # the client turns OPENLINEAGE_URL into OPENLINEAGE__TRANSPORT__... variables of its own
    for var in [v for v in os.environ if v.startswith("OPENLINEAGE__")]:
        del os.environ[var]


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "in.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "c": ["x", "y", "z"]}).to_csv(
        src, index=False
    )
    return src, tmp_path / "out" / "half.csv"


def run_stage(settings: Settings, src: Path, out: Path, **context: str) -> None:
    with emit.stage_run(
        settings,
        root=settings.project_dir,
        params={"split": {"seed": 1}},
        stage="split",
        code_path="governance/stages.py",
        context=context or None,
        inputs=[src],
        outputs=[out],
    ) as events:
        out.parent.mkdir(exist_ok=True)
        pd.read_csv(src).head(2).to_csv(out, index=False)
        events.mlflow_run_id = "run-1"


def test_default_is_one_json_line_per_event_under_the_home(
    settings: Settings, data: tuple[Path, Path]
) -> None:
    src, out = data
    run_stage(settings, src, out, source="dagster", id="dagster-run-7")
    assert settings.openlineage_log == settings.home / "openlineage" / "events.jsonl"
    lines = settings.openlineage_log.read_text().splitlines()
    assert len(lines) == 2
    start, complete = (json.loads(line) for line in lines)
    for e in (start, complete):
        ol.parse_event(e)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    (i,) = complete["inputs"]
    assert i["name"] == str(src.resolve())
    assert i["facets"]["version"]["datasetVersion"] == hashlib.md5(src.read_bytes()).hexdigest()
    assert i["inputFacets"]["inputStatistics"]["rowCount"] == 3
    assert [f["type"] for f in i["facets"]["schema"]["fields"]] == ["integer", "number", "string"]
    (o,) = complete["outputs"]
    assert o["facets"]["version"]["datasetVersion"] == hashlib.md5(out.read_bytes()).hexdigest()
    assert o["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert "version" not in start["outputs"][0].get("facets", {})  # not written yet
    gov = complete["run"]["facets"]["governance"]
    assert (gov["via"], gov["dagsterRunId"], gov["mlflowRunId"]) == (
        "dagster",
        "dagster-run-7",
        "run-1",
    )
    assert complete["run"]["facets"]["processing_engine"]["name"] == "Dagster"
    assert complete["job"]["facets"]["jobType"]["integration"] == "DAGSTER"


def test_an_error_is_a_fail_event_and_still_raises(
    settings: Settings, data: tuple[Path, Path]
) -> None:
    src, out = data
    with (
        pytest.raises(RuntimeError, match="disk on fire"),
        emit.stage_run(
            settings,
            root=settings.project_dir,
            params={},
            stage="train",
            code_path="governance/stages.py",
            context={"source": "dvc"},
            inputs=[src],
            outputs=[out],
        ),
    ):
        raise RuntimeError("disk on fire")
    start, fail = read_event_log(settings.openlineage_log)
    ol.parse_event(fail)
    assert fail["eventType"] == "FAIL"
    assert fail["run"]["facets"]["errorMessage"]["message"] == "RuntimeError: disk on fire"
    assert fail["run"]["facets"]["governance"]["dvcStage"] == "train"
    assert ol.lineage_graph([start, fail]).runs == []  # a failed run is no producer


class Catalogue(BaseHTTPRequestHandler):
    """A lineage endpoint that keeps what it receives (or refuses it, when told to)."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    status = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def catalogue() -> Iterator[str]:
    Catalogue.received = []
    Catalogue.status = 201
    server = ThreadingHTTPServer(("127.0.0.1", 0), Catalogue)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_openlineage_url_sends_the_events_over_http_as_well(
    settings: Settings, data: tuple[Path, Path], catalogue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalogue gets the events, and the log under the home keeps the same ones: PROV and
    evidence packs name the runs the catalogue knows (they once invented ids when the log was
    left out)."""
    monkeypatch.setenv("OPENLINEAGE_URL", catalogue)
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "credit-team")
    src, out = data
    run_stage(settings, src, out, source="dvc")
    assert [p for p, _ in Catalogue.received] == ["/api/v1/lineage", "/api/v1/lineage"]
    events = [e for _, e in Catalogue.received]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for e in events:
        ol.parse_event(e)
        assert e["job"]["namespace"] == "credit-team"
    assert read_event_log(settings.openlineage_log) == events


def test_a_catalogue_that_refuses_is_a_warning_not_a_failed_stage(
    settings: Settings,
    data: tuple[Path, Path],
    catalogue: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", catalogue)
    Catalogue.status = 400
    src, out = data
    with caplog.at_level(logging.WARNING, logger="governance.pipeline.openlineage"):
        run_stage(settings, src, out)
    assert out.is_file()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith("OpenLineage START event of stage split not sent: 400")


def test_disabled_sends_nothing(
    settings: Settings, data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    src, out = data
    run_stage(settings, src, out)
    assert out.is_file()
    assert not settings.openlineage_log.exists()


def test_a_config_file_in_the_working_directory_is_used(
    settings: Settings, data: tuple[Path, Path], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    (tmp_path / "openlineage.yml").write_text(
        f"transport:\n  type: file\n  log_file_path: {elsewhere}\n  append: true\n"
    )
    src, out = data
    run_stage(settings, src, out)
    assert [e["eventType"] for e in read_event_log(elsewhere)] == ["START", "COMPLETE"]
    assert read_event_log(settings.openlineage_log) == read_event_log(elsewhere)


@pytest.mark.parametrize("data", [b"", b"caf\xe9,x\n1,2\n", b'"unterminated\n1,2\n'])
def test_an_unreadable_csv_is_a_dataset_without_a_schema(tmp_path: Path, data: bytes) -> None:
    """The stage that reads the file says what is wrong with it: the lineage must not raise
    first with pandas' bare message ("No columns to parse from file")."""
    from governance.pipeline.openlineage import file_dataset

    path = tmp_path / "applications.csv"
    path.write_bytes(data)
    ref = file_dataset(path)
    assert ref.version == hashlib.md5(data).hexdigest() and ref.columns == ()


def test_credentials_in_the_remote_or_tracking_uri_never_reach_an_event(
    tmp_path: Path, data: tuple[Path, Path], settings: Settings
) -> None:
    """A CI checkout's remote often carries a token (``https://bot:TOKEN@host/...``) and a
    tracking URI a password: the events (sent to catalogues, and the source location that the
    signed SLSA statement repeats) name the places without them."""
    import subprocess
    from dataclasses import replace

    from governance.core.lineage import code_url

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    remote = "https://ci-bot:ghp_SECRETTOKEN123@github.com:443/acme/governance.git"
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert code_url(tmp_path) == "https://github.com:443/acme/governance.git"
    tracking = "postgresql://mlflow:s3cret-pw@db.internal:5432/mlflow"
    src, out = data
    run_stage(replace(settings, mlflow_uri=tracking), src, out)
    text = settings.openlineage_log.read_text()
    for secret in ("ghp_SECRETTOKEN123", "ci-bot", "s3cret-pw"):
        assert secret not in text
    complete = json.loads(text.splitlines()[-1])
    assert complete["job"]["facets"]["sourceCodeLocation"]["url"] == code_url(tmp_path)
    model = emit.model_dataset(replace(settings, mlflow_uri=tracking), "m", "1")
    assert model.namespace == "postgresql://db.internal:5432/mlflow"
    # a URL with no credentials is named exactly as configured
    assert emit.model_dataset(settings, "m", "1").namespace == settings.mlflow_uri


def test_a_torn_last_line_is_set_aside_not_run_into(
    settings: Settings, data: tuple[Path, Path]
) -> None:
    """A writer killed mid-line leaves the log without its last newline. The next stage's
    events used to be appended onto that fragment, making a line no reader can parse: PROV
    and evidence packs then failed for every version. The fragment is now kept in
    ``events.jsonl.torn`` and the log stays one event per line."""
    src, out = data
    run_stage(settings, src, out)
    log = settings.openlineage_log
    fragment = b'{"eventType": "START", "eventTime": "2026-12-08T00:2'
    with log.open("ab") as fh:
        fh.write(fragment)
    assert len(read_event_log(log)) == 2  # the reader leaves a torn last line out
    run_stage(settings, src, out)
    events = read_event_log(log)  # raised "line 3 is not a JSON object" before
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "COMPLETE"]
    assert log.read_bytes().endswith(b"\n") and fragment not in log.read_bytes()
    assert Path(f"{log}{emit.TORN_SUFFIX}").read_bytes() == fragment + b"\n"
    # a log of one torn line only, with no newline at all
    log.write_bytes(b'{"eventType": "ST')
    run_stage(settings, src, out)
    assert [e["eventType"] for e in read_event_log(log)] == ["START", "COMPLETE"]
    assert Path(f"{log}{emit.TORN_SUFFIX}").read_bytes().endswith(b'{"eventType": "ST\n')


def test_stage_processes_writing_at_once_leave_whole_lines(
    settings: Settings, data: tuple[Path, Path]
) -> None:
    """Events larger than a write buffer, from several processes at once, stay whole lines."""
    import multiprocessing

    src, out = data
    wide = pd.DataFrame({f"column_{i:04d}_{'x' * 40}": [i] for i in range(400)})
    wide.to_csv(src, index=False)  # a schema facet of 400 fields: events of ~40 KB
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_stages, args=(settings, src, out, 5)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    events = read_event_log(settings.openlineage_log)
    assert len(events) == 3 * 5 * 2
    assert all(len(e["inputs"][0]["facets"]["schema"]["fields"]) == 400 for e in events)


def _stages(settings: Settings, src: Path, out: Path, n: int) -> None:
    for _ in range(n):
        run_stage(settings, src, out)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://bot:TOKEN@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://TOKEN@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://u:p@[::1]:8080/x", "https://[::1]:8080/x"),
        ("http://u:p@host:99999/x", "http://host:99999/x"),
        ("http://u:p@host:0/x", "http://host:0/x"),
        ("postgresql://mlflow:pw@db:5432/m", "postgresql://db:5432/m"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("https://github.com/a/b.git", "https://github.com/a/b.git"),
        ("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db"),
        ("http://u:p@[::1/x", "http://[::1/x"),
        ("http://u:p@[::1/x//y@z", "http://[::1/x//y@z"),
        ("git+https://ghp_TOK@github.com/o/r", "git+https://github.com/o/r"),
    ],
)
def test_without_credentials_keeps_the_place_as_written(url: str, named: str) -> None:
    from governance.core.lineage import without_credentials

    assert without_credentials(url) == named


def test_the_event_log_is_made_as_open_would_make_it(
    settings: Settings, data: tuple[Path, Path]
) -> None:
    """A group-writable project (umask 002): the log is too, so other users' stages can add
    their events (they were refused and only warned: the log then missed their runs)."""
    src, out = data
    before = os.umask(0o002)
    try:
        run_stage(settings, src, out)
        ordinary = settings.openlineage_log.with_name("ordinary")
        ordinary.write_bytes(b"")
    finally:
        os.umask(before)
    assert settings.openlineage_log.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777


def test_a_log_that_cannot_be_made_is_a_warning_and_the_catalogue_still_gets_events(
    settings: Settings,
    data: tuple[Path, Path],
    catalogue: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    (tmp_path / "a-file").write_text("not a folder\n")
    unwritable = replace(settings, openlineage_log=tmp_path / "a-file" / "events.jsonl")
    monkeypatch.setenv("OPENLINEAGE_URL", catalogue)
    src, out = data
    with caplog.at_level(logging.WARNING, logger="governance.pipeline.openlineage"):
        run_stage(unwritable, src, out)
    assert out.is_file()
    assert [e["eventType"] for _, e in Catalogue.received] == ["START", "COMPLETE"]
    assert any("event log" in r.getMessage() for r in caplog.records)


def test_runs_logged_under_a_raw_tracking_uri_are_still_found(
    settings: Settings, tmp_path: Path
) -> None:
    """Events logged before credentials were left out name the registry by its raw URI (with
    the password); PROV still finds the version's runs by it, and by the clean one after."""
    from dataclasses import replace

    from governance.lifecycle.provenance import recorded_stages

    raw = "postgresql://mlflow:pw@db:5432/m"
    configured = replace(settings, mlflow_uri=raw)
    log = EventLog(FileConfig(str(settings.openlineage_log), append=True))
    settings.openlineage_log.parent.mkdir(parents=True, exist_ok=True)
    model_file = ol.DatasetRef("file", str(tmp_path / "model.joblib"), version="7" * 32)
    for version, namespace in (("1", raw), ("2", "postgresql://db:5432/m")):
        v = ol.DatasetRef(namespace, "credit-risk", version=version, kind="MODEL")
        run = ol.StageRun(
            stage="register",
            run_id=str(uuid.uuid4()),
            via="dvc",
            params_hash="a" * 64,
            git_commit="0" * 40,
            git_dirty=False,
            code_url="file:///p",
            code_path="governance/pipeline/stages.py",
            inputs=(model_file,),
            outputs=(v,),
        )
        log.emit(ol.run_event(run, "COMPLETE", f"2026-12-08T00:0{version}:00Z"))
    for version in ("1", "2"):
        (stage,) = recorded_stages(configured, "credit-risk", version)
        assert stage["stage"] == "register" and stage["inputs"][0]["md5"] == "7" * 32
