"""Sharded ledgers on PostgreSQL: routing, fences across shards, one checkpoint over all, and
the insider who rewrites one shard and re-signs it with the operator's key."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import subjects_per_shard

from governance.ledger import Entry, Fence, FenceError, Ledger, LedgerError
from governance.ledger.shards import (
    SHARD_HEADS,
    ShardedLedger,
    open_ledger,
    shard_schema,
    split_shards,
)

from .conftest import PG_URL, pg_unavailable

pytestmark = pytest.mark.postgres

K = 4


class Shards:
    """A fresh sharded ledger location (K schemas), dropped afterwards."""

    def __init__(self, root: Path) -> None:
        reason = pg_unavailable()
        if reason:
            pytest.skip(reason)
        self.schema = f"gl_shard_{uuid.uuid4().hex[:12]}"
        self.home = root / "home"
        self.base = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={self.schema}"
        self.opened: list[Any] = []

    def open(self, shards: int = K, home: Path | None = None) -> ShardedLedger:
        ledger = ShardedLedger.open(self.base, home=home or self.home, shards=shards)
        self.opened.append(ledger)
        return ledger

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """As the owner, with every shard's append-only triggers off (the insider)."""
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as pg, pg.transaction():
            schemas = [shard_schema(self.schema, i) for i in range(K)]
            for s in schemas:
                for table in ("records", "checkpoints", "meta"):
                    pg.execute(f"ALTER TABLE {s}.{table} DISABLE TRIGGER USER".encode())
            cur = pg.execute(statement.encode(), params)
            rows = cur.fetchall() if cur.description else []
            for s in schemas:
                for table in ("records", "checkpoints", "meta"):
                    pg.execute(f"ALTER TABLE {s}.{table} ENABLE TRIGGER USER".encode())
        return rows

    def cleanup(self) -> None:
        import psycopg

        for ledger in self.opened:
            ledger.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for i in range(8):
                conn.execute(f"DROP SCHEMA IF EXISTS {shard_schema(self.schema, i)} CASCADE")


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[Shards]:
    made = Shards(tmp_path)
    yield made
    made.cleanup()


def _decision(i: int, subject: str | None, version: str = "1") -> Entry:
    body = {"model": {"name": "m", "version": version}, "outcome": "approve", "n": i}
    return Entry("decision", body, subject)


def _promotion(version: str) -> Entry:
    body = {"model": {"name": "m", "version": version}, "alias": "champion", "action": "promote"}
    return Entry("promotion", body)


# -- the URL and the layout -----------------------------------------------------------------


def test_split_shards() -> None:
    assert split_shards("postgresql://h/db?schema=x&shards=4") == ("postgresql://h/db?schema=x", 4)
    assert split_shards("postgresql://h/db") == ("postgresql://h/db", 1)
    assert split_shards("sqlite:///tmp/l.db?shards=1") == ("sqlite:///tmp/l.db", 1)
    with pytest.raises(LedgerError, match="needs PostgreSQL"):
        split_shards("sqlite:///tmp/l.db?shards=2")
    for bad in ("0", "65", "two", "-1"):
        with pytest.raises(LedgerError, match=r"shards must be an integer in 1\.\.64"):
            split_shards(f"postgresql://h/db?shards={bad}")


def test_the_number_of_shards_is_fixed(shards: Shards) -> None:
    shards.open().append_many([_decision(0, "a")])
    with pytest.raises(LedgerError, match="has 4 shards, not 2"):
        shards.open(2)


def test_an_unsharded_ledger_with_records_is_not_resharded(shards: Shards) -> None:
    with Ledger.open(shards.base, home=shards.home) as plain:
        plain.append_many([_decision(0, "a")])
    with pytest.raises(LedgerError, match="cannot be resharded"):
        shards.open()


def test_open_ledger_picks_the_kind(shards: Shards) -> None:
    sharded = open_ledger(f"{shards.base}&shards={K}", home=shards.home)
    shards.opened.append(sharded)
    assert isinstance(sharded, ShardedLedger) and len(sharded.shards) == K


