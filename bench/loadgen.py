"""HTTP load generators for the ``http`` benchmark, bounded in count and time, loopback only.

* :func:`python_load`: one thread per connection, each a raw keep-alive socket sending the same
  pre-built request and reading the answer (status line, ``Content-Length`` or chunked body).
  Every request started is finished (no cut-off in flight), so "answered" is exact.
* :func:`wrk_load`: ``wrk`` (Debian package ``wrk``) with a Lua script for the body and a JSON
  summary; with ``--loadgen wrk`` (or ``auto`` when it is installed). wrk stops at its deadline
  with requests in flight, so the ledger may hold up to one more decision per connection than
  wrk counted as answered.

Both return a :class:`LoadResult`; the same generator is used for every server in one run.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import percentile

HOST = "127.0.0.1"  # never anything else


@dataclass
class LoadResult:
    generator: str
    connections: int
    seconds: float
    answered: int  # 2xx answers
    failed: int  # other statuses, socket errors
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int] = field(default_factory=dict)


def build_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def request(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if b"content-length" in headers:
            body = self._read_exact(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    while self._read_line():
                        pass
                    break
                parts.append(self._read_exact(size))
                self._read_exact(2)
            body = b"".join(parts)
        else:
            raise ConnectionError("answer without Content-Length or chunked encoding")
        return status, body

    def close(self) -> None:
        self.sock.close()


def python_load(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    max_requests: int = 1_000_000,
) -> LoadResult:
    """Send requests on ``connections`` keep-alive connections for ``seconds`` (or until
    ``max_requests``); latencies of every request."""
    raw = build_request(port, path, body, headers)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[dict[str, int]] = [{} for _ in range(connections)]
    errors = [0] * connections
    lock = threading.Lock()
    issued = 0
    gate = threading.Barrier(connections + 1)
    deadline = 0.0

    def work(k: int) -> None:
        nonlocal issued
        conn = _Conn(port)
        mine, seen = latencies[k], statuses[k]
        gate.wait()
        try:
            while True:
                with lock:
                    if issued >= max_requests:
                        return
                    issued += 1
                if time.perf_counter() >= deadline:
                    return
                t0 = time.perf_counter()
                try:
                    status, _ = conn.request(raw)
                except OSError:
                    errors[k] += 1
                    conn.close()
                    conn = _Conn(port)
                    continue
                mine.append(time.perf_counter() - t0)
                seen[str(status)] = seen.get(str(status), 0) + 1
        finally:
            conn.close()

    pool = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(connections)]
    for t in pool:
        t.start()
    start = time.perf_counter()
    deadline = start + seconds
    gate.wait()
    for t in pool:
        t.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - start
    merged: dict[str, int] = {}
    for seen in statuses:
        for k, v in seen.items():
            merged[k] = merged.get(k, 0) + v
    ok = sum(v for k, v in merged.items() if k.startswith("2"))
    all_lat = [x * 1000 for lat in latencies for x in lat]
    return LoadResult(
        generator="python",
        connections=connections,
        seconds=elapsed,
        answered=ok,
        failed=sum(errors) + sum(v for k, v in merged.items() if not k.startswith("2")),
        rps=ok / elapsed,
        p50_ms=percentile(all_lat, 50),
        p99_ms=percentile(all_lat, 99),
        statuses=merged,
    )


_WRK_LUA = """
wrk.method = "POST"
wrk.body = io.open("%(body)s", "rb"):read("*a")
%(headers)s
done = function(summary, latency, requests)
  local statuses = 0
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non2xx\\": %%d,"
    .. " \\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, \\"timeout\\": %%d,"
    .. " \\"p50_us\\": %%f, \\"p99_us\\": %%f}\\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> str | None:
    return shutil.which("wrk")


def wrk_load(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
) -> LoadResult:
    """``wrk`` for ``seconds`` on ``connections`` connections (threads: min(c, 2))."""
    exe = wrk_available()
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        hdrs = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script = Path(tmp) / "post.lua"
        script.write_text(_WRK_LUA % {"body": body_path, "headers": hdrs})
        secs = max(1, round(seconds))
        proc = subprocess.run(
            [
                exe,
                "-t",
                str(min(connections, 2)),
                "-c",
                str(connections),
                "-d",
                f"{secs}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                f"http://{HOST}:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=secs + 60,
        )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    d = json.loads(line[len("WRKJSON ") :])
    elapsed = d["duration_us"] / 1e6
    failed = d["non2xx"] + d["connect"] + d["read"] + d["write"] + d["timeout"]
    ok = d["requests"] - d["non2xx"]
    return LoadResult(
        generator="wrk",
        connections=connections,
        seconds=elapsed,
        answered=ok,
        failed=failed,
        rps=ok / elapsed,
        p50_ms=d["p50_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        statuses={"2xx": ok, "other": d["non2xx"]},
    )
