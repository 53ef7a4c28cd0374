"""The witness's rules (C2SP tlog-witness add-checkpoint) and its storage, without HTTP.

Every status code of the spec is produced from a real signed checkpoint. Only a refused checkpoint
that proves the log misbehaved -- signed by the log, the size the witness cosigned, another root
(a fork) -- is kept as evidence, with the note it contradicts; a stale or badly proven one, which
anyone can submit from published checkpoints, is refused and not kept.
"""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from governance.ledger.merkle import EMPTY_ROOT
from governance.ledger.note import (
    ALG_COSIGNATURE_V1,
    CheckpointBody,
    Signer,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_note,
)
from governance.witness import Witness, WitnessHome, origin_hash
from governance.witness.protocol import format_add_checkpoint
from governance.witness.store import ERR_LOG_CONFLICT

Log = Any  # tests/witness/conftest.py:Log


def _add(witness: Witness, log: Log, old: int, size: int, proof: list[bytes] | None = None):
    note = log.checkpoint(size)
    return witness.add_checkpoint(
        format_add_checkpoint(old, log.proof(old, size) if proof is None else proof, note)
    )


def _cosigned_size(home: WitnessHome, log: Log) -> int | None:
    note = home.latest(log.origin)
    if note is None:
        return None
    opened = open_note(note, [log.signer.verifier(), home.verifier])
    assert len(opened.verified) == 2  # the log's signature and the witness's cosignature
    return parse_checkpoint(opened.text).size


# -- the home directory -------------------------------------------------------------------


def test_init_creates_a_private_key_and_refuses_to_replace_it(tmp_path: Path) -> None:
    home = WitnessHome.init(tmp_path / "w", "witness.example/w1")
    assert stat.S_IMODE((tmp_path / "w" / "key.pem").stat().st_mode) == 0o600
    assert home.vkey.startswith("witness.example/w1+")
    assert home.verifier.alg == ALG_COSIGNATURE_V1
    assert (tmp_path / "w" / "witness.vkey").read_text() == home.vkey + "\n"
    with pytest.raises(ValueError, match="already holds a witness"):
        WitnessHome.init(tmp_path / "w", "witness.example/w2")
    assert WitnessHome(tmp_path / "w").vkey == home.vkey
    with pytest.raises(ValueError, match="not a witness home"):
        WitnessHome(tmp_path / "nothing")
    with pytest.raises(ValueError, match="invalid witness name"):
        WitnessHome.init(tmp_path / "x", "has space")


def test_logs_are_configured_explicitly(make_home: Callable[..., WitnessHome], log: Log) -> None:
    home = make_home()
    assert home.logs() == {}
    assert home.add_log(log.vkey) == log.origin
    assert home.add_log(log.vkey) == log.origin  # idempotent
    assert home.logs() == {log.origin: log.signer.verifier()}
    with pytest.raises(ValueError, match=ERR_LOG_CONFLICT.split("{")[0]):
        home.add_log(Signer.generate(log.origin).verifier().vkey)
    with pytest.raises(ValueError, match="type 0x01"):
        home.add_log(Signer.generate("w", ALG_COSIGNATURE_V1).verifier().vkey)
    with pytest.raises(ValueError):
        home.add_log("not a key")


# -- add-checkpoint -----------------------------------------------------------------------


def test_cosigns_a_growing_log(make_home: Callable[..., WitnessHome], log: Log) -> None:
    home = make_home(log)
    witness = Witness(home)
    first = _add(witness, log, 0, 10)
    assert first.status == 200, first.body
    assert first.body.startswith("\u2014 witness.example/w1 ")
    text = parse_note(log.checkpoint(10)).text
    assert open_note(text + "\n" + first.body, [home.verifier]).verified
    assert _cosigned_size(home, log) == 10
    for old, new in [(10, 11), (11, 64), (64, 64), (64, 1000)]:
        reply = _add(witness, log, old, new)
        assert reply.status == 200, reply.body
        assert _cosigned_size(home, log) == new
    assert home.evidence() == []


