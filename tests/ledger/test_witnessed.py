"""Proof that holds against the operator: an insider with the database and the operator's keys.

Each scenario of issue 9 on SQLite and on PostgreSQL, with witnesses running as separate
processes (``governance witness serve``) and the verdict taken from the real command line
(``governance audit verify --json``), as an auditor would run it with the witness list, log key
and tiles they kept:

(a) rewrite one decision (deny -> approve), recompute the chain, the tree and re-sign the local
    checkpoints; (b) truncate and re-sign; (c) rewrite and delete every local checkpoint;
(d) edit index columns; (e) a fork: two histories shown to two verifiers.

And what the operator's monitoring shows (``/metrics``, the integrity page, ``verify --json``):
the age of the newest witnessed checkpoint and which witnesses answered, read without writing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import free_port

from governance.decisions.service import DecisionService
from governance.ledger import Entry, Ledger
from governance.ledger.canonical import canonical_json
from governance.ledger.checkpoint import verifier_key
from governance.ledger.note import parse_checkpoint, parse_note
from governance.ledger.records import encode_record, record_hash
from governance.service import KeyStore, create_app
from governance.settings import Settings
from governance.transparency import Publication, WitnessConfig, publish
from governance.witness import WitnessClient, WitnessHome

Backend = Any  # tests/ledger/conftest.py:Backend
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
GOVERNANCE = str(Path(sys.executable).with_name("governance"))
DECISIONS = 24
VICTIM = 7  # a denial the insider turns into an approval


class WitnessProcess:
    """``governance witness serve`` in its own process, restartable on the same port."""

    def __init__(self, root: Path, name: str) -> None:
        self.home = WitnessHome.init(root / name, f"witness.example/{name}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        home, port = str(self.home.path), str(self.port)
        self.proc = subprocess.Popen(
            [GOVERNANCE, "witness", "serve", "--quiet", "--home", home, "--port", port],
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode()
        assert re.search(r"listening on http://127\.0\.0\.1:\d+", line), line

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def latest_size(self, origin: str) -> int | None:
        note = WitnessClient(self.url, self.home.vkey).latest(origin)
        return None if note is None else parse_checkpoint(parse_note(note).text).size


@pytest.fixture
def witnesses(tmp_path: Path) -> Iterator[list[WitnessProcess]]:
    made = [WitnessProcess(tmp_path / "witnesses", f"w{i}") for i in (1, 2)]
    yield made
    for w in made:
        w.kill()


def rewrite(backend: Backend, seq: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit record ``seq``'s body and recompute every later record and hash, as an insider."""
    table = backend.table("records")
    rows = backend.sql(f"SELECT seq, data FROM {table} WHERE seq >= ? ORDER BY seq", (seq,))
    before = backend.sql(f"SELECT hash FROM {table} WHERE seq = ?", (seq - 1,))
    prev = bytes(before[0][0]) if before else bytes(32)
    steps: list[tuple[str, list[Any]]] = []
    for n, data in rows:
        doc = json.loads(bytes(data))
        if n == seq:
            change(doc["body"])
        body, idx = canonical_json(doc["body"]), canonical_json(doc["idx"])
        record = encode_record(n, doc["id"], doc["type"], doc["ts"], prev.hex(), body, idx)
        prev = record_hash(record)
        steps.append((f"UPDATE {table} SET data = ?, hash = ? WHERE seq = ?", [record, prev, n]))
    backend.sql_many(steps, bypass=True)


def auditors_copies(auditor: Path, first: Publication, home: Path, tiles: Path) -> Path:
    """The auditor's own copies, in the new folder ``auditor``: the witness list, the log key,
    and a publication (the cosigned checkpoint note and the tiles written with it)."""
    auditor.mkdir()
    assert first.note_path is not None
    shutil.copy(first.note_path, auditor / "first.note")
    shutil.copy(home / "witnesses.json", auditor / "witnesses.json")
    shutil.copy(home / "keys" / "checkpoint.pub", auditor / "log.pub")
    shutil.copytree(tiles, auditor / "tiles")
    return auditor


