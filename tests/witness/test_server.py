"""The witness over HTTP, the client the ledger uses, and witnesses as real processes.

The process tests run ``governance witness serve`` as a separate process and kill it with
SIGKILL while a client keeps submitting: a cosignature the client received must never be for a
tree larger than what the restarted witness has stored (it would otherwise cosign a rollback).
"""

from __future__ import annotations

import http.client
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import free_port

from governance.ledger.note import open_note, parse_checkpoint, parse_note
from governance.witness import (
    Witness,
    WitnessClient,
    WitnessConflict,
    WitnessError,
    WitnessHome,
    WitnessRefused,
    WitnessUnavailable,
    gather,
    origin_hash,
    submit,
)

Log = Any  # tests/witness/conftest.py:Log


def test_client_gets_verified_cosignatures(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[[WitnessHome], Any]
) -> None:
    home = make_home(log)
    client = WitnessClient(serve(home).url, home.vkey)
    cosignature = client.add_checkpoint(log.checkpoint(10), 0, [])
    assert cosignature.name == home.name
    with pytest.raises(WitnessConflict) as conflict:
        client.add_checkpoint(log.checkpoint(12), 0, [])
    assert conflict.value.size == 10
    client.add_checkpoint(log.checkpoint(12), 10, log.proof(10, 12))
    latest = client.latest(log.origin)
    assert latest is not None
    opened = open_note(latest, [log.signer.verifier(), home.verifier])
    assert parse_checkpoint(opened.text).size == 12
    assert client.latest("never.seen/log") is None
    client.close()


def test_submit_catches_a_witness_up_from_a_wrong_guess(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[[WitnessHome], Any]
) -> None:
    home = make_home(log)
    client = WitnessClient(serve(home).url, home.vkey)
    submit(client, log.checkpoint(5), 5, lambda old: log.proof(old, 5), known_size=0)
    asked: list[int] = []

    def prove(old: int) -> list[bytes]:
        asked.append(old)
        return log.proof(old, 40)

    submit(client, log.checkpoint(40), 40, prove, known_size=3)  # a stale guess
    assert asked == [3, 5]
    with pytest.raises(WitnessRefused, match="larger tree"):
        submit(client, log.checkpoint(20), 20, lambda old: log.proof(old, 20), known_size=40)


def test_a_cosignature_under_another_key_is_refused(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[[WitnessHome], Any]
) -> None:
    real, other = make_home(log), make_home(log)
    client = WitnessClient(serve(real).url, other.vkey)  # configured with the wrong key
    with pytest.raises(WitnessError, match="no valid cosignature"):
        client.add_checkpoint(log.checkpoint(3), 0, [])


def test_client_refuses_log_keys_and_bad_urls(make_home: Callable[..., WitnessHome], log: Log):
    home = make_home(log)
    with pytest.raises(ValueError, match="type 0x04"):
        WitnessClient("http://127.0.0.1:1", log.vkey)
    with pytest.raises(ValueError, match="invalid witness URL"):
        WitnessClient("ftp://x", home.vkey)


def test_gather_collects_what_it_can_when_a_witness_is_down(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[[WitnessHome], Any]
) -> None:
    up, down = make_home(log), make_home(log)
    clients = [
        WitnessClient(serve(up).url, up.vkey, timeout=2),
        WitnessClient(f"http://127.0.0.1:{free_port()}", down.vkey, timeout=2),
    ]
    result = gather(clients, log.checkpoint(8), 8, lambda old: log.proof(old, 8), timeout=10)
    assert set(result.cosignatures) == {up.name}
    assert set(result.errors) == {down.name}
    with pytest.raises(WitnessUnavailable):
        clients[1].latest(log.origin)


