"""Hostile peers on real sockets: clients that stall or smuggle, witnesses that never finish.

Every attacker here is a plain socket on 127.0.0.1 against a real :class:`WitnessServer` (or, for
the client's side, a hand-written server thread). Socket timeouts only detect a failure: each
test proves the server or client ended the exchange itself, well before them.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from governance.cli import app
from governance.transparency.config import WitnessConfig, WitnessEntry
from governance.transparency.sources import fetch_witness_notes
from governance.witness import (
    Witness,
    WitnessClient,
    WitnessHome,
    WitnessServer,
    WitnessUnavailable,
    origin_hash,
)
from governance.witness.protocol import MAX_BODY, format_add_checkpoint

Log = Any  # tests/witness/conftest.py:Log
DETECT = 5.0
"""Seconds after which a hung exchange counts as a failure (never reached when all is well)."""


def _connect(server: WitnessServer) -> socket.socket:
    host, port = server.server_address[:2]
    sock = socket.create_connection((str(host), port), timeout=DETECT)
    sock.settimeout(DETECT)
    return sock


def _read_to_eof(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (``socket.timeout`` if it never does)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _split(data: bytes) -> tuple[list[int], bytes]:
    """Parse complete HTTP responses (Content-Length bodies); return statuses and the rest."""
    statuses = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(":", 1) for line in lines[1:])
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
        if len(rest) < length:
            break
        statuses.append(int(lines[0].split()[1]))
        data = rest[length:]
    return statuses, data


def _read_one(sock: socket.socket) -> int:
    """Read exactly one response (and nothing after it) and return its status."""
    data = b""
    while True:
        statuses, rest = _split(data)
        if statuses:
            assert statuses == statuses[:1] and rest == b"", (statuses, rest)
            return statuses[0]
        chunk = sock.recv(1)  # byte by byte: never read into the next response
        assert chunk, f"closed after {data!r}"
        data += chunk


def _request(method: str, path: str, body: bytes = b"", *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: witness", *headers]
    if body and not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (the client vanished mid-request)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- W1: slow and vanishing clients -------------------------------------------------------


def test_a_stalled_body_is_cut_off_quietly(
    make_home: Callable[..., WitnessHome],
    log: Log,
    serve: Callable[..., WitnessServer],
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = serve(make_home(log), timeout=0.5)
    with _connect(server) as sock:
        sock.sendall(_request("POST", "/add-checkpoint", b"", "Content-Length: 100") + b"old")
        assert _read_to_eof(sock) == b""  # closed by the server, with nothing half-answered
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("start", ["request line", "body"])
def test_a_trickled_request_is_cut_off_at_the_deadline(
    make_home: Callable[..., WitnessHome],
    log: Log,
    serve: Callable[..., WitnessServer],
    capfd: pytest.CaptureFixture[str],
    start: str,
) -> None:
    """One byte at a time, each well inside the timeout: the whole request still has one."""
    server = serve(make_home(log), timeout=0.5)
    request = _request("POST", "/add-checkpoint", b"x" * 1000)
    if start == "body":
        head = request.index(b"\r\n\r\n") + 4
        sent, request = request[:head], request[head:]
    with _connect(server) as sock:
        if start == "body":
            sock.sendall(sent)
        began = time.monotonic()
        for byte in request:
            sock.settimeout(0.1)  # the attacker's pace, and how it notices the close
            try:
                assert sock.recv(1) == b""
                break
            except TimeoutError:
                pass
            except ConnectionResetError:
                break
            sock.sendall(bytes([byte]))
            assert time.monotonic() - began < DETECT, "the server kept reading"
        else:
            pytest.fail("the whole request got through")
    assert capfd.readouterr().err == ""


def test_an_idle_keep_alive_connection_is_closed(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[..., WitnessServer]
) -> None:
    server = serve(make_home(log), timeout=0.5)
    with _connect(server) as sock:
        sock.sendall(_request("GET", "/nothing"))
        assert _read_one(sock) == 404
        assert _read_to_eof(sock) == b""


def test_connections_beyond_the_cap_are_refused(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[..., WitnessServer]
) -> None:
    server = serve(make_home(log), timeout=30, max_connections=2)
    held = [_connect(server), _connect(server)]
    try:
        for sock in held:
            sock.sendall(_request("GET", "/nothing"))
            assert _read_one(sock) == 404  # each holds a handler, waiting for more
        with _connect(server) as third:
            data = _read_to_eof(third)  # refused at once, without waiting for a request
        assert _split(data) == ([503], b"")
        held[0].sendall(_request("GET", "/nothing", b"", "Connection: close"))
        assert _split(_read_to_eof(held[0])) == ([404], b"")
        with _connect(server) as fourth:  # the freed place is available again
            fourth.sendall(_request("GET", "/nothing", b"", "Connection: close"))
            assert _split(_read_to_eof(fourth)) == ([404], b"")
    finally:
        for sock in held:
            sock.close()


def test_a_client_that_vanishes_leaves_no_traceback(
    make_home: Callable[..., WitnessHome],
    log: Log,
    serve: Callable[..., WitnessServer],
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = serve(make_home(log))
    before = set(threading.enumerate())
    sock = _connect(server)
    sock.sendall(_request("GET", "/nothing"))
    assert _read_one(sock) == 404  # its handler thread exists now
    sock.sendall(_request("POST", "/add-checkpoint", b"", "Content-Length: 100") + b"old")
    _reset(sock)
    for thread in set(threading.enumerate()) - before:
        thread.join(DETECT)
        assert not thread.is_alive()
    assert capfd.readouterr().err == ""


# -- W2: one request, one answer ----------------------------------------------------------


@pytest.fixture
def cosigned(make_home: Callable[..., WitnessHome], log: Log) -> WitnessHome:
    """A witness home that has cosigned ``log`` at size 5 (its checkpoint GET answers 200)."""
    home = make_home(log)
    reply = Witness(home).add_checkpoint(format_add_checkpoint(0, [], log.checkpoint(5)))
    assert reply.status == 200, reply.body
    return home


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/nope", 404), ("GET", "/nothing", 404), ("GET", "checkpoint", 200)],
)
def test_a_body_is_never_taken_for_the_next_request(
    cosigned: WitnessHome,
    log: Log,
    serve: Callable[..., WitnessServer],
    method: str,
    path: str,
    status: int,
) -> None:
    checkpoint = f"/{origin_hash(log.origin)}/checkpoint"
    server = serve(cosigned)
    smuggled = _request("GET", checkpoint)
    with _connect(server) as sock:
        sock.sendall(_request(method, checkpoint if path == "checkpoint" else path, smuggled))
        assert _read_one(sock) == status
        sock.sendall(_request("GET", "/after", b"", "Connection: close"))
        assert _split(_read_to_eof(sock)) == ([404], b"")  # the smuggled GET got no answer


def test_a_body_of_unknown_length_closes_the_connection(
    cosigned: WitnessHome, log: Log, serve: Callable[..., WitnessServer]
) -> None:
    smuggled = _request("GET", f"/{origin_hash(log.origin)}/checkpoint")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    with _connect(serve(cosigned)) as sock:
        sock.sendall(_request("POST", "/nope", chunked, "Transfer-Encoding: chunked"))
        assert _split(_read_to_eof(sock)) == ([404], b"")


# -- W3: evidence is what only the log can make ------------------------------------------


def _post(server: WitnessServer, body: bytes) -> tuple[int, str]:
    with _connect(server) as sock:
        sock.sendall(_request("POST", "/add-checkpoint", body, "Connection: close"))
        data = _read_to_eof(sock)
    assert _split(data)[0], data
    return _split(data)[0][0], data.partition(b"\r\n\r\n")[2].decode()


def test_public_checkpoints_cannot_be_turned_into_evidence(
    make_home: Callable[..., WitnessHome], log: Log, serve: Callable[..., WitnessServer]
) -> None:
    """Anyone can replay the log's published checkpoints with a junk proof or a stale size."""
    home = make_home(log)
    server = serve(home)
    assert _post(server, format_add_checkpoint(0, [], log.checkpoint(5)))[0] == 200
    genuine = log.checkpoint(20)  # published by the log, so the attacker has it too
    status, body = _post(server, format_add_checkpoint(5, [bytes(32)] * 3, genuine))
    assert status == 422 and body.startswith("inconsistent")
    status, body = _post(server, format_add_checkpoint(5, log.proof(5, 20), genuine))
    assert status == 200  # the log did nothing wrong
    assert _post(server, format_add_checkpoint(0, [], log.checkpoint(5))) == (409, "20\n")
    assert _post(server, format_add_checkpoint(20, [], log.checkpoint(5)))[0] == 400
    assert home.evidence() == []
    listed = CliRunner().invoke(app, ["witness", "evidence", "--home", str(home.path), "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    fork = type(log)(log.origin, b"other history", log.signer)  # only the log's key makes this
    assert _post(server, format_add_checkpoint(20, [], fork.checkpoint(20)))[0] == 422
    listed = CliRunner().invoke(app, ["witness", "evidence", "--home", str(home.path), "--json"])
    assert [e["reason"].split(":")[0] for e in json.loads(listed.stdout)] == ["fork"]


def test_evidence_an_older_witness_kept_is_judged_and_can_be_pruned(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    """An older witness also kept rollbacks and junk proofs: anyone could have sent those."""
    home = make_home(log)
    witness = Witness(home)
    assert witness.add_checkpoint(format_add_checkpoint(0, [], log.checkpoint(20))).status == 200
    cosigned = home.latest(log.origin)
    fork = type(log)(log.origin, b"other history", log.signer)
    assert witness.add_checkpoint(format_add_checkpoint(20, [], fork.checkpoint(20))).status == 422
    (real,) = home.evidence()
    # what the old rule kept: a replayed older checkpoint, and a genuine one with a junk proof
    home.keep_evidence(log.origin, cosigned, log.checkpoint(5), "rollback: 5 < 20")
    home.keep_evidence(log.origin, cosigned, log.checkpoint(30), "inconsistent: 20 -> 30")
    # a "fork" the log never signed: its name, another key
    impostor = type(log)(log.origin, b"forged")
    home.keep_evidence(log.origin, cosigned, impostor.checkpoint(20), "fork: forged")
    # a log this witness no longer trusts: nothing to check it with
    gone = type(log)("log.example/gone")
    home.keep_evidence(gone.origin, gone.checkpoint(3), gone.checkpoint(3), "fork: long ago")

    def listed(*flags: str) -> dict[str, bool | None]:
        args = ["witness", "evidence", "--home", str(home.path), "--json", *flags]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        return {e["reason"]: e["proves_fork"] for e in json.loads(done.stdout)}

    assert listed() == {
        real.reason: True,
        "rollback: 5 < 20": False,
        "inconsistent: 20 -> 30": False,
        "fork: forged": False,
        "fork: long ago": None,
    }
    text = CliRunner().invoke(app, ["witness", "evidence", "--home", str(home.path)]).stdout
    assert text.count("proves no fork (kept by an older witness)") == 3
    assert text.count("no longer trusts that log") == 1
    assert listed("--prune") == {real.reason: True, "fork: long ago": None}
    assert len(list((home.path / "evidence").glob("*/*"))) == 2  # the rest is gone from disk
    assert home.prune_evidence() == []


# -- B2: a witness that never finishes answering ------------------------------------------


class _HostileWitness:
    """A server that reads one request, then sends ``answer`` at ``pace`` seconds per chunk."""

    def __init__(self, answer: Iterator[bytes], pace: float = 0.0, give_up: float = 8.0):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.answer, self.pace, self.give_up = answer, pace, give_up
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            began = time.monotonic()
            for chunk in self.answer:
                if self.stop.wait(self.pace) or time.monotonic() - began > self.give_up:
                    return
                try:
                    conn.sendall(chunk)
                except OSError:  # the client hung up
                    return
                self.sent += len(chunk)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DETECT)
        self.listener.close()


@pytest.fixture
def hostile() -> Iterator[Callable[..., _HostileWitness]]:
    started: list[_HostileWitness] = []

    def start(answer: Iterator[bytes], pace: float = 0.0) -> _HostileWitness:
        started.append(_HostileWitness(answer, pace))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _trickle(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


HEAD_100K = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"


def test_a_trickling_witness_cannot_outlast_the_client_timeout(
    make_home: Callable[..., WitnessHome], log: Log, hostile: Callable[..., _HostileWitness]
) -> None:
    home = make_home(log)
    server = hostile(iter([HEAD_100K, *_trickle(b"x" * 100_000)]), pace=0.1)
    client = WitnessClient(server.url, home.vkey, timeout=1.0)
    began = time.monotonic()
    with pytest.raises(WitnessUnavailable, match="no complete answer within 1"):
        client.latest(log.origin)
    assert time.monotonic() - began < 3.0


def test_a_witness_that_never_finishes_the_tls_handshake_is_given_up_on_in_time(
    make_home: Callable[..., WitnessHome], log: Log, hostile: Callable[..., _HostileWitness]
) -> None:
    home = make_home(log)
    server = hostile(iter([]))  # reads the ClientHello as a "request" that never ends
    client = WitnessClient(server.url.replace("http:", "https:"), home.vkey, timeout=1.0)
    began = time.monotonic()
    with pytest.raises(WitnessUnavailable, match="no complete answer within 1"):
        client.latest(log.origin)
    assert time.monotonic() - began < 3.0


def test_an_auditor_asking_a_trickling_witness_gets_an_answer_in_time(
    make_home: Callable[..., WitnessHome], log: Log, hostile: Callable[..., _HostileWitness]
) -> None:
    """``governance audit verify``'s path: the headers themselves arrive a byte at a time."""
    home = make_home(log)
    server = hostile(_trickle(HEAD_100K * 10), pace=0.1)
    config = WitnessConfig([WitnessEntry.make(server.url, home.vkey)], quorum=1)
    began = time.monotonic()
    notes, answers = fetch_witness_notes(config, log.origin, timeout=1.0)
    assert time.monotonic() - began < 3.0
    assert notes == [] and "no complete answer within 1" in answers[home.name]


def test_an_endless_answer_is_cut_at_the_size_limit(
    make_home: Callable[..., WitnessHome], log: Log, hostile: Callable[..., _HostileWitness]
) -> None:
    home = make_home(log)
    size = 32 * 1024 * 1024
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
    server = hostile(iter([head, *[bytes(65536)] * (size // 65536)]))
    client = WitnessClient(server.url, home.vkey, timeout=DETECT)
    with pytest.raises(WitnessUnavailable, match=f"over {MAX_BODY} bytes"):
        client.latest(log.origin)
    server.thread.join(DETECT)
    assert not server.thread.is_alive() and server.sent < size  # the client hung up early


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1", "http://:80"]
)
def test_a_bad_url_is_a_configuration_error(make_home: Callable[..., WitnessHome], url: str):
    with pytest.raises(ValueError, match="invalid witness URL"):
        WitnessClient(url, make_home().vkey)


def test_an_answer_shorter_than_its_content_length_is_refused(
    make_home: Callable[..., WitnessHome], log: Log, hostile: Callable[..., _HostileWitness]
) -> None:
    home = make_home(log)
    server = hostile(iter([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 10]))
    with pytest.raises(WitnessUnavailable, match="ended before its Content-Length"):
        WitnessClient(server.url, home.vkey, timeout=DETECT).latest(log.origin)


def test_a_name_that_never_resolves_is_given_up_on_in_time(
    make_home: Callable[..., WitnessHome], log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resolver has no timeout of its own: the client's deadline bounds it too."""
    home = make_home(log)
    released = threading.Event()
    asked: list[str] = []

    def resolver_that_hangs(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        released.wait(DETECT * 4)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", resolver_that_hangs)
    client = WitnessClient("http://witness.example:8099", home.vkey, timeout=0.5)
    try:
        late = r"witness\.example did not resolve within 0\.\d+s"  # the time left of 0.5 s
        with pytest.raises(WitnessUnavailable, match=late):
            client.latest(log.origin)
        assert asked == ["witness.example"] and not released.is_set()  # it answered first
    finally:
        released.set()


def test_a_name_that_does_not_exist_is_unavailable_not_a_crash(
    make_home: Callable[..., WitnessHome], log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(log)
    asked_in: list[str] = []

    def no_such_name(host: str, *args: Any, **kwargs: Any) -> Any:
        asked_in.append(threading.current_thread().name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    client = WitnessClient("http://witness.example:8099", home.vkey, timeout=DETECT)
    with pytest.raises(WitnessUnavailable, match="Name or service not known"):
        client.latest(log.origin)
    assert asked_in == ["witness-resolve"]  # in the thread the deadline bounds, not the caller's
