"""The bundle's README steps, done by hand: stdlib, ``openssl`` and ``tests/independent.py``.

Nothing of the package checks anything here; it only builds the ledger, the witness and the
bundle. This is what an outside auditor who trusts none of our code would do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from independent import ed25519_ok, node, note_signed_by

from governance.ledger import Entry, Ledger, open_store
from governance.ledger.checkpoint import verifier_key
from governance.transparency import WitnessConfig, publish, write_bundle
from governance.witness import Witness, WitnessHome, WitnessServer


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 Merkle tree hash, straight from its recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(_mth(leaves[:k]), _mth(leaves[k:]))


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[tuple[WitnessHome, str]]:
    home = WitnessHome.init(tmp_path / "w", "witness.example/by-hand")
    server = WitnessServer(("127.0.0.1", 0), Witness(home), quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield home, server.url
    server.shutdown()
    server.server_close()


def test_a_bundle_checks_out_by_hand(tmp_path: Path, witness: tuple[WitnessHome, str]) -> None:
    whome, url = witness
    state = tmp_path / "state"
    with Ledger.open(f"sqlite:///{state / 'ledger.db'}", home=state) as ledger:
        whome.add_log(verifier_key(ledger.origin, ledger.public_key))
        config = WitnessConfig()
        config.add(url, whome.vkey)
        ledger.append_many(
            [Entry("decision", {"n": i, "outcome": "deny"}, f"s{i}") for i in range(300)]
        )
        tiles = state / "tiles"
        assert publish(ledger, config, tiles_dir=tiles).published
        store = open_store(f"sqlite:///{state / 'ledger.db'}", create=False)
        try:
            write_bundle(
                tmp_path / "bundle",
                store=store,
                meta=store.meta(),
                public_key=ledger.public_key,
                folder=ledger.checkpoint_dir.path,
                config=config,
                tiles_dir=tiles,
            )
        finally:
            store.close()
    bundle = tmp_path / "bundle"

    # 2. records: leaf hashes, seq and prev links
    lines = (bundle / "records.jsonl").read_bytes().split(b"\n")[:-1]
    leaves, prev = [], "0" * 64
    for i, line in enumerate(lines):
        record = json.loads(line)
        assert record["seq"] == i and record["prev"] == prev
        leaf = hashlib.sha256(b"\x00" + line).digest()
        leaves.append(leaf)
        prev = leaf.hex()
    assert len(leaves) == 300

    # 3. the tree, and the level-0 tiles are the leaf hashes
    note = next((bundle / "cosigned").iterdir()).read_text()
    origin, size, root_b64 = note.split("\n")[:3]
    assert int(size) == 300 and base64.b64decode(root_b64) == _mth(leaves)
    tile0 = (bundle / "tiles" / "tile" / "0" / "000").read_bytes()
    tile1 = (bundle / "tiles" / "tile" / "0" / "001.p" / "44").read_bytes()
    assert tile0 + tile1 == b"".join(leaves)

    # 4. the log's signature and the witness's cosignature, by OpenSSL
    log_vkey = (bundle / "keys" / "log.vkey").read_text().strip()
    assert log_vkey.startswith(origin + "+")
    assert note_signed_by(note, log_vkey)
    witnesses = json.loads((bundle / "witnesses.json").read_text())
    assert witnesses["quorum"] == 1
    assert all(note_signed_by(note, w["vkey"]) for w in witnesses["witnesses"])

    # 4. the JSON tree heads, as the README says: the log key's signature of the same text
    raw_key = base64.b64decode(log_vkey.split("+", 2)[2])[1:]
    heads = sorted((bundle / "checkpoints").glob("*.json"))
    assert heads
    for path in heads:
        head = json.loads(path.read_text())
        root = base64.b64encode(bytes.fromhex(head["root"])).decode()
        text = f"{head['origin']}\n{head['size']}\n{root}\ntimestamp {head['timestamp']}\n"
        assert ed25519_ok(raw_key, text.encode(), bytes.fromhex(head["signature"])), path.name
        assert not ed25519_ok(
            raw_key, text.replace("\n", "\n ", 1).encode(), bytes.fromhex(head["signature"])
        )
    assert any(json.loads(p.read_text())["size"] == 300 for p in heads)

    # and a forged note fails the same checks
    forged = note.replace(root_b64, base64.b64encode(bytes(32)).decode())
    assert not note_signed_by(forged, log_vkey)
