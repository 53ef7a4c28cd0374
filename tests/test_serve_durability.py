"""A ``governance serve`` killed with SIGKILL under concurrent load loses no answered decision.

Eight clients post small ``/invocations`` requests at once, so that requests wait together and
are recorded in shared ledger transactions (``Dispatcher.run_together``). The server is killed
with SIGKILL at a random moment, several times; after each kill every decision it answered
(200, body read) is in the ledger, and the ledger verifies.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from support import ServeProcess, build_trained_project

from governance.ledger import Ledger
from governance.lifecycle.promotion import promote
from governance.service.auth import KeyStore
from governance.settings import Settings

MODEL = "mortgage-denial"
ALIAS = "champion"
KILLS = 4
CLIENTS = 8


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    root, settings = build_trained_project(tmp_path_factory.mktemp("serve-kill"))
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        promote(settings, ledger, MODEL, "1", approver="ann", reason="kill test")
    return root, settings


def _rows(root: Path) -> tuple[list[list[object]], list[str]]:
    """The held-out applications' model inputs (rows of plain values) and their columns."""
    test = pd.read_csv(root / "data/split/test.csv")
    inputs = test.drop(columns=["application_id", "deny", "afam", "single"])
    rows = [[v.item() if hasattr(v, "item") else v for v in row] for row in inputs.values]
    return rows, list(map(str, inputs.columns))


@pytest.mark.slow
def test_sigkill_under_concurrent_load_loses_no_answered_decision(
    project: tuple[Path, Settings],
) -> None:
    root, settings = project
    token = KeyStore.for_home(settings.home).create(f"kill-{uuid.uuid4().hex[:8]}", "scorer")
    rows, columns = _rows(root)
    rnd = random.Random(20261206)
    answered: dict[str, str] = {}  # decision id -> subject
    lock = threading.Lock()
    for kill in range(KILLS):
        server = ServeProcess(root, MODEL, ALIAS)
        server.wait_ready()
        dead = threading.Event()

        def client(k: int) -> None:
            sizes, n = random.Random(kill * 100 + k), 0  # noqa: B023
            with httpx.Client(base_url=server.url, timeout=30) as http:  # noqa: B023
                while not dead.is_set():  # noqa: B023
                    size = sizes.choice([1, 1, 2, 3])
                    subjects = [f"kill-{kill}-{k}-{n + i}" for i in range(size)]  # noqa: B023
                    doc = {
                        "dataframe_split": {
                            "columns": columns,
                            "data": [rows[(n + i * 7 + k) % len(rows)] for i in range(size)],
                        },
                        "params": {"subject_ids": subjects},
                    }
                    try:
                        r = http.post(
                            "/invocations", json=doc, headers={"Authorization": f"Bearer {token}"}
                        )
                        ids = r.json()["decision_ids"] if r.status_code == 200 else None
                    except (httpx.TransportError, ValueError):
                        return  # the server is gone (or died mid-answer: not acknowledged)
                    assert ids is not None, r.text
                    with lock:
                        answered.update(zip(ids, subjects, strict=True))
                    n += size

        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.5, 1.5))  # load for a while: the kill lands at a random moment
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
        dead.set()
        for t in threads:
            t.join(timeout=60)
        assert server.proc.returncode == -signal.SIGKILL
        with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
            for decision_id, subject in answered.items():
                record = ledger.get(decision_id)
                assert record is not None, f"answered decision {decision_id} lost (kill {kill})"
                assert record.body["subject_key"] == ledger.subject_key(subject)
            result = ledger.verify()
            assert result.ok, result
    assert len(answered) > KILLS * CLIENTS  # the clients were answered between the kills
    with Ledger.open(settings.ledger_url, home=settings.home) as ledger:
        assert ledger.verify(deep=True).ok