def test_what_reads_one_chain_refuses_a_sharded_ledger_by_name(
    shards: Shards, tmp_path: Path
) -> None:
    """A sharded URL given to what reads one chain (the MLflow mirror, monitoring, evidence
    packs) is refused in words, not with the driver's "invalid URI query parameter" or an
    evidence pack's "checkpoints kept changing"."""
    from governance.lifecycle.evidence import EvidenceError, build_evidence
    from governance.settings import Settings

    sharded = shards.open()
    sharded.append_many([_decision(i, f"s{i}") for i in range(8)])
    with pytest.raises(LedgerError, match=rf"names shards={K}: a sharded ledger"):
        Ledger.open(f"{shards.base}&shards={K}", home=shards.home)
    # shards=1 is one chain, as open_ledger reads it: the control shard's schema
    for one in ("1", "01"):
        with Ledger.open(f"{shards.base}&shards={one}", home=shards.home) as control:
            assert control.origin == sharded.control.origin
    for bad in ("0", "abc", ""):
        with pytest.raises(LedgerError, match=r"shards must be an integer in 1\.\.64"):
            Ledger.open(f"{shards.base}&shards={bad}", home=shards.home)
    settings = Settings.resolve(tmp_path, env={"GOVERNANCE_HOME": str(shards.home)})
    with pytest.raises(EvidenceError, match="this ledger is sharded: not supported yet"):
        build_evidence(settings, sharded, "m", "1", tmp_path / "pack.zip")
    assert sharded.total() == 8 and not list(tmp_path.glob("*.zip"))


def test_a_shard_of_another_ledger_is_refused(shards: Shards, tmp_path: Path) -> None:
    shards.open()
    # Replace shard 2 by a ledger of its own (same keys, another ledger id): a mix-up.
    import psycopg

    for ledger in shards.opened:
        ledger.close()
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        pg.execute(f"DROP SCHEMA {shard_schema(shards.schema, 2)} CASCADE".encode())
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={shard_schema(shards.schema, 2)}"
    with Ledger.open(url, home=shards.home) as other:
        other.store.init_meta({"shard_of": "0" * 32, "shard": "2"})
    with pytest.raises(LedgerError, match=r"is shard 2 of ledger 0+, not shard 2 of"):
        shards.open()


# -- routing ---------------------------------------------------------------------------------