def test_wrong_old_size_gets_409_with_the_latest_size(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    witness = Witness(make_home(log))
    assert _add(witness, log, 0, 7).status == 200
    for old in (0, 3, 8):
        reply = _add(witness, log, old, 9)
        assert (reply.status, reply.body, reply.content_type) == (409, "7\n", "text/x.tlog.size")


def test_fork_at_the_same_size_is_refused_and_kept(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert _add(witness, log, 0, 20).status == 200
    fork = type(log)(log.origin, b"other history", log.signer)
    reply = _add(witness, fork, 20, 20)
    assert reply.status == 422
    assert "fork" in reply.body
    assert _cosigned_size(home, log) == 20
    (kept,) = home.evidence()
    assert kept.previous == home.latest(log.origin)
    assert parse_checkpoint(parse_note(kept.submitted).text).root == fork.tree.root(20)
    assert parse_checkpoint(parse_note(kept.previous).text).root == log.tree.root(20)
    assert kept.reason.startswith("fork")


def test_fork_that_grows_is_refused_for_lack_of_a_valid_proof(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert _add(witness, log, 0, 20).status == 200
    fork = type(log)(log.origin, b"other history", log.signer)
    # The forked log's own proof from 20 is a proof about *its* tree: it cannot match ours.
    reply = _add(witness, fork, 20, 30)
    assert reply.status == 422 and reply.body.startswith("inconsistent")
    # Not evidence: a genuine checkpoint with a junk proof looks the same (the submitter, not
    # the log, supplies the proof). The fork shows once the log signs size 20 twice.
    assert home.evidence() == []
    assert _cosigned_size(home, log) == 20


def test_a_bad_proof_is_refused_but_not_kept(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert _add(witness, log, 0, 5).status == 200
    reply = _add(witness, log, 5, 20, proof=[bytes(32)])
    assert (reply.status, reply.body) == (
        422,
        "inconsistent: the consistency proof from the cosigned size 5 to 20 does not verify\n",
    )
    assert home.evidence() == []
    assert _add(witness, log, 5, 20).status == 200  # the same checkpoint, with the real proof


def test_rollback_is_refused_but_not_kept(make_home: Callable[..., WitnessHome], log: Log) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert _add(witness, log, 0, 50).status == 200
    truncated = type(log)(log.origin, b"truncated and re-signed", log.signer)
    for submitted in (truncated, log):  # a smaller tree proves nothing: it may be an old one
        reply = _add(witness, submitted, 0, 30)
        assert (reply.status, reply.body) == (409, "50\n")
        assert _add(witness, submitted, 50, 30, proof=[]).status == 400
    assert home.evidence() == []
    assert _cosigned_size(home, log) == 50


def test_a_fork_is_kept_whatever_old_size_comes_with_it(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert _add(witness, log, 0, 20).status == 200
    fork = type(log)(log.origin, b"other history", log.signer)
    assert _add(witness, fork, 0, 20).status == 422
    assert _add(witness, fork, 20, 20).status == 422  # the same note: kept once
    (kept,) = home.evidence()
    assert kept.reason.startswith("fork")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n",
        b"old 01\n\nx\n",
        b"old -1\n\nx\n",
        b"new 0\n\nx\n",
        b"old 0\nnot base64!\n\nx\n",
        b"old 0\nAAAA\n\nx\n",  # not 32 bytes
        b"\xff\xfe",
        b"old 0\n\nno signatures\n",
        b"old 0\n\n" + "\n".join(["AAAA"] * 3).encode(),
    ],
)
def test_malformed_requests_get_400(
    make_home: Callable[..., WitnessHome], log: Log, body: bytes
) -> None:
    home = make_home(log)
    assert Witness(home).add_checkpoint(body).status == 400
    assert home.latest(log.origin) is None


def test_too_many_proof_lines_get_400(make_home: Callable[..., WitnessHome], log: Log) -> None:
    note = log.checkpoint(5).encode()
    body = b"old 1\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\n" + note
    assert Witness(make_home(log)).add_checkpoint(body).status == 400


def test_old_size_above_the_checkpoint_gets_400(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    assert _add(Witness(make_home(log)), log, 9, 5, proof=[]).status == 400


def test_unknown_log_gets_404_and_nothing_is_kept(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home()  # trusts no log
    reply = _add(Witness(home), log, 0, 5)
    assert reply.status == 404
    assert home.evidence() == [] and home.latest(log.origin) is None


def test_bad_or_missing_log_signature_gets_403(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    home = make_home(log)
    witness = Witness(home)
    impostor = type(log)(log.origin, b"", Signer.generate(log.origin))  # same name, other key
    assert _add(witness, impostor, 0, 5).status == 403
    note = log.checkpoint(5)
    lines = note.split("\n")
    sig = lines[-2]
    broken = "\n".join([*lines[:-2], sig[:-8] + ("A" if sig[-8] != "A" else "B") + sig[-7:], ""])
    reply = witness.add_checkpoint(format_add_checkpoint(0, [], broken))
    assert reply.status == 403 and "bad log signature" in reply.body
    assert home.evidence() == [] and home.latest(log.origin) is None


def test_empty_tree_must_have_the_empty_root(
    make_home: Callable[..., WitnessHome], log: Log
) -> None:
    witness = Witness(make_home(log))
    bad = sign_note(CheckpointBody(log.origin, 0, bytes(32)).text(), [log.signer])
    assert witness.add_checkpoint(format_add_checkpoint(0, [], bad)).status == 422
    good = sign_note(CheckpointBody(log.origin, 0, EMPTY_ROOT).text(), [log.signer])
    assert witness.add_checkpoint(format_add_checkpoint(0, [], good)).status == 200


def test_a_proof_from_zero_is_refused(make_home: Callable[..., WitnessHome], log: Log) -> None:
    witness = Witness(make_home(log))
    reply = _add(witness, log, 0, 8, proof=[bytes(32)])
    assert reply.status == 422


def test_foreign_signatures_are_not_stored(make_home: Callable[..., WitnessHome], log: Log) -> None:
    home = make_home(log)
    stranger = Signer.generate("someone.else/key")
    note = sign_note(parse_note(log.checkpoint(4)), [stranger])
    assert Witness(home).add_checkpoint(format_add_checkpoint(0, [], note)).status == 200
    stored = parse_note(home.latest(log.origin) or "")
    assert [s.name for s in stored.signatures] == [log.origin, home.name]


def test_latest_checkpoint_by_origin_hash(make_home: Callable[..., WitnessHome], log: Log) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert witness.checkpoint(origin_hash(log.origin)).status == 404
    _add(witness, log, 0, 3)
    reply = witness.checkpoint(origin_hash(log.origin))
    assert reply.status == 200 and reply.body == home.latest(log.origin)
    assert witness.checkpoint("../../etc/passwd").status == 404


# -- atomicity ----------------------------------------------------------------------------


def test_concurrent_submissions_never_move_the_state_backwards(
    make_home: Callable[..., WitnessHome], log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(log)
    witness = Witness(home)
    log.grow(400)
    committed: list[int] = []
    real_commit = home.commit

    def commit(origin: str, note: str) -> None:
        committed.append(parse_checkpoint(parse_note(note).text).size)
        real_commit(origin, note)

    monkeypatch.setattr(home, "commit", commit)
    accepted: list[int] = []

    def client(sizes: range) -> None:
        known = 0
        for size in sizes:
            for _ in range(5):
                reply = _add(witness, log, known, size) if known <= size else None
                if reply is None:
                    break
                if reply.status == 409:
                    known = int(reply.body)
                    continue
                if reply.status == 200:
                    accepted.append(size)
                break

    threads = [threading.Thread(target=client, args=(range(k, 400, 7),)) for k in range(1, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert committed == sorted(committed)
    assert accepted and _cosigned_size(home, log) == max(accepted) == committed[-1]


def test_a_crash_before_the_state_is_stored_hands_out_no_cosignature(
    make_home: Callable[..., WitnessHome], log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(log)
    witness = Witness(home)
    assert _add(witness, log, 0, 5).status == 200
    before = home.latest(log.origin)

    def die(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("governance.witness.store.os.replace", die)
    with pytest.raises(OSError):
        _add(witness, log, 5, 9)
    assert home.latest(log.origin) == before
    state_dir = home.path / "state"
    assert [p.name for p in state_dir.iterdir()] == [f"{origin_hash(log.origin)}.note"]
    assert json.loads((home.path / "witness.json").read_text())["name"] == home.name