class Scene:
    """A ledger whose checkpoints two witnesses cosigned, and what an auditor kept of it."""

    def __init__(self, backend: Backend, witnesses: list[WitnessProcess], root: Path) -> None:
        self.backend = backend
        self.ledger: Ledger = backend.open()
        self.origin = self.ledger.origin
        vkey = verifier_key(self.origin, self.ledger.public_key)
        self.config = WitnessConfig()
        for w in witnesses:
            w.home.add_log(vkey)
            w.start()
            self.config.add(w.url, w.home.vkey)
        self.config.quorum = 2
        self.config.save(backend.home / "witnesses.json")
        self.tiles = backend.home / "tiles" / self.ledger.ledger_id
        self.ledger.append_many(
            [
                Entry(
                    "decision",
                    {
                        "model": {"name": "hmda", "version": "1"},
                        "outcome": "deny" if i % 3 == 1 else "approve",
                        "n": i,
                    },
                    subject_id=f"applicant-{i}",
                )
                for i in range(DECISIONS)
            ]
        )
        first = publish(self.ledger, self.config, tiles_dir=self.tiles)
        assert first.published, first.errors
        self.auditor = auditors_copies(root / "auditor", first, backend.home, self.tiles)
        self.ledger.append("decision", {"model": {"name": "hmda", "version": "1"}, "n": 99})
        assert publish(self.ledger, self.config, tiles_dir=self.tiles).published

    def verify(self, *extra: str, kept: bool = True) -> tuple[int, dict[str, Any]]:
        """``governance audit verify --json`` as the auditor runs it (with the note it kept)."""
        env = {
            **os.environ,
            "GOVERNANCE_HOME": str(self.backend.home),
            "GOVERNANCE_LEDGER_URL": self.backend.url,
        }
        done = subprocess.run(
            [GOVERNANCE, "audit", "verify", "--json"]
            + ["--witnesses", str(self.auditor / "witnesses.json")]
            + ["--public-key", str(self.auditor / "log.pub")]
            + ["--tiles", str(self.auditor / "tiles")]
            + (["--checkpoint-note", str(self.auditor / "first.note")] if kept else [])
            + list(extra),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    def rewrite(self, seq: int, change: Callable[[dict[str, Any]], None]) -> None:
        """Edit record ``seq`` and recompute every later hash (triggers off, as an insider)."""
        rewrite(self.backend, seq, change)

    def forget_local_checkpoints(self) -> None:
        """Delete every checkpoint the operator holds: the table, exports, notes and tiles.

        (Published tiles refuse to be overwritten by another tree, so they go too.)
        """
        self.backend.sql(f"DELETE FROM {self.backend.table('checkpoints')}", bypass=True)
        shutil.rmtree(self.ledger.checkpoint_dir.path)
        shutil.rmtree(self.tiles)

    def resign(self) -> bool:
        """Sign the doctored ledger with the operator's key and try to publish it."""
        fresh = self.backend.open()
        return publish(fresh, self.config, tiles_dir=self.tiles).published


def _deny_to_approve(body: dict[str, Any]) -> None:
    assert body["outcome"] == "deny"
    body["outcome"] = "approve"


@pytest.fixture(params=KINDS)
def scene(
    request: pytest.FixtureRequest,
    make_backend: Callable[[str], Backend],
    witnesses: list[WitnessProcess],
    tmp_path: Path,
) -> Scene:
    return Scene(make_backend(request.param), witnesses, tmp_path)


def test_honest_ledger_verifies_against_the_witnesses(scene: Scene) -> None:
    code, doc = scene.verify()
    assert code == 0, doc
    assert doc["ok"] and doc["first_bad"] is None and doc["records"] == DECISIONS + 1
    assert doc["witnessed_size"] == DECISIONS + 1
    assert doc["cosignatures"] == ["witness.example/w1", "witness.example/w2"]
    assert doc["witnesses"] == {"witness.example/w1": "answered", "witness.example/w2": "answered"}
    assert doc["answered"] == ["witness.example/w1", "witness.example/w2"]
    assert 0 <= doc["witnessed_age_seconds"] < 600


def test_a_rewrite_re_signed_by_the_operator_is_refused_and_named(scene: Scene) -> None:
    """(a) deny -> approve, chain and tree recomputed, local checkpoints re-signed."""
    scene.rewrite(VICTIM, _deny_to_approve)
    scene.forget_local_checkpoints()
    assert not scene.resign()  # the witnesses refuse the forked tree head
    assert scene.ledger.verify().ok  # the operator's own key-holding check is fooled...
    code, doc = scene.verify()
    assert code == 1, doc  # ...the witnesses' cosignatures are not
    assert doc["first_bad"] == VICTIM, doc


def test_truncation_re_signed_is_detected(scene: Scene) -> None:
    """(b) the newest records removed and the shorter ledger re-signed."""
    table = scene.backend.table("records")
    scene.backend.sql(f"DELETE FROM {table} WHERE seq >= ?", (12,), bypass=True)
    scene.forget_local_checkpoints()
    assert not scene.resign()  # a rollback: refused
    code, doc = scene.verify()
    assert code == 1 and doc["first_bad"] == 12, doc
    assert "TRUNCATION" in doc["reason"]


def test_a_rewrite_with_every_local_checkpoint_deleted_is_detected(scene: Scene) -> None:
    """(c) no checkpoint left with the operator: the witnesses still hold the tree head."""
    scene.rewrite(VICTIM, _deny_to_approve)
    scene.forget_local_checkpoints()
    code, doc = scene.verify()
    assert code == 1 and doc["first_bad"] == VICTIM, doc
    code, doc = scene.verify("--offline")  # the note the auditor kept is enough...
    assert code == 1 and doc["first_bad"] == VICTIM, doc
    code, doc = scene.verify("--offline", kept=False)  # ...without it nothing is witnessed
    assert code == 2 and "no checkpoint cosigned by 2" in doc["reason"], doc


def test_index_columns_edited_to_hide_a_subject_are_detected(scene: Scene) -> None:
    """(d) a subject's decision moved away from them in the index."""
    other = scene.ledger.subject_key("someone-else")
    scene.backend.sql(
        f"UPDATE {scene.backend.table('records')} SET subject_key = ? WHERE seq = ?",
        (other, VICTIM),
        bypass=True,
    )
    assert scene.ledger.find(subject_id=f"applicant-{VICTIM}") == []
    code, doc = scene.verify()
    assert code == 1 and doc["first_bad"] == VICTIM, doc


def test_a_fork_is_refused_by_the_witness_which_keeps_both_notes(
    scene: Scene, witnesses: list[WitnessProcess], make_backend: Callable[[str], Backend]
) -> None:
    """(e) the insider copies the ledger, rewrites the copy and shows it to a second verifier."""
    honest_size = scene.ledger.size()
    scene.rewrite(VICTIM, _deny_to_approve)  # this store is now "the copy shown to B"
    scene.forget_local_checkpoints()
    assert not scene.resign()
    for w in witnesses:
        kept = WitnessHome(w.home.path).evidence()
        assert kept and kept[0].reason.startswith("fork"), kept
        assert parse_checkpoint(parse_note(kept[0].previous or "").text).size == honest_size
        submitted = parse_checkpoint(parse_note(kept[0].submitted).text)
        previous = parse_checkpoint(parse_note(kept[0].previous or "").text)
        assert submitted.size == previous.size and submitted.root != previous.root
        assert w.latest_size(scene.origin) == honest_size  # it still serves the honest head
    code, doc = scene.verify()
    assert code == 1 and doc["first_bad"] == VICTIM, doc


def test_without_witnesses_the_same_rewrite_goes_unnoticed(
    make_backend: Callable[[str], Backend],
) -> None:
    """Why witnesses: the operator's own checkpoints do not protect against the operator."""
    backend = make_backend("sqlite")
    ledger = backend.open()
    ledger.append_many([Entry("decision", {"outcome": "deny", "n": i}) for i in range(5)])
    ledger.checkpoint()
    rewrite(backend, 2, _deny_to_approve)
    backend.sql(f"DELETE FROM {backend.table('checkpoints')}", bypass=True)
    shutil.rmtree(ledger.checkpoint_dir.path)
    backend.open().checkpoint()
    assert ledger.verify().ok  # undetectable without someone else holding a tree head


def test_a_killed_witness_blocks_no_decision_and_publishes_once_back(
    scene: Scene, witnesses: list[WitnessProcess]
) -> None:
    """SIGKILL one witness: decisions go on; the checkpoint is published once it returns."""
    w2 = witnesses[1]
    w2.kill()
    receipts = scene.ledger.append_many(
        [Entry("decision", {"outcome": "approve", "n": 100 + i}) for i in range(10)]
    )
    assert len(receipts) == 10
    below = publish(scene.ledger, scene.config, tiles_dir=scene.tiles, timeout=5)
    assert not below.published and below.cosignatures == ["witness.example/w1"]
    assert "witness.example/w2" in below.errors
    w2.start()
    again = publish(scene.ledger, scene.config, tiles_dir=scene.tiles)
    assert again.published, again.errors
    code, doc = scene.verify()
    assert code == 0 and doc["witnessed_size"] == scene.ledger.size(), doc


@pytest.mark.slow
def test_sigkill_mid_cosign_leaves_the_witness_consistent(
    scene: Scene, witnesses: list[WitnessProcess]
) -> None:
    """Kill a witness while checkpoints are being published: what it cosigned survives."""
    w1 = witnesses[0]
    stop = threading.Event()
    cosigned: list[int] = []

    def keep_publishing() -> None:
        n = 0
        while not stop.is_set():
            scene.ledger.append("decision", {"outcome": "approve", "n": 1000 + n})
            n += 1
            result = publish(scene.ledger, scene.config, tiles_dir=scene.tiles, timeout=5)
            if "witness.example/w1" in result.cosignatures:
                cosigned.append(result.checkpoint.size)

    for _ in range(3):
        worker = threading.Thread(target=keep_publishing)
        worker.start()
        threading.Event().wait(0.3)
        w1.kill()
        stop.set()
        worker.join()
        stop.clear()
        w1.start()
        latest = w1.latest_size(scene.origin)
        assert latest is not None and latest >= max(cosigned, default=0)
    assert publish(scene.ledger, scene.config, tiles_dir=scene.tiles).published
    code, doc = scene.verify()
    assert code == 0, doc


# -- what the operator's monitoring shows -----------------------------------------------------

W1, W2 = "witness.example/w1", "witness.example/w2"


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


class Monitoring:
    """The HTTP service over the scene's ledger, with an auditor signed in to the explorer."""

    def __init__(self, scene: Scene) -> None:
        home = scene.backend.home
        env = {"GOVERNANCE_HOME": str(home), "GOVERNANCE_LEDGER_URL": scene.backend.url}
        settings = Settings.resolve(scene.backend.root, env=env)
        keys = KeyStore.for_home(home)
        token = keys.create("monitoring-auditor", "auditor")
        self.client = TestClient(create_app(DecisionService(settings, scene.ledger), keys))
        signed_in = self.client.post(
            "/ui/login", data={"key": token, "next": "/ui/decisions"}, follow_redirects=False
        )
        assert signed_in.status_code == 303, signed_in.text

    def metrics(self) -> dict[str, float]:
        response = self.client.get("/metrics")
        assert response.status_code == 200
        return _samples(response.text)

    def integrity(self) -> str:
        response = self.client.get("/ui/integrity")
        assert response.status_code == 200
        return _words(response.text)


def _state(scene: Scene) -> tuple[int, int, list[tuple[str, int]]]:
    """What a read must not change: records, stored checkpoints and the checkpoint folder."""
    folder = scene.ledger.checkpoint_dir.path
    files = sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())
    return scene.ledger.size(), len(scene.ledger.checkpoints()), files


