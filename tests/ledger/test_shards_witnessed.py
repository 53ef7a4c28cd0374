"""A sharded ledger checked with public keys only, as an auditor runs it.

The control shard's checkpoint, cosigned by two witnesses in their own processes, commits to
every shard's signed head. ``governance audit verify --json`` (the real command line, with the
witness list, log key, note and tiles the auditor kept) walks every shard. The insider has the
database and the operator's keys: rewriting a shard and re-signing it contradicts the control
shard; rewriting the control shard too contradicts the witnesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import subjects_per_shard

from governance.ledger import Entry, Ledger
from governance.ledger.checkpoint import verifier_key
from governance.ledger.shards import SHARD_HEADS, ShardedLedger, shard_schema
from governance.transparency import WitnessConfig, publish

from .conftest import PG_URL, Backend, pg_unavailable
from .test_witnessed import (  # noqa: F401  (witnesses: the fixture)
    GOVERNANCE,
    WitnessProcess,
    auditors_copies,
    rewrite,
    witnesses,
)

pytestmark = pytest.mark.postgres

K = 3
SUBJECTS = 30


class ShardView(Backend):
    """Privileged SQL on one shard's schema (the insider's access), via :class:`Backend`."""

    def __init__(self, root: Path, schema: str) -> None:
        super().__init__("postgres", root)
        self.schema = schema
        self.url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"

    def cleanup(self) -> None:  # the scene drops every schema
        for ledger in self._opened:
            ledger.close()


class ShardedScene:
    """A sharded ledger published twice to two witnesses, and what an auditor kept of it."""

    def __init__(self, kept: list[WitnessProcess], root: Path) -> None:
        reason = pg_unavailable()
        if reason:
            pytest.skip(reason)
        self.root = root
        self.schema = f"gl_skf_{uuid.uuid4().hex[:12]}"
        self.base = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={self.schema}"
        self.home = root / "home"
        self.views: list[ShardView] = []
        self.ledger = ShardedLedger.open(self.base, home=self.home, shards=K)
        vkey = verifier_key(self.ledger.origin, self.ledger.public_key)
        self.config = WitnessConfig()
        for w in kept:
            w.home.add_log(vkey)
            w.start()
            self.config.add(w.url, w.home.vkey)
        self.config.quorum = 2
        self.config.save(self.home / "witnesses.json")
        self.tiles = self.home / "tiles" / self.ledger.ledger_id
        self.ledger.append_many(
            [
                Entry(
                    "decision",
                    {"model": {"name": "hmda", "version": "1"}, "outcome": _outcome(i), "n": i},
                    subject_id=f"applicant-{i}",
                )
                for i in range(SUBJECTS)
            ]
        )
        first = publish(self.ledger, self.config, tiles_dir=self.tiles)
        assert first.published, first.errors
        self.auditor = auditors_copies(root / "auditor", first, self.home, self.tiles)
        # Six more in shards 0 and 1: shard 2 stays idle, and keeps its signed head.
        later = subjects_per_shard(self.ledger, 3, "s")[: 2 * 3]
        self.ledger.append_many(
            [
                Entry("decision", {"model": {"name": "hmda", "version": "1"}, "n": n}, subject)
                for n, subject in enumerate(later, 100)
            ]
        )
        assert publish(self.ledger, self.config, tiles_dir=self.tiles).published

    def view(self, shard: int) -> ShardView:
        made = ShardView(self.root / f"view{len(self.views)}", shard_schema(self.schema, shard))
        self.views.append(made)
        return made

    def run(self, *args: str, url: str | None = None) -> tuple[int, dict[str, Any]]:
        """``governance <args> --json`` against this ledger; (exit code, JSON)."""
        env = {
            **os.environ,
            "GOVERNANCE_HOME": str(self.home),
            "GOVERNANCE_LEDGER_URL": url or f"{self.base}&shards={K}",
        }
        done = subprocess.run(
            [GOVERNANCE, *args, "--json"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    def verify(self, url: str | None = None, *, bundle: Path | None = None) -> tuple[int, Any]:
        """``governance audit verify`` with what the auditor kept (of the ledger, or a bundle)."""
        return self.run(
            *("audit", "verify"),
            *("--witnesses", str(self.auditor / "witnesses.json")),
            *("--public-key", str(self.auditor / "log.pub")),
            *("--tiles", str(self.auditor / "tiles")),
            *("--checkpoint-note", str(self.auditor / "first.note")),
            *(("--bundle", str(bundle)) if bundle is not None else ()),
            url=url,
        )

    def cleanup(self) -> None:
        import psycopg

        self.ledger.close()
        for view in self.views:
            view.cleanup()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for i in range(K):
                conn.execute(f"DROP SCHEMA IF EXISTS {shard_schema(self.schema, i)} CASCADE")


def _outcome(i: int) -> str:
    return "deny" if i % 3 == 1 else "approve"


@pytest.fixture
def scene(witnesses: list[WitnessProcess], tmp_path: Path) -> Iterator[ShardedScene]:  # noqa: F811
    made = ShardedScene(witnesses, tmp_path)
    yield made
    made.cleanup()


def _a_denial(ledger: ShardedLedger) -> tuple[int, int]:
    """A shard other than the control and the seq of a denial in it."""
    for i in range(1, K):
        for record in ledger.shards[i].find(type="decision", limit=1000):
            if record.body.get("outcome") == "deny":
                return i, record.seq
    raise AssertionError("no denial outside the control shard")


def _deny_to_approve(body: dict[str, Any]) -> None:
    assert body["outcome"] == "deny"
    body["outcome"] = "approve"


def test_an_honest_sharded_ledger_verifies_with_public_keys_only(scene: ShardedScene) -> None:
    code, doc = scene.verify()
    assert code == 0, doc
    assert doc["records"] == scene.ledger.total() and doc["shard"] is None
    assert [s["shard"] for s in doc["shards"]] == list(range(K))
    assert [s["records"] for s in doc["shards"]] == [s.size() for s in scene.ledger.shards]
    assert all(s["ok"] for s in doc["shards"])
    assert doc["witnessed_size"] == scene.ledger.control.size()
    assert doc["cosignatures"] == ["witness.example/w1", "witness.example/w2"]
    # Every shard of the layout is walked, whether or not the URL names the count...
    code, plain = scene.verify(scene.base)
    assert code == 0 and [s["shard"] for s in plain["shards"]] == list(range(K)), plain
    # ...and a URL that names another count is refused rather than half-checked.
    code, wrong = scene.verify(f"{scene.base}&shards=2")
    assert code == 2 and f"has {K} shard(s)" in wrong["reason"], wrong


def test_a_shard_rewritten_and_re_signed_contradicts_the_control(scene: ShardedScene) -> None:
    """Deny -> approve in one shard, its chain recomputed, its checkpoints re-signed."""
    shard, seq = _a_denial(scene.ledger)
    victim = scene.ledger.shards[shard]
    exported = victim.checkpoint_dir.path
    scene.ledger.close()
    view = scene.view(shard)
    rewrite(view, seq, _deny_to_approve)
    view.sql(f"DELETE FROM {view.table('checkpoints')}", bypass=True)
    shutil.rmtree(exported)
    with Ledger.open(view.url, home=scene.home) as alone:  # the operator's keys, one shard
        alone.checkpoint()
        assert alone.verify().ok  # the rewritten shard is self-consistent
    code, doc = scene.verify()
    assert code == 1 and doc["shard"] == shard, doc
    assert doc["reason"].startswith(f"shard {shard} ({view.schema}): "), doc
    assert "committed in the control shard's record" in doc["reason"]
    assert "Merkle root mismatch" in doc["reason"]
    assert [s["ok"] for s in doc["shards"]] == [True] * shard + [False]


def test_erasing_the_controls_commitment_contradicts_the_witnesses(scene: ShardedScene) -> None:
    """The insider also rewrites the control shard so it no longer commits to the shard.

    Every ``shard_heads`` record loses its entry for the rewritten shard and the control chain
    is recomputed. The witnesses refuse the new control head, and the auditor's tiles name the
    first record the insider changed.
    """
    shard, seq = _a_denial(scene.ledger)
    heads = [r.seq for r in scene.ledger.control.find(type=SHARD_HEADS)]
    assert len(heads) == 2
    for path in (scene.ledger.shards[shard].checkpoint_dir.path, scene.tiles):
        shutil.rmtree(path)
    scene.ledger.close()
    target = scene.view(shard)
    rewrite(target, seq, _deny_to_approve)
    target.sql(f"DELETE FROM {target.table('checkpoints')}", bypass=True)
    control = scene.view(0)

    def drop_entry(body: dict[str, Any]) -> None:
        body["shards"] = [s for s in body["shards"] if s["shard"] != shard]

    for head in heads:
        rewrite(control, head, drop_entry)
    control.sql(f"DELETE FROM {control.table('checkpoints')}", bypass=True)
    shutil.rmtree(scene.home / "checkpoints" / scene.ledger.ledger_id)
    with ShardedLedger.open(scene.base, home=scene.home, shards=K) as forged:
        assert forged.verify().ok  # the operator's own key-holding check is fooled...
        assert not publish(forged, scene.config, tiles_dir=scene.tiles).published
    code, doc = scene.verify()
    assert code == 1 and doc["shard"] == 0, doc  # ...the witnesses are not
    assert doc["first_bad"] == heads[0], doc
    assert doc["reason"].startswith(f"shard 0 ({scene.schema}): "), doc


def test_hiding_the_shards_by_editing_the_shard_count_is_caught(scene: ShardedScene) -> None:
    """The insider removes the shard count from the control shard's metadata.

    A verifier given the plain URL would then check the control shard alone; but its verified
    ``shard_heads`` records commit to the other shards, which the metadata no longer admits.
    """
    scene.ledger.close()
    control = scene.view(0)
    control.sql(f"DELETE FROM {control.table('meta')} WHERE key = 'shards'", bypass=True)
    code, doc = scene.verify(scene.base)
    assert code == 1, doc
    assert "commit to shard(s) 1, 2, but its metadata says it has 1 shard(s)" in doc["reason"]
    code, doc = scene.verify()  # the auditor who names the count cannot be given fewer
    assert code == 2 and f"says shards={K}, the ledger has 1 shard(s)" in doc["reason"], doc


def test_a_sharded_ledger_bundles_and_verifies_offline(scene: ShardedScene) -> None:
    """``audit bundle`` writes every shard; ``audit verify --bundle`` checks them all."""
    out = scene.root / "bundle"
    code, made = scene.run("audit", "bundle", str(out))
    assert code == 0 and made["shards"] == K, made
    assert made["records"] == scene.ledger.total() - made["not_bundled"]
    for i in range(1, K):
        shard = json.loads((out / "shards" / str(i) / "ledger.json").read_text())
        assert shard["shard"] == i and shard["shard_of"] == scene.ledger.ledger_id
        assert shard["ledger_id"] == scene.ledger.shards[i].ledger_id
    code, doc = scene.verify(bundle=out)
    assert code == 0, doc
    assert [s["shard"] for s in doc["shards"]] == list(range(K))
    assert doc["records"] == made["records"] and doc["witnessed_size"] is not None
    assert doc["checkpoints"] == made["checkpoints"]  # committed and bundled count once
    assert f"A sharded ledger: {K} chains" in (out / "README.md").read_text()
    assert "Shard 2 of ledger" in (out / "shards" / "2" / "README.md").read_text()
    # A bundle that hides its shards (the count removed from ledger.json) is refused...
    doc_path = out / "ledger.json"
    plain = json.loads(doc_path.read_text())
    del plain["shards"]
    doc_path.write_text(json.dumps(plain))
    code, doc = scene.verify(bundle=out)
    assert code == 1 and "commit to shard(s) 1, 2" in doc["reason"], doc
    # ...and so is one whose shard folder is gone.
    plain["shards"] = K
    doc_path.write_text(json.dumps(plain))
    shutil.rmtree(out / "shards" / "2")
    code, doc = scene.verify(bundle=out)
    assert code == 1 and doc["shard"] == 2 and "shards/2" in doc["reason"], doc


def test_a_bundle_of_a_rewritten_shard_contradicts_the_control(scene: ShardedScene) -> None:
    """The insider rewrites a shard, re-signs it with the operator's key, then bundles."""
    shard, seq = _a_denial(scene.ledger)
    exported = scene.ledger.shards[shard].checkpoint_dir.path
    scene.ledger.close()
    view = scene.view(shard)
    rewrite(view, seq, _deny_to_approve)
    view.sql(f"DELETE FROM {view.table('checkpoints')}", bypass=True)
    shutil.rmtree(exported)
    with Ledger.open(view.url, home=scene.home) as alone:
        alone.checkpoint()
    out = scene.root / "forged-bundle"
    code, made = scene.run("audit", "bundle", str(out))
    assert code == 0, made
    code, doc = scene.verify(bundle=out)
    assert code == 1 and doc["shard"] == shard, doc
    assert doc["reason"].startswith(f"shard {shard} (shards/{shard}): "), doc
    assert "committed in the control shard's record" in doc["reason"]
