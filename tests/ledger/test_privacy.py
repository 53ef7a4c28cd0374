"""Privacy: subject ids never stored, PII encrypted per subject, erasure by key destruction."""

from __future__ import annotations

import hmac
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.ledger import ERASED, Entry, Ledger, PiiError
from governance.ledger.privacy import KeyRing

Backend = Any  # tests/ledger/conftest.py:Backend (conftest modules are not importable)


def _canaries() -> tuple[str, str]:
    tag = uuid.uuid4().hex
    return f"CANARY-SUBJECT-{tag}", f"CANARY-PII-{tag}"


def _assert_absent(blob: bytes, *needles: str) -> None:
    for needle in needles:
        for encoded in (needle.encode("utf-8"), needle.encode("utf-16-le")):
            assert encoded not in blob, f"{needle!r} found at rest"


def test_canaries_never_at_rest(ledger: Ledger, backend: Backend) -> None:
    subject, secret = _canaries()
    first = ledger.append(
        "decision",
        {"outcome": "deny", "model": {"name": "m", "version": "1"}},
        subject_id=subject,
        pii={"name": secret, "race": "withheld", "nested": {"email": f"{secret}@example.com"}},
    )
    ledger.append_many(
        [
            Entry("decision", {"n": i}, subject_id=subject, pii={"name": secret, "i": i})
            for i in range(20)
        ]
    )
    ledger.append("outcome", {"decision_id": first.id, "actual": "repaid"}, subject_id=subject)
    ledger.checkpoint()
    record = ledger.get(first.id)
    assert record is not None
    assert record.body["subject_key"] == ledger.subject_key(subject)
    assert set(record.body["pii"]) == {"alg", "kid", "nonce", "ct"}
    assert ledger.decode(record)["body"]["pii"]["nested"] == {"email": f"{secret}@example.com"}
    assert len(ledger.find(subject_id=subject, limit=1000)) == 22
    _assert_absent(backend.at_rest(), subject, secret)


def test_subject_key_is_the_hmac_of_the_id(ledger: Ledger, backend: Backend) -> None:
    keys = KeyRing.load(backend.home / "keys", create=False)
    expected = hmac.new(keys.hmac_key, b"applicant-7", "sha256").hexdigest()
    assert ledger.subject_key("applicant-7") == expected
    assert len({ledger.subject_key(s) for s in ("a", "A", "a ")}) == 3  # no normalisation
    with pytest.raises(ValueError, match="non-empty string"):
        ledger.subject_key("")
    with pytest.raises(TypeError, match="non-empty string"):
        ledger.subject_key(None)  # type: ignore[arg-type]
    assert "KeyRing(hmac=" in repr(keys) and keys.hmac_key.hex() not in repr(keys)


_RING = KeyRing(hmac_key=os.urandom(32), kek=os.urandom(32))


@given(subject_ids=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5))
def test_subject_keys_are_the_hmac_whatever_was_keyed_before(subject_ids: list[str]) -> None:
    """Property: each subject key is HMAC-SHA256 of the id's UTF-8 under the ring's key, call
    after call (the keyed HMAC each one copies is never changed by a use)."""
    for sid in subject_ids:
        expected = hmac.new(_RING.hmac_key, sid.encode("utf-8"), "sha256").hexdigest()
        assert _RING.subject_key(sid) == expected
        assert _RING.subject_key(sid) == expected


def test_subject_keys_from_many_threads_at_once_are_each_their_own() -> None:
    ring = KeyRing(hmac_key=os.urandom(32), kek=os.urandom(32))
    ids = [f"applicant-{i}" for i in range(4000)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ring.subject_key, ids, chunksize=50))
    assert got == [hmac.new(ring.hmac_key, s.encode(), "sha256").hexdigest() for s in ids]


def test_forget_erases_pii_and_the_chain_still_verifies(ledger: Ledger, backend: Backend) -> None:
    subject, secret = _canaries()
    gone = [
        ledger.append("decision", {"n": i}, subject_id=subject, pii={"name": secret})
        for i in range(3)
    ]
    kept = ledger.append("decision", {"n": 9}, subject_id="other", pii={"name": "Other Person"})
    ledger.checkpoint()
    wrapped = backend.sql(
        f"SELECT wrapped FROM {backend.table('subject_keys')} WHERE subject_key = ?",
        (ledger.subject_key(subject),),
    )
    assert len(wrapped) == 1

    erasure = ledger.forget(subject, reason="GDPR request 2026-001")

    for receipt in gone:
        record = ledger.get(receipt.id)
        assert record is not None
        decoded = ledger.decode(record)
        assert decoded["body"]["pii"] == ERASED
        assert decoded["body"]["n"] == record.body["n"]  # the non-PII body is still there
    other = ledger.get(kept.id)
    assert other is not None and ledger.decode(other)["body"]["pii"] == {"name": "Other Person"}
    event = ledger.get(erasure.id)
    assert event is not None and event.type == "erasure"
    assert event.body == {
        "subject_key": ledger.subject_key(subject),
        "keys_destroyed": 1,
        "reason": "GDPR request 2026-001",
    }
    assert subject not in event.data.decode()
    assert [r.id for r in ledger.find(subject_id=subject, type="erasure")] == [erasure.id]
    result = ledger.verify()
    assert result.ok and result.records == 5 and result.checkpoints == 1
    assert ledger.verify(deep=True).ok
    # forget() already purged: SQLite checkpointed and truncated the WAL (secure_delete zeroed
    # the freed cells); PostgreSQL ran VACUUM on the key table. Purging again is harmless.
    assert ledger.store.purge()
    at_rest = backend.at_rest()
    _assert_absent(at_rest, subject, secret)
    assert bytes(wrapped[0][0]) not in at_rest  # the destroyed key is gone from every file
    # The subject may come back later: new PII gets a new key and stays readable.
    again = ledger.append("decision", {"n": 10}, subject_id=subject, pii={"name": "new"})
    record = ledger.get(again.id)
    assert record is not None and ledger.decode(record)["body"]["pii"] == {"name": "new"}
    old = ledger.get(gone[0].id)
    assert old is not None and ledger.decode(old)["body"]["pii"] == ERASED
    assert ledger.forget("never-seen").seq == 6


def test_pii_is_bound_to_its_record(ledger: Ledger) -> None:
    a = ledger.append("decision", {"n": 1}, subject_id="s", pii={"name": "A"})
    b = ledger.append("decision", {"n": 2}, subject_id="s", pii={"name": "B"})
    record_a, record_b = ledger.get(a.id), ledger.get(b.id)
    assert record_a is not None and record_b is not None
    assert record_a.body["pii"]["kid"] == record_b.body["pii"]["kid"]  # one key per subject
    moved = type(record_b)(
        **{**record_b.__dict__, "body": {**record_b.body, "pii": record_a.body["pii"]}}
    )
    with pytest.raises(PiiError):
        ledger.decode(moved)  # A's ciphertext does not decrypt as part of B's record


def test_keys_from_another_home_cannot_unwrap(
    ledger: Ledger, backend: Backend, tmp_path: Any
) -> None:
    ledger.append("decision", {}, subject_id="s", pii={"name": "x"})
    stranger = KeyRing.load(tmp_path / "stranger-keys")
    row = backend.sql(f"SELECT kid, subject_key, wrapped FROM {backend.table('subject_keys')}")[0]
    with pytest.raises(PiiError):
        stranger.unwrap(row[0], row[1], bytes(row[2]))
