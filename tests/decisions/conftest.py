"""What the decision tests share: a decision service over the session's trained project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.decisions.service import DecisionService
from governance.settings import Settings


@pytest.fixture(scope="module")
def service(trained: tuple[Path, Settings]) -> Iterator[DecisionService]:
    """A service opened once per test module (tests may append to its ledger)."""
    svc = DecisionService.open(trained[1])
    yield svc
    svc.close()