def test_a_subject_lives_in_one_shard(shards: Shards) -> None:
    ledger = shards.open()
    # routing keys are HMACs under this ledger's own key: 20 fixed ids miss a shard in about 1
    # run of 80, so the 20 subjects are picked 5 to a shard (and listed shard by shard)
    subjects = subjects_per_shard(ledger, 20 // K, "subject-")
    receipts = ledger.append_many([_decision(i, subjects[i % 20]) for i in range(100)])
    used = [ledger.shard_of(r.id) for r in receipts]
    assert used[:20] == [s // (20 // K) for s in range(20)]  # each subject's records at home
    for s in range(20):
        subject = subjects[s]
        home = ledger.shard_for_subject(ledger.subject_key(subject))
        found = ledger.find(subject_id=subject)
        assert [r.body["n"] for r in found] == list(range(s, 100, 20))
        assert ledger.shards[home].find(subject_id=subject) == found
        for other in set(range(K)) - {home}:
            assert ledger.shards[other].find(subject_id=subject) == []
    assert ledger.total() == 100 and ledger.size() == ledger.shards[0].size()


def test_events_follow_their_decision(shards: Shards) -> None:
    ledger = shards.open()
    decision = Entry("decision", {"model": {"name": "m", "version": "1"}}, id=str(uuid.uuid4()))
    recourse = Entry("recourse", {"decision_id": decision.id, "recourse": {"changes": []}})
    first = ledger.append_many([decision, recourse])  # no subject: placed by the decision id
    later = ledger.append("outcome", {"decision_id": decision.id, "label": "repaid"})
    shard = ledger.shard_of(str(decision.id))
    assert {ledger.shard_of(r.id) for r in [*first, later]} == {shard}
    assert [r.type for r in ledger.events_for(str(decision.id))] == ["recourse", "outcome"]
    assert [r.id for r in ledger.find(ref=str(decision.id))] == [first[1].id, later.id]


def test_alias_moves_live_in_the_control_shard(shards: Shards) -> None:
    ledger = shards.open()
    receipt = ledger.append_many([_promotion("2")])[0]
    assert ledger.shard_of(receipt.id) == 0
    assert [r.id for r in ledger.find(type="promotion")] == [receipt.id]


def test_a_merged_find_is_in_time_order_and_pages(shards: Shards) -> None:
    ledger = shards.open()
    for i in range(30):
        ledger.append_many([_decision(i, f"p{i}")])
    whole = ledger.find(model="m", limit=30)
    assert [r.body["n"] for r in whole] == list(range(30))
    pages = [
        r.body["n"] for o in range(0, 30, 7) for r in ledger.find(model="m", limit=7, offset=o)
    ]
    assert pages == list(range(30))
    with pytest.raises(LedgerError, match="one seq per shard: pass shard="):
        ledger.find(model="m", after=3)
    assert [r.body["n"] for r in ledger.find(model="m", shard=1, after=-1, limit=30)] == [
        r.body["n"] for r in whole if ledger.shard_of(r.id) == 1
    ]


def test_pii_decodes_and_forget_erases_in_the_subjects_shard(shards: Shards) -> None:
    ledger = shards.open()
    r = ledger.append(
        "decision", {"model": {"name": "m", "version": "1"}}, subject_id="ann", pii={"name": "Ann"}
    )
    record = ledger.get(r.id)
    assert record is not None and ledger.decode(record)["body"]["pii"] == {"name": "Ann"}
    erasure = ledger.forget("ann", reason="request 7")
    assert ledger.shard_of(erasure.id) == ledger.shard_of(r.id)
    assert ledger.decode(record)["body"]["pii"] == "[erased]"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 9), st.booleans()), min_size=1, max_size=25))
def test_every_batch_lands_whole_and_findable(
    shards: Shards, batch: list[tuple[int, bool]]
) -> None:
    """Any batch: every record is found by id, a subject's records are in its shard in order."""
    ledger = shards.opened[0] if shards.opened else shards.open()
    tag = uuid.uuid4().hex[:8]
    entries = [_decision(n, f"{tag}-{s}" if named else None) for n, (s, named) in enumerate(batch)]
    receipts = ledger.append_many(entries)
    assert len(receipts) == len(entries)
    for entry, receipt in zip(entries, receipts, strict=True):
        record = ledger.get(receipt.id)
        assert record is not None and record.body == {
            **entry.body,
            **({"subject_key": ledger.subject_key(entry.subject_id)} if entry.subject_id else {}),
        }
    for s in {s for s, named in batch if named}:
        expected = [n for n, (t, named) in enumerate(batch) if named and t == s]
        assert [r.body["n"] for r in ledger.find(subject_id=f"{tag}-{s}")] == expected


# -- alias fences across shards ------------------------------------------------------------


@pytest.mark.parametrize("spread", [1, K], ids=["one-shard", "many-shards"])
def test_a_fence_across_shards_refuses_and_writes_nothing(shards: Shards, spread: int) -> None:
    """A stale answer writes nothing, whether the batch is in one shard or spans all."""
    ledger = shards.open()
    since = ledger.size()
    ledger.append_many([_promotion("2")])
    before = ledger.total()
    by_shard: dict[int, str] = {}  # one subject in each of `spread` shards (keys are random)
    for i in range(1000):
        by_shard.setdefault(ledger.shard_for_subject(ledger.subject_key(f"f{i}")), f"f{i}")
        if len(by_shard) == spread:
            break
    batch = [_decision(n, subject) for n, subject in enumerate(by_shard.values())]
    assert len(batch) == spread
    with pytest.raises(FenceError, match="an alias of model 'm' moved"):
        ledger.append_many(batch, fence=Fence("m", since))
    assert ledger.total() == before
    ledger.append_many(batch, fence=Fence("m", ledger.size()))  # a fresh answer goes through
    assert ledger.total() == before + spread
    assert {ledger.shard_of(r.id) for r in ledger.find(type="decision")} == set(by_shard)


