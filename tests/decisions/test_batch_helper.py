"""The batch helper: chunks built in a second process are the chunks this process builds, and
whatever happens to the helper, every row is decided exactly once."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from governance.decisions import batch_helper
from governance.decisions.batch_helper import ChunkHelper
from governance.decisions.service import DecisionService
from governance.ledger.canonical import encoder_for
from governance.settings import Settings

MODEL = "mortgage-denial"


@pytest.fixture(scope="module")
def frame(trained: tuple[Path, Settings]) -> pd.DataFrame:
    return pd.read_csv(trained[0] / "data/split/test.csv").iloc[:60]


def _score(service: DecisionService, frame: pd.DataFrame, *, helper: bool) -> list[str]:
    ids: list[str] = []
    for _, receipts, _, _ in service.score_frame(
        MODEL,
        frame,
        subject_column="application_id",
        alias="candidate",
        caller="test",
        purpose="helper",
        chunk=10,
        helper_rows=0 if helper else 10**9,
    ):
        ids += [r.id for r in receipts]
    return ids


def _records(service: DecisionService, ids: list[str]) -> list[tuple[str, bytes]]:
    """The decisions and their recourse events, in ledger order, with decision ids masked."""
    encode = encoder_for(service.ledger.canonical_format)
    out = []
    for i, decision_id in enumerate(ids):
        out.append(("decision", encode(service.ledger.get(decision_id).body)))
        for event in service.ledger.events_for(decision_id):
            body = {**event.body, "decision_id": i}
            out.append((event.type, encode(body)))
    return out


def _recourse_count(service: DecisionService, ids: list[str]) -> int:
    return sum(1 for d in ids for e in service.ledger.events_for(d) if e.type == "recourse")


def _helpers(monkeypatch: pytest.MonkeyPatch, *, started: bool = True) -> list[ChunkHelper]:
    """Every helper score_frame starts, kept for inspection (``started``: each waited for
    until it has started or failed, so that it is asked from the first chunk on)."""
    made: list[ChunkHelper] = []
    original = ChunkHelper.__init__

    def init(self: ChunkHelper, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if started:
            self.ready(timeout=120)
        made.append(self)

    monkeypatch.setattr(ChunkHelper, "__init__", init)
    return made


def _answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each ``take``, in order: whether the helper's chunk came back."""
    answered: list[bool] = []
    original = ChunkHelper.take

    def take(self: ChunkHelper, plan: object, at: int) -> object:
        built = original(self, plan, at)
        answered.append(built is not None)
        return built

    monkeypatch.setattr(ChunkHelper, "take", take)
    return answered


def _helper_runs(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Helpers run ``code`` (Python source) instead of their own loop."""
    monkeypatch.setattr(
        batch_helper.child_process, "command", lambda *_: [sys.executable, "-c", code]
    )


@pytest.mark.parametrize("in_memory", [True, False], ids=["memfd", "temporary-file"])
def test_chunks_built_by_the_helper_are_the_chunks_built_here(
    service: DecisionService,
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    in_memory: bool,
) -> None:
    if in_memory and not hasattr(os, "memfd_create"):
        pytest.skip("this system has no memfd_create: messages go through temporary files")
    if not in_memory:  # as on systems without memfd_create
        monkeypatch.delattr(os, "memfd_create", raising=False)
    made = _helpers(monkeypatch)
    answered = _answers(monkeypatch)
    here = _score(service, frame, helper=False)
    assert not made
    there = _score(service, frame, helper=True)
    assert len(made) == 1 and answered == [False] + [True] * 5  # the first chunk is built here
    assert len(set(there)) == len(there) == len(frame)
    assert _recourse_count(service, there) > 0  # denials and their recourse crossed too
    assert _records(service, there) == _records(service, here)
    assert service.ledger.verify(deep=True).ok  # canonical bytes, index columns from bodies


def test_a_helper_that_dies_mid_batch_loses_and_repeats_nothing(
    service: DecisionService,
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = _helpers(monkeypatch)
    original = ChunkHelper.take
    calls = []

    def take(self: ChunkHelper, plan: object, at: int) -> object:
        calls.append(at)
        if len(calls) == 3:  # the helper is killed while it builds the third chunk
            self._proc.kill()
        return original(self, plan, at)

    monkeypatch.setattr(ChunkHelper, "take", take)
    before = service.ledger.size()
    with caplog.at_level(logging.WARNING, logger=batch_helper.__name__):
        ids = _score(service, frame, helper=True)
    assert len(made) == 1 and not made[0].alive
    assert "building the rest here" in caplog.text
    assert len(set(ids)) == len(ids) == len(frame)
    bodies = [service.ledger.get(i).body for i in ids]
    assert [b["subject_key"] for b in bodies] == [
        service.ledger.subject_key(str(s)) for s in frame["application_id"]
    ]
    assert service.ledger.size() == before + len(frame) + _recourse_count(service, ids)
    assert service.ledger.verify().ok


def test_a_helper_that_cannot_start_leaves_the_batch_to_this_process(
    service: DecisionService,
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _helper_runs(monkeypatch, "import sys; sys.stderr.write('no luck'); sys.exit(3)")
    made = _helpers(monkeypatch)
    before = service.ledger.size()
    with caplog.at_level(logging.WARNING, logger=batch_helper.__name__):
        ids = _score(service, frame, helper=True)
    assert "did not start; building the rest here" in caplog.text and "no luck" in caplog.text
    assert len(made) == 1 and not made[0].alive
    assert len(set(ids)) == len(ids) == len(frame)
    assert service.ledger.size() == before + len(frame) + _recourse_count(service, ids)


def test_a_helper_still_starting_is_not_waited_for(
    service: DecisionService,
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A helper whose imports never end: the whole batch is built here, none of it waits."""
    _helper_runs(monkeypatch, "import sys; sys.stdin.read()")  # it never says it is ready
    made = _helpers(monkeypatch, started=False)
    answered = _answers(monkeypatch)
    before = service.ledger.size()
    result: list[list[str]] = []
    scoring = threading.Thread(
        target=lambda: result.append(_score(service, frame, helper=True)), daemon=True
    )
    scoring.start()
    scoring.join(timeout=120)  # a batch waiting for the helper would never end
    assert not scoring.is_alive()
    [ids] = result
    assert answered == [False] * 6
    assert len(made) == 1 and not made[0].alive  # ended with the batch
    assert len(set(ids)) == len(ids) == len(frame)
    assert service.ledger.size() == before + len(frame) + _recourse_count(service, ids)


def test_an_abandoned_batch_ends_its_helper(
    service: DecisionService, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _helpers(monkeypatch)
    chunks = service.score_frame(MODEL, frame, alias="candidate", chunk=10, helper_rows=0)
    done, receipts, _, _ = next(chunks)
    assert done == 10 and len(receipts) == 10
    pid = made[0]._proc.pid
    chunks.close()  # the caller stops reading: the helper building chunk 2 is not wanted
    assert not made[0].alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
