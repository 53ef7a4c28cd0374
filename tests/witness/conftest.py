"""Fixtures for the witness tests: a small signed log, and witness homes that trust it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.ledger.merkle import MerkleTree
from governance.ledger.note import CheckpointBody, Signer, sign_note
from governance.witness import Witness, WitnessHome, WitnessServer


class Log:
    """A transparency log in memory: leaves, a Merkle tree and a signing key.

    Parameters
    ----------
    origin
        The log's origin (also its key name).
    salt
        Changes every leaf: two logs with other salts are two different histories.
    signer
        The log key (a new one by default).
    """

    def __init__(self, origin: str = "log.example/test", salt: bytes = b"", signer=None) -> None:
        self.origin = origin
        self.salt = salt
        self.signer: Signer = signer or Signer.generate(origin)
        self.tree = MerkleTree()

    @property
    def vkey(self) -> str:
        return self.signer.verifier().vkey

    def grow(self, size: int) -> None:
        """Append leaves until the tree has ``size`` of them."""
        self.tree.extend(
            [
                hashlib.sha256(b"\x00" + self.salt + b"%d" % i).digest()
                for i in range(self.tree.size, size)
            ]
        )

    def checkpoint(self, size: int, *, signers: list[Signer] | None = None) -> str:
        """The signed checkpoint note of the first ``size`` leaves."""
        self.grow(size)
        body = CheckpointBody(self.origin, size, self.tree.root(size))
        return sign_note(body.text(), [self.signer] if signers is None else signers)

    def proof(self, old: int, new: int) -> list[bytes]:
        self.grow(new)
        return self.tree.consistency_proof(old, new) if old else []


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def make_home(tmp_path: Path) -> Callable[..., WitnessHome]:
    """``make_home(log, name=...)``: a new witness home that witnesses ``log``."""
    count = 0

    def make(*logs: Log, name: str | None = None) -> WitnessHome:
        nonlocal count
        count += 1
        home = WitnessHome.init(tmp_path / f"witness{count}", name or f"witness.example/w{count}")
        for item in logs:
            home.add_log(item.vkey)
        return home

    return make


@pytest.fixture
def serve() -> Iterator[Callable[..., WitnessServer]]:
    """``serve(home, **options)``: the witness on a free port in a thread; stopped at teardown.

    ``options`` go to :class:`WitnessServer` (``quiet`` defaults to true).
    """
    servers: list[WitnessServer] = []

    def start(home: WitnessHome, **options: Any) -> WitnessServer:
        options.setdefault("quiet", True)
        server = WitnessServer(("127.0.0.1", 0), Witness(home), **options)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
