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
"""

from __future__ import annotations

import contextlib
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from governance.witness.protocol import ADD_CHECKPOINT_PATH, MAX_BODY
from governance.witness.witness import Reply, Witness

__all__ = ["WitnessServer", "serve"]

_CHECKPOINT_RE = re.compile(r"/([0-9a-f]{64})/checkpoint")


class _Handler(BaseHTTPRequestHandler):
    """One connection; ``server.witness`` answers."""

    protocol_version = "HTTP/1.1"
    server: WitnessServer
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"
    quiet: ClassVar[bool] = False

    def _send(self, reply: Reply) -> None:
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
            self._send(Reply(404, "no such endpoint\n"))
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(Reply(411, "Content-Length required\n"))
            self.close_connection = True
            return
        if not 0 <= length <= MAX_BODY:
            self._send(Reply(413, f"request body over {MAX_BODY} bytes\n"))
            self.close_connection = True
            return
        body = self.rfile.read(length)
        self._send(self.server.witness.add_checkpoint(body))

    def do_GET(self) -> None:
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
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], witness: Witness, *, quiet: bool = False):
        self.witness = witness
        self.quiet = quiet
        super().__init__(address, _Handler)

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