def _waiting_advisory_locks() -> int:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as pg:
        row = pg.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_move_waits_for_a_batch_that_spans_shards(shards: Shards) -> None:
    """While a multi-shard batch is being written under its answer, no move can commit."""
    ledger = shards.open()
    done: list[Any] = []
    with ledger.control.store.moves_frozen() as frozen:  # type: ignore[attr-defined]
        frozen.check(Fence("m", 0))
        mover = threading.Thread(target=lambda: done.append(ledger.append_many([_promotion("3")])))
        mover.start()
        for _ in range(2000):  # until the server shows the move waiting on the lock
            if _waiting_advisory_locks():
                break
            mover.join(0.005)
        assert not done and mover.is_alive(), "the move committed under a frozen answer"
    mover.join(30)
    assert done and ledger.find(type="promotion")


@pytest.mark.parametrize("waiter", ["move", "fenced-append"])
def test_a_batch_across_shards_is_not_held_up_by_what_waits_for_it(
    shards: Shards, waiter: str
) -> None:
    """A fenced batch spanning shards holds the moves lock until every part is written.

    Meanwhile a move queues for that lock, and a fenced append queues behind the move. Each
    holds its store's connection (and, had it taken its chain lock first, that chain) while it
    waits. Had the batch written its parts through the stores' connections or waited for those
    chains, it would wait for them and they for it -- a cycle through the client that
    PostgreSQL cannot see, and all of them hang. The batch writes on its own connection, and
    every lock is taken moves first, then chain.
    """
    ledger = shards.open()
    occupied = 0 if waiter == "move" else 1  # the store whose connection the waiter holds
    results: dict[str, Any] = {}

    def run(name: str, call: Any) -> threading.Thread:
        def body() -> None:
            try:
                results[name] = call()
            except Exception as exc:  # a FenceError, once the move commits
                results[name] = exc

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread

    def until_waiting(n: int, thread: threading.Thread) -> None:
        for _ in range(2000):  # until the server shows n lock requests waiting
            if _waiting_advisory_locks() >= n:
                return
            thread.join(0.005)
        raise AssertionError(f"expected {n} waiting lock requests")

    since = ledger.size()
    subjects = subjects_per_shard(ledger, 2, "w")  # two in each shard, shard by shard
    batch = [_decision(n, subject) for n, subject in enumerate(subjects)]
    frozen = ledger.control.store.moves_frozen  # type: ignore[attr-defined]
    with frozen() as holding:  # the batch's lock, taken first so the others queue behind it
        holding.check(Fence("m", since))
        threads = [run("move", lambda: ledger.append_many([_promotion("4")]))]
        until_waiting(1, threads[0])
        if waiter == "fenced-append":
            entry = _decision(99, subjects[2])  # in shard 1
            threads.append(
                run(
                    "fenced", lambda: ledger.shards[1].append_many([entry], fence=Fence("m", since))
                )
            )
            until_waiting(2, threads[1])
        for shard in range(K):  # the batch's parts, as ShardedLedger.append_many writes them
            part = ledger.shards[shard].prepare(batch[2 * shard : 2 * shard + 2])
            store = ledger.shards[shard].store
            writer = run(f"part{shard}", lambda store=store, part=part: holding.append(store, part))
            writer.join(20)
            assert f"part{shard}" in results, f"shard {shard}'s part waits for the {waiter}"
        assert "move" not in results  # still held back
    for thread in threads:
        thread.join(30)
    assert not isinstance(results["move"], Exception), results
    if waiter == "fenced-append":
        assert isinstance(results["fenced"], FenceError), results  # the move came first
    assert ledger.shards[occupied].size() >= 2
    assert sorted(r.body["n"] for r in ledger.find(type="decision")) == list(range(2 * K))


