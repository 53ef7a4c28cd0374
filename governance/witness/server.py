"""The witness's HTTP server: C2SP tlog-witness over the standard library's ``http.server``.

Routes::

    POST /add-checkpoint                  cosign (see Witness.add_checkpoint)
    GET  /<sha256(origin) hex>/checkpoint the latest cosigned checkpoint of a log (read-only)

The standard library rather than FastAPI/uvicorn: a witness is run by someone *other* than the
ledger's operator, so it should be small enough to read in one sitting and depend on nothing
but Python and ``cryptography``; it has two routes, plain-text bodies and no schema to
document; and each request does blocking file I/O with fsync under a lock, which fits a thread
per connection better than an event loop. ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive
serves the few requests per checkpoint a witness sees.

Its clients are strangers, so a connection is held only as long as it is useful: each request
(from waiting for its first byte, idle keep-alive included, to its body's last) has ``timeout``
seconds to arrive in full, however slowly its bytes trickle in; at most ``max_connections`` are
served at once (more are answered 503 and closed); a body is always read or the connection
closed, so it is never taken for the next request; and a client that goes away or stalls is
dropped without a word on stderr.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from governance.witness.protocol import ADD_CHECKPOINT_PATH, MAX_BODY
from governance.witness.witness import Reply, Witness

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_TIMEOUT", "WitnessServer", "serve"]

DEFAULT_TIMEOUT = 10.0
"""Seconds a client has to send each request in full (and to sit idle between requests)."""
DEFAULT_MAX_CONNECTIONS = 64
"""Connections served at once; more are answered 503 and closed."""

_CHECKPOINT_RE = re.compile(r"/([0-9a-f]{64})/checkpoint")
_LENGTH_RE = re.compile(r"[0-9]{1,18}")
_BUSY_BODY = b"503 too many connections, try again later\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
    % (len(_BUSY_BODY), _BUSY_BODY)
)
_CLIENT_GONE = (ConnectionError, TimeoutError)
"""A client that went away or stalled: nothing to report (BrokenPipeError, resets, timeouts)."""


class _DeadlineReader(io.RawIOBase):
    """A connection's bytes, each request having until ``deadline`` to arrive in full.

    A socket timeout alone bounds only the wait for the next byte: a client sending one byte
    every few seconds would hold its handler thread for as long as it likes.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    """One connection; ``server.witness`` answers."""

    protocol_version = "HTTP/1.1"
    server: WitnessServer
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"
    quiet: ClassVar[bool] = False

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain buffered socket file: replaced by one with a deadline
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.deadline = time.monotonic() + self.server.request_timeout
        super().handle_one_request()

    def _content_length(self) -> int | None:
        """The body's length (0 if none is declared), or ``None`` if it cannot be trusted."""
        if "Transfer-Encoding" in self.headers:
            return None  # chunked bodies are not supported: their length is unknown
        values = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if not values:
            return 0
        (value, *others) = values
        return int(value) if not others and _LENGTH_RE.fullmatch(value) else None

    def _skip_body(self) -> None:
        """Read and drop a body no route wants, or close: never take it for the next request."""
        length = self._content_length()
        if length is None or length > MAX_BODY:
            self.close_connection = True
        elif length and len(self.rfile.read(length)) < length:
            self.close_connection = True  # the client went away

    def _send(self, reply: Reply) -> None:
        self.connection.settimeout(self.server.request_timeout)  # reads leave less; writes get it
        data = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path != ADD_CHECKPOINT_PATH:
            self._skip_body()
            self._send(Reply(404, "no such endpoint\n"))
            return
        length = self._content_length() if "Content-Length" in self.headers else None
        if length is None:
            self._send(Reply(411, "Content-Length required\n"))
            self.close_connection = True
            return
        if length > MAX_BODY:
            self._send(Reply(413, f"request body over {MAX_BODY} bytes\n"))
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away mid-body: nothing to answer
            self.close_connection = True
            return
        self._send(self.server.witness.add_checkpoint(body))

    def do_GET(self) -> None:
        self._skip_body()
        match = _CHECKPOINT_RE.fullmatch(self.path)
        if match is None:
            self._send(Reply(404, "no such endpoint\n"))
            return
        self._send(self.server.witness.checkpoint(match.group(1)))

    def do_HEAD(self) -> None:
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines etc.: a one-line text answer like every other error.
        self.close_connection = True
        self._send(Reply(code, f"{message or HTTPStatus(code).phrase}\n"))


class WitnessServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one witness.

    Parameters
    ----------
    address
        ``(host, port)``; port 0 picks a free one (see ``server_address``).
    witness
        The witness that answers.
    quiet
        Do not log requests to stderr.
    timeout
        Seconds a client has to send each request in full, and to sit idle between requests;
        then its connection is closed.
    max_connections
        Connections served at once; more are answered 503 and closed.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        witness: Witness,
        *,
        quiet: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ):
        if not timeout > 0 or max_connections < 1:
            raise ValueError("timeout must be positive and max_connections at least 1")
        self.witness = witness
        self.quiet = quiet
        self.request_timeout = timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a new connection in its own thread, or answer 503 if all places are taken."""
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.setblocking(False)  # never let a refused client stall the accept loop
                request.send(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts its thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """ThreadingMixIn's, freeing the place *before* the close the client can see."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self._slots.release()
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print the traceback of a fault, but not of a client that went away or stalled."""
        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return  # it went away or stalled; a real fault still prints its traceback
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The base URL the server listens on."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve(witness: Witness, host: str = "127.0.0.1", port: int = 8099, quiet: bool = False) -> None:
    """Serve ``witness`` until interrupted (blocking)."""
    with (
        WitnessServer((host, port), witness, quiet=quiet) as server,
        contextlib.suppress(KeyboardInterrupt),
    ):
        server.serve_forever()
