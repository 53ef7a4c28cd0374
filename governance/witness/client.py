"""Talking to witnesses: submit checkpoints with consistency proofs, fetch cosigned ones.

>>> client = WitnessClient("http://127.0.0.1:8099", "w1+1a2b3c4d+BA...")
>>> cosignature = submit(client, note, size, prove, known_size=0)   # a verified Signature
>>> client.latest(origin)                                           # cosigned note or None

:func:`gather` asks several witnesses at once, each in its own thread with a timeout, and
returns the cosignatures it got and why the others failed. Nothing here holds a secret: a
witness's answer is only accepted once its cosignature verifies under the configured key.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from governance.ledger.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    Signature,
    Verifier,
    open_note,
    parse_note,
    parse_verifier_key,
)
from governance.witness.protocol import (
    ADD_CHECKPOINT_PATH,
    CONTENT_TYPE_SIZE,
    MAX_BODY,
    format_add_checkpoint,
)
from governance.witness.store import origin_hash

__all__ = [
    "ERR_BAD_URL",
    "ERR_NOT_A_WITNESS_KEY",
    "GatherResult",
    "WitnessClient",
    "WitnessConflict",
    "WitnessError",
    "WitnessRefused",
    "WitnessUnavailable",
    "gather",
    "submit",
]

ERR_BAD_URL = "invalid witness URL {url!r}: expected http://host:port[/prefix]"
ERR_NOT_A_WITNESS_KEY = "{vkey!r} is not a witness cosignature key (type 0x04)"
ERR_DEADLINE = "{url}: no complete answer within {s:g}s"
ERR_RESOLVE = "{host} did not resolve within {s:.3g}s"
ERR_TOO_LARGE = "{url}: an answer over {limit} bytes"
ERR_AHEAD = (
    "the witness has cosigned size {size} but this checkpoint has size {ours}: it has seen a "
    "larger tree of this log than the one being published (a rollback, or another writer)"
)


class WitnessError(Exception):
    """A witness did not cosign."""


class WitnessUnavailable(WitnessError):
    """The witness could not be reached or did not answer in time."""


class WitnessRefused(WitnessError):
    """The witness answered with an error status.

    Attributes
    ----------
    status
        The HTTP status.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message.strip()[:300]}")
        self.status = status


class WitnessConflict(WitnessRefused):
    """409: the witness last cosigned another size than the one the request started from.

    Attributes
    ----------
    size
        The size the witness last cosigned.
    """

    def __init__(self, size: int) -> None:
        super().__init__(409, f"the witness last cosigned size {size}")
        self.size = size