# -- one checkpoint over every shard; verify; the insider -----------------------------------


def _filled(shards: Shards) -> tuple[ShardedLedger, list[Any]]:
    """80 decisions about 12 subjects, 3 in each shard (the routing key is the home's own)."""
    ledger = shards.open()
    subjects = subjects_per_shard(ledger, 3, "v")
    receipts = ledger.append_many([_decision(i, subjects[i % len(subjects)]) for i in range(80)])
    assert all(part.size() >= 18 for part in ledger.shards)
    return ledger, receipts


def test_the_control_checkpoint_commits_to_every_shard(shards: Shards) -> None:
    ledger, _ = _filled(shards)
    cp = ledger.checkpoint()
    heads = ledger.control.find(type=SHARD_HEADS)
    assert len(heads) == 1 and cp.size == ledger.control.size() == heads[0].seq + 1
    committed = ledger.committed_heads()
    assert sorted(committed) == list(range(1, K))
    for i in range(1, K):
        ((_, shard_cp),) = committed[i]
        assert (
            shard_cp.size == ledger.shards[i].size() and shard_cp.origin == ledger.shards[i].origin
        )
    result = ledger.verify()
    assert result.ok, result
    assert result.records == ledger.total() and result.checkpoints == K  # each counts once


def test_an_idle_shard_keeps_its_signed_head(shards: Shards) -> None:
    """A shard with nothing new is committed to again by the same checkpoint, not re-signed."""
    ledger, _ = _filled(shards)
    first = ledger.checkpoint()
    busy = subjects_per_shard(ledger, 1, "w")[1]  # one subject per shard, in shard order
    ledger.append_many([_decision(100 + i, busy) for i in range(3)])
    second = ledger.checkpoint()
    assert second.size > first.size
    committed = ledger.committed_heads()
    assert [len(committed[i]) for i in range(1, K)] == [2] * (K - 1)
    signed = {i: {cp for _, cp in committed[i]} for i in range(1, K)}
    assert len(signed[1]) == 2  # shard 1 grew: a new head
    for i in range(2, K):
        (cp,) = signed[i]  # the same signed head twice
        assert ledger.shards[i].checkpoints() == [cp] and cp.size == ledger.shards[i].size()
    result = ledger.verify()
    assert result.ok, result
    assert result.checkpoints == 2 + len(signed[1]) + (K - 2)  # each signed head counts once


def test_an_inclusion_proof_names_its_shard(shards: Shards) -> None:
    ledger, receipts = _filled(shards)
    proof = ledger.inclusion_proof(receipts[17].id)
    assert proof["verified"] and proof["shard"] == ledger.shard_of(receipts[17].id)
    assert proof["checkpoint"]["origin"] == ledger.shards[proof["shard"]].origin


def test_a_changed_record_names_its_shard(shards: Shards) -> None:
    ledger, _ = _filled(shards)
    ledger.checkpoint()
    shard = next(i for i in range(1, K) if ledger.shards[i].size() > 3)
    schema = shard_schema(shards.schema, shard)
    shards.sql(
        f"UPDATE {schema}.records SET data = convert_to(replace(convert_from(data, 'UTF8'),"
        " 'approve', 'denied!'), 'UTF8') WHERE seq = 2"
    )
    result = ledger.verify()
    assert not result.ok and result.shard == shard and result.first_bad == 2
    assert result.reason is not None and result.reason.startswith(f"shard {shard} ({schema}): ")