def test_monitoring_shows_the_witnessed_checkpoint_and_who_answered(
    scene: Scene, witnesses: list[WitnessProcess]
) -> None:
    seen = Monitoring(scene)
    size = DECISIONS + 1
    m = seen.metrics()
    assert m["governance_witnessing_up"] == 1 and m["governance_witness_quorum"] == 2
    assert m["governance_witnessed_checkpoint_records"] == size
    assert 0 <= m["governance_witnessed_checkpoint_age_seconds"] < 600
    for name in (W1, W2):
        assert m[f'governance_witness_cosigned{{witness="{name}"}}'] == 1
        assert m[f'governance_witness_cosigned_records{{witness="{name}"}}'] == size
    page = seen.integrity()
    assert f"the first {size} records" in page and f"cosigned by {W1}, {W2}" in page
    assert f"2 of 2 cosigned the newest checkpoint ({size} records)" in page

    witnesses[1].kill()  # w2 is down: decisions go on, the checkpoint is not published
    scene.ledger.append_many([Entry("decision", {"outcome": "approve", "n": i}) for i in range(5)])
    assert not publish(scene.ledger, scene.config, tiles_dir=scene.tiles, timeout=5).published
    before = _state(scene)
    m = seen.metrics()
    page = seen.integrity()
    assert _state(scene) == before  # reading wrote nothing
    assert m["governance_checkpoint_records"] == size + 5
    assert m["governance_witnessed_checkpoint_records"] == size  # the last one a quorum signed
    assert m[f'governance_witness_cosigned{{witness="{W1}"}}'] == 1
    assert m[f'governance_witness_cosigned{{witness="{W2}"}}'] == 0
    assert m[f'governance_witness_cosigned_records{{witness="{W1}"}}'] == size + 5
    assert m[f'governance_witness_cosigned_records{{witness="{W2}"}}'] == size
    assert f"the first {size} records" in page
    assert f"1 of 2 cosigned the newest checkpoint ({size + 5} records)" in page
    assert f"{W1} http://127.0.0.1:{witnesses[0].port} answered {size + 5}" in page
    assert f"{W2} http://127.0.0.1:{witnesses[1].port} no cosignature {size}" in page
    code, doc = scene.verify()
    assert code == 0 and doc["witnessed_size"] == size, doc
    assert doc["answered"] == [W1] and doc["witnesses"][W2] != "answered", doc
    assert 0 <= doc["witnessed_age_seconds"] < 600

    witnesses[1].start()
    assert publish(scene.ledger, scene.config, tiles_dir=scene.tiles).published
    m = seen.metrics()
    assert m["governance_witnessed_checkpoint_records"] == size + 5
    assert m[f'governance_witness_cosigned{{witness="{W2}"}}'] == 1
    code, doc = scene.verify()
    assert code == 0 and doc["answered"] == [W1, W2] and doc["witnessed_size"] == size + 5, doc

    (scene.backend.home / "witnesses.json").write_text("{not json")
    m = seen.metrics()
    assert m["governance_ledger_up"] == 1 and m["governance_witnessing_up"] == 0
    assert "Could not read the witness configuration" in seen.integrity()