def _raw(url: str, method: str, path: str, body: bytes | None = None, headers=None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.getheader("Content-Type"), data


def test_http_edges(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[[WitnessHome], Any]
) -> None:
    url = serve(make_home(log)).url
    assert _raw(url, "GET", "/nothing")[0] == 404
    assert _raw(url, "POST", "/nothing", b"x")[0] == 404
    assert _raw(url, "GET", f"/{origin_hash(log.origin)}/checkpoint")[0] == 404
    status, content_type, _ = _raw(url, "POST", "/add-checkpoint", b"x" * 70_000)
    assert status == 413 and content_type.startswith("text/plain")
    status, _, body = _raw(url, "POST", "/add-checkpoint", b"old 0\n\nnonsense")
    assert status == 400 and body.startswith(b"malformed")


def test_keep_alive_serves_many_requests_on_one_connection(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[[WitnessHome], Any]
) -> None:
    home = make_home(log)
    client = WitnessClient(serve(home).url, home.vkey)
    known = 0
    for size in range(1, 30):
        submit(client, log.checkpoint(size), size, lambda old, s=size: log.proof(old, s), known)
        known = size
    conn = client._conn
    assert conn is not None and conn.sock is not None  # still the first connection
    client.close()


# -- real processes -----------------------------------------------------------------------


def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    governance = Path(sys.executable).with_name("governance")
    proc = subprocess.Popen(
        [str(governance), "witness", "serve", "--home", str(home), "--port", str(port), "--quiet"],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    assert re.search(r"listening on http://127\.0\.0\.1:\d+", line), line
    return proc


def _hammer(
    client: WitnessClient,
    log: Log,
    start: int,
    stop: threading.Event,
    received: list[int],
    rng: random.Random,
) -> None:
    """Submit growing checkpoints until stopped or refused; record each size cosigned."""
    known = size = start
    while not stop.is_set() and size < 3000:
        size += rng.randint(1, 9)
        try:
            submit(client, log.checkpoint(size), size, lambda o, s=size: log.proof(o, s), known)
        except WitnessError:
            return
        received.append(size)
        known = size


@pytest.mark.slow
def test_sigkill_never_lets_a_witness_cosign_a_rollback(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home(log)
    port = free_port()
    log.grow(3000)
    rng = random.Random(9)
    best = 0  # largest size for which a cosignature came back
    proc = _start(home.path, port)
    try:
        for _ in range(6):
            client = WitnessClient(f"http://127.0.0.1:{port}", home.vkey, timeout=5)
            stop = threading.Event()
            received: list[int] = []
            worker = threading.Thread(target=_hammer, args=(client, log, best, stop, received, rng))
            worker.start()
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            stop.set()
            worker.join()
            client.close()
            best = max([best, *received])
            proc = _start(home.path, port)
            stored = WitnessClient(f"http://127.0.0.1:{port}", home.vkey).latest(log.origin)
            assert stored is not None
            opened = open_note(stored, [log.signer.verifier(), home.verifier])
            stored_size = parse_checkpoint(opened.text).size
            assert stored_size >= best  # it never forgot a size it cosigned
            best = stored_size
            # and it refuses anything smaller than what it stored
            with pytest.raises(WitnessRefused):
                submit(
                    WitnessClient(f"http://127.0.0.1:{port}", home.vkey),
                    log.checkpoint(max(1, stored_size - 1)),
                    max(1, stored_size - 1),
                    lambda o: [],
                    0,
                )
        assert best > 0
        leftovers = [p for p in (home.path / "state").iterdir() if p.suffix != ".note"]
        assert all(p.name.endswith(".tmp") for p in leftovers)  # only torn temporaries
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
def test_witness_cli_init_trust_status_and_evidence(tmp_path: Path, log: Log) -> None:
    governance = str(Path(sys.executable).with_name("governance"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([governance, *args], capture_output=True, text=True, timeout=60)

    home = tmp_path / "w"
    created = run("witness", "init", "--home", str(home), "--name", "witness.example/cli")
    assert created.returncode == 0, created.stderr
    vkey = created.stdout.strip()
    assert vkey == WitnessHome(home).vkey and "\n" not in vkey
    again = run("witness", "init", "--home", str(home))
    assert again.returncode == 1 and again.stderr.startswith("error: ")
    assert run("witness", "trust", log.vkey, "--home", str(home)).returncode == 0
    bad = run("witness", "trust", "nonsense", "--home", str(home))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    witness = Witness(WitnessHome(home))
    from governance.witness.protocol import format_add_checkpoint

    witness.add_checkpoint(format_add_checkpoint(0, [], log.checkpoint(6)))
    fork = type(log)(log.origin, b"fork", log.signer)
    witness.add_checkpoint(format_add_checkpoint(6, [], fork.checkpoint(6)))
    status = run("witness", "status", "--home", str(home), "--json")
    assert '"cosigned_size": 6' in status.stdout
    evidence = run("witness", "evidence", "--home", str(home), "--json")
    assert evidence.returncode == 0 and '"reason": "fork' in evidence.stdout
    assert (
        parse_note(WitnessHome(home).latest(log.origin) or "").text
        == parse_note(log.checkpoint(6)).text
    )