class _Stale(Exception):
    """A kept-alive connection the witness had closed: worth one retry on a new one."""


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _split_url(url: str) -> SplitResult:
    """Check a witness URL (:data:`ERR_BAD_URL` as a ``ValueError``) and return its parts."""
    try:
        parts = urlsplit(url)
        port = parts.port  # a ValueError for a port that is not a number or out of range
    except ValueError:
        raise ValueError(ERR_BAD_URL.format(url=url)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError(ERR_BAD_URL.format(url=url))
    return parts


def _addresses(host: str, port: int, seconds: float) -> list[tuple]:
    """``getaddrinfo`` for ``host``, waited on no longer than ``seconds``.

    The resolver has no timeout of its own (glibc retries each name server for tens of seconds),
    so it answers in a daemon thread: a witness whose name does not resolve in time is
    unavailable, and nothing (not even the interpreter's exit) waits for the resolver.
    """
    answer: list[list[tuple] | OSError] = []

    def ask() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            answer.append(exc)

    resolver = threading.Thread(target=ask, name="witness-resolve", daemon=True)
    resolver.start()
    resolver.join(seconds)
    if not answer:
        raise TimeoutError(ERR_RESOLVE.format(host=host, s=seconds))
    if isinstance(answer[0], OSError):
        raise answer[0]
    return answer[0]


def _open(host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first of ``host``'s addresses that answers, by ``deadline``."""
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in _addresses(host, port, _left(deadline)):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


class _Watchdog:
    """Shuts a connection down at ``deadline``, waking whatever waits on it (TLS included).

    A socket timeout bounds each wait for the next byte, not the answer: a witness sending one
    byte every few seconds would hold its caller for as long as it likes.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.fired = False
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(OSError):  # already closed
                self._sock.shutdown(socket.SHUT_RDWR)


class WitnessClient:
    """One witness: its URL and the key its cosignatures must verify under.

    Parameters
    ----------
    url
        The witness's URL prefix (``http://host:port`` or with a path prefix).
    vkey
        Its verifier key (type 0x04), or a :class:`Verifier`.
    timeout
        Seconds each request may take in all: connecting, sending and the whole answer.

    Raises
    ------
    ValueError
        If the URL is not ``http(s)://host[:port][/prefix]`` with a valid port
        (:data:`ERR_BAD_URL`) or the key is not a witness key.
    """

    def __init__(self, url: str, vkey: str | Verifier, *, timeout: float = 10.0) -> None:
        parts = _split_url(url)
        verifier = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise ValueError(ERR_NOT_A_WITNESS_KEY.format(vkey=verifier.vkey))
        self.url = url.rstrip("/")
        self.verifier = verifier
        self.timeout = timeout
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._handle: socket.socket | None = None  # the connection's socket, for the watchdog
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The witness's name (its key name)."""
        return self.verifier.name

    def _connect(self, deadline: float) -> http.client.HTTPConnection:
        """Open a TCP connection (TLS comes later, under the watchdog)."""
        port = self._port or (80 if self._tls is None else 443)
        raw = _open(self._host, port, deadline)
        self._handle = raw.dup()  # still this connection once TLS takes ``raw`` over
        cls = http.client.HTTPConnection if self._tls is None else http.client.HTTPSConnection
        self._conn = cls(self._host, self._port)
        self._conn.sock = raw
        return self._conn

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str, str]:
        """Send one request over the kept-alive connection; retry once on a stale one.

        ``timeout`` bounds the whole exchange (connecting, sending, the answer's last byte),
        and an answer over :data:`MAX_BODY` bytes is refused.
        """
        deadline = time.monotonic() + self.timeout
        with self._lock:
            for attempt in (1, 2):
                if time.monotonic() >= deadline:
                    raise self._too_late()
                try:
                    return self._exchange(method, path, body, deadline)
                except _Stale:
                    self.close()
                    if attempt == 2:
                        raise WitnessUnavailable(f"{self.url}: connection closed") from None
        raise AssertionError("unreachable")

    def _exchange(
        self, method: str, path: str, body: bytes | None, deadline: float
    ) -> tuple[int, str, str]:
        """One request and its answer by ``deadline``; raises :class:`_Stale` to retry."""
        fresh = self._conn is None or self._conn.sock is None
        late = False
        try:
            if fresh:
                self.close()
                self._connect(deadline)
            assert self._conn is not None and self._handle is not None
            conn = self._conn
            with _Watchdog(self._handle, deadline) as watchdog:
                try:
                    if fresh and self._tls is not None:
                        conn.sock = self._tls.wrap_socket(conn.sock, server_hostname=self._host)
                    headers = {"Content-Type": "text/plain; charset=utf-8"} if body else {}
                    conn.request(method, self._prefix + path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read(MAX_BODY + 1)
                finally:
                    late = watchdog.fired  # whatever happened, the deadline came first
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if late:
                raise self._too_late() from None
            if isinstance(exc, _STALE):
                raise _Stale from None
            raise WitnessUnavailable(f"{self.url}: {exc}") from None
        if late or not response.isclosed() or conn.sock is None:
            self.close()  # cut short, not read to its end, or the witness said Connection: close
        if late:
            raise self._too_late()
        if len(data) > MAX_BODY:
            raise WitnessUnavailable(ERR_TOO_LARGE.format(url=self.url, limit=MAX_BODY))
        if response.length:
            raise WitnessUnavailable(f"{self.url}: the answer ended before its Content-Length")
        text = data.decode("utf-8", errors="replace")
        return response.status, response.getheader("Content-Type") or "", text

    def _too_late(self) -> WitnessUnavailable:
        return WitnessUnavailable(ERR_DEADLINE.format(url=self.url, s=self.timeout))

    def close(self) -> None:
        """Close the kept-alive connection (reopened on the next request)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def add_checkpoint(self, note: str, old_size: int, proof: Sequence[bytes]) -> Signature:
        """Submit a checkpoint; return the witness's verified cosignature.

        Parameters
        ----------
        note
            The checkpoint, a signed note.
        old_size
            The size the witness is believed to have cosigned last (0 if none).
        proof
            Consistency proof from ``old_size`` to the checkpoint's size (empty from 0).

        Raises
        ------
        WitnessConflict
            409: the witness last cosigned another size (its ``size``).
        WitnessRefused
            Any other error status.
        WitnessUnavailable
            Network failure or timeout.
        WitnessError
            The answer holds no cosignature that verifies under the witness's key.
        """
        body = format_add_checkpoint(old_size, proof, note)
        status, content_type, text = self._request("POST", ADD_CHECKPOINT_PATH, body)
        if status == 409 and content_type.startswith(CONTENT_TYPE_SIZE):
            try:
                raise WitnessConflict(int(text.strip()))
            except ValueError:
                raise WitnessRefused(409, text) from None
        if status != 200:
            raise WitnessRefused(status, text)
        checkpoint_text = parse_note(note).text
        try:
            opened = open_note(checkpoint_text + "\n" + text, [self.verifier])
        except NoteError as exc:
            raise WitnessError(f"{self.url}: no valid cosignature in the answer: {exc}") from None
        cosignature = opened.by(self.verifier)
        assert cosignature is not None  # open_note verified at least one, and only ours counts
        return cosignature

    def latest(self, origin: str) -> str | None:
        """Return the latest checkpoint the witness cosigned for ``origin``, or ``None``.

        The note is returned as served; verify it (log key and witness keys) before use.

        Raises
        ------
        WitnessRefused, WitnessUnavailable
            On an error status other than 404, or a network failure.
        """
        status, _, text = self._request("GET", f"/{origin_hash(origin)}/checkpoint")
        if status == 404:
            return None
        if status != 200:
            raise WitnessRefused(status, text)
        return text


def submit(
    client: WitnessClient,
    note: str,
    size: int,
    prove: Callable[[int], Sequence[bytes]],
    known_size: int = 0,
) -> Signature:
    """Have one witness cosign a checkpoint, catching it up from whatever it cosigned last.

    Parameters
    ----------
    client
        The witness.
    note
        The checkpoint (signed note) of tree size ``size``.
    size
        The checkpoint's tree size.
    prove
        ``prove(old_size)``: the consistency proof from ``old_size`` to ``size``.
    known_size
        The size this witness is believed to have cosigned last (a 409 corrects it).

    Returns
    -------
    Signature
        The witness's verified cosignature.

    Raises
    ------
    WitnessError
        If the witness refuses, is unreachable, or has cosigned a larger tree.
    """
    old = known_size if 0 <= known_size <= size else 0
    for _ in range(3):
        try:
            return client.add_checkpoint(note, old, prove(old) if old else [])
        except WitnessConflict as conflict:
            if conflict.size > size:
                raise WitnessRefused(409, ERR_AHEAD.format(size=conflict.size, ours=size)) from None
            old = conflict.size
    raise WitnessError(f"{client.url}: the witness's size kept changing")


@dataclass
class GatherResult:
    """What a round of cosigning produced.

    Attributes
    ----------
    cosignatures
        ``{witness name: verified cosignature}``.
    errors
        ``{witness name: why it did not cosign}``.
    """

    cosignatures: dict[str, Signature] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def gather(
    clients: Sequence[WitnessClient],
    note: str,
    size: int,
    prove: Callable[[int], Sequence[bytes]],
    known_sizes: dict[str, int] | None = None,
    *,
    timeout: float = 30.0,
) -> GatherResult:
    """Ask every witness to cosign, in parallel; never raises for a witness's failure.

    Parameters
    ----------
    clients
        The witnesses.
    note, size, prove
        See :func:`submit` (``prove`` must be safe to call from several threads).
    known_sizes
        ``{witness name: size it cosigned last}``.
    timeout
        Overall seconds to wait for all of them.

    Returns
    -------
    GatherResult
        Cosignatures and errors, by witness name.
    """
    known = known_sizes or {}
    result = GatherResult()
    if not clients:
        return result
    pool = ThreadPoolExecutor(max_workers=len(clients), thread_name_prefix="witness")
    try:
        futures = {
            pool.submit(submit, c, note, size, prove, known.get(c.name, 0)): c for c in clients
        }
        done, pending = wait(futures, timeout=timeout)
        for future in done:
            client = futures[future]
            try:
                result.cosignatures[client.name] = future.result()
            except Exception as exc:  # recorded per witness: one failure must not stop the rest
                result.errors[client.name] = str(exc) or type(exc).__name__
        for future in pending:
            result.errors[futures[future].name] = f"{futures[future].url}: no answer in time"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return result