def test_the_periodic_checkpointer_publishes_new_records_and_stops_on_sigterm(
    scene: Scene,
) -> None:
    """``governance audit checkpoint --every``: its own process; decisions never wait for it."""
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(scene.backend.home),
        "GOVERNANCE_LEDGER_URL": scene.backend.url,
    }
    proc = subprocess.Popen(
        [GOVERNANCE, "audit", "checkpoint", "--every", "0.2", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        scene.ledger.append_many([Entry("decision", {"outcome": "deny", "n": i}) for i in range(3)])
        size = scene.ledger.size()
        rounds = []
        while not rounds or rounds[-1]["size"] < size:
            line = proc.stdout.readline()
            assert line, f"the checkpointer exited with {proc.wait(5)}"
            rounds.append(json.loads(line))
        assert rounds[-1]["size"] == size and rounds[-1]["published"], rounds[-1]
        assert rounds[-1]["cosignatures"] == [W1, W2]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    code, doc = scene.verify()
    assert code == 0 and doc["witnessed_size"] == size, doc


def test_serve_runs_the_checkpointer_and_metrics_show_its_witnessed_checkpoints(
    scene: Scene, tmp_path: Path
) -> None:
    """``governance serve --checkpoint-every``: /metrics over HTTP follows what gets witnessed.

    Started from a directory holding a planted ``governance`` package: the checkpointer, which
    holds the signing key, runs this package's code, never the planted one.
    """
    import urllib.request

    marker = tmp_path / "planted-code-ran"
    planted = tmp_path / "cwd" / "governance"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    port = free_port()
    env = {
        **os.environ,
        "GOVERNANCE_PROJECT": str(scene.backend.root),
        "GOVERNANCE_HOME": str(scene.backend.home),
        "GOVERNANCE_LEDGER_URL": scene.backend.url,
    }
    proc = subprocess.Popen(
        [GOVERNANCE, "serve", "--port", str(port), "--checkpoint-every", "0.2"],
        env=env,
        stderr=subprocess.DEVNULL,
        cwd=planted.parent,
    )

    def witnessed() -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return _samples(r.read().decode()).get("governance_witnessed_checkpoint_records")
        except OSError:
            return None

    try:
        scene.ledger.append_many([Entry("decision", {"outcome": "deny", "n": i}) for i in range(4)])
        size = scene.ledger.size()
        deadline = time.monotonic() + 90
        while witnessed() != size:
            assert not marker.exists(), "the checkpointer ran the planted package"
            assert proc.poll() is None and time.monotonic() < deadline, witnessed()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(3.0)  # the checkpointer sees its parent gone (polled every 0.5 s) and stops
    newest = max(cp.size for cp in scene.ledger.checkpoints())
    scene.ledger.append("decision", {"outcome": "approve", "n": 999})
    time.sleep(1.5)  # five rounds of 0.2 s: nothing signs the new record any more
    assert max(cp.size for cp in scene.ledger.checkpoints()) == newest == size
    assert not marker.exists()