def test_an_insider_who_rewrites_a_shard_and_resigns_it_is_caught(
    shards: Shards, tmp_path: Path
) -> None:
    """The insider has the database and the operator's keys.

    They cut shard 2's tail, append other records in its place, wipe its stored and exported
    checkpoints and sign new ones with the operator's key. Shard 2 alone verifies; the
    sharded ledger does not, because the control shard committed to shard 2's old head.
    """
    ledger, _ = _filled(shards)
    ledger.checkpoint()
    target = 2
    victim = ledger.shards[target]
    size = victim.size()
    assert size > 4
    schema = shard_schema(shards.schema, target)
    shards.sql(f"DELETE FROM {schema}.records WHERE seq >= %s", (size - 3,))
    shards.sql(f"DELETE FROM {schema}.checkpoints")
    shutil.rmtree(victim.checkpoint_dir.path)
    for ledger_ in shards.opened:
        ledger_.close()
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    with Ledger.open(url, home=shards.home) as alone:  # the operator's keys, shard 2 alone
        alone.append_many([_decision(900 + i, None) for i in range(5)])
        alone.checkpoint()
        assert alone.verify().ok  # the rewrite is self-consistent
    result = shards.open().verify()
    assert not result.ok and result.shard == target, result
    assert "committed in the control shard's record" in (result.reason or "")
    assert "Merkle root mismatch" in (result.reason or "")


def test_a_truncated_shard_is_caught_by_the_control(shards: Shards) -> None:
    ledger, _ = _filled(shards)
    ledger.checkpoint()
    target = 3
    size = ledger.shards[target].size()
    schema = shard_schema(shards.schema, target)
    shards.sql(f"DELETE FROM {schema}.records WHERE seq >= %s", (size - 1,))
    shards.sql(f"DELETE FROM {schema}.checkpoints")
    shutil.rmtree(ledger.shards[target].checkpoint_dir.path)
    result = ledger.verify()
    assert not result.ok and result.shard == target
    assert (result.reason or "").startswith(f"shard {target} ({schema}): TRUNCATION")


def test_verify_reports_every_shard(shards: Shards, tmp_path: Path) -> None:
    ledger, _ = _filled(shards)
    seen: list[tuple[int, int]] = []
    result = ledger.verify(progress=lambda done, total: seen.append((done, total)))
    assert result.ok and seen == [(i, K) for i in range(1, K + 1)]
    assert [r["records"] for r in result.shards] == [s.size() for s in ledger.shards]
    assert result.to_dict()["shard"] is None


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_writes_every_shard(shards: Shards, tmp_path: Path, fmt: str) -> None:
    """`audit export` of a sharded ledger (it failed with a traceback): every shard's chain,
    shard 0 first, each record as stored; parquet names each record's shard."""
    import pandas as pd
    from typer.testing import CliRunner

    from governance.cli import app

    ledger, _ = _filled(shards)
    chains = [[r.data for r in part.iter_records()] for part in ledger.shards]
    out = tmp_path / f"all.{fmt}"
    env = {
        "GOVERNANCE_HOME": str(shards.home),
        "GOVERNANCE_LEDGER_URL": f"{shards.base}&shards={K}",
        "GOVERNANCE_MLFLOW_URI": None,
        "GOVERNANCE_PROJECT": None,
    }
    result = CliRunner().invoke(
        app, ["audit", "export", str(out), "--format", fmt, "--project", str(tmp_path)], env=env
    )
    assert result.exit_code == 0, result.output
    total = sum(map(len, chains))
    assert result.stdout == f"exported {total} records to {out}\n"
    if fmt == "jsonl":
        assert out.read_bytes() == b"".join(data + b"\n" for chain in chains for data in chain)
        return
    frame = pd.read_parquet(out)
    assert frame["shard"].tolist() == [i for i, chain in enumerate(chains) for _ in chain]
    assert [r.encode() for r in frame["record"]] == [data for chain in chains for data in chain]
    assert frame["seq"].tolist() == [seq for chain in chains for seq in range(len(chain))]
