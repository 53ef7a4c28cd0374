"""Talking to witnesses: submit checkpoints with consistency proofs, fetch cosigned ones.

>>> client = WitnessClient("http://127.0.0.1:8099", "w1+1a2b3c4d+BA...")
>>> cosignature = submit(client, note, size, prove, known_size=0)   # a verified Signature
>>> client.latest(origin)                                           # cosigned note or None

:func:`gather` asks several witnesses at once, each in its own thread with a timeout, and
returns the cosignatures it got and why the others failed. Nothing here holds a secret: a
witness's answer is only accepted once its cosignature verifies under the configured key.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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


class WitnessClient:
    """One witness: its URL and the key its cosignatures must verify under.

    Parameters
    ----------
    url
        The witness's URL prefix (``http://host:port`` or with a path prefix).
    vkey
        Its verifier key (type 0x04), or a :class:`Verifier`.
    timeout
        Seconds to wait for connecting and for each answer.
    """

    def __init__(self, url: str, vkey: str | Verifier, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(ERR_BAD_URL.format(url=url))
        verifier = parse_verifier_key(vkey) if isinstance(vkey, str) else vkey
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise ValueError(ERR_NOT_A_WITNESS_KEY.format(vkey=verifier.vkey))
        self.url = url.rstrip("/")
        self.verifier = verifier
        self.timeout = timeout
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The witness's name (its key name)."""
        return self.verifier.name

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str, str]:
        """Send one request over the kept-alive connection; retry once on a stale one."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    headers = {"Content-Type": "text/plain; charset=utf-8"} if body else {}
                    conn.request(method, self._prefix + path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read().decode("utf-8", errors="replace")
                    return response.status, response.getheader("Content-Type") or "", data
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    self.close()
                    if attempt == 2:
                        raise WitnessUnavailable(f"{self.url}: connection closed") from None
                except (OSError, http.client.HTTPException) as exc:
                    self.close()
                    raise WitnessUnavailable(f"{self.url}: {exc}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the kept-alive connection (reopened on the next request)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
