"""Legal holds: ``forget`` is refused while a hold is in force, on both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.ledger import ERASED, Ledger, LedgerError

Backend = Any  # tests/ledger/conftest.py:Backend (conftest modules are not importable)
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
OPERATIONS = st.lists(st.sampled_from(["hold", "release", "forget"]), min_size=1, max_size=8)


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPERATIONS)
def test_forget_succeeds_exactly_when_no_hold_is_in_force(
    kind: str, make_backend: Callable[[str], Backend], ops: list[str]
) -> None:
    ledger: Ledger = make_backend(kind).open()
    decision = ledger.append("decision", {"n": 1}, subject_id="S-1", pii={"name": "Sam"})
    sk = ledger.subject_key("S-1")
    held = False
    erased = False
    for op in ops:
        size = ledger.size()
        if op == "hold":
            ledger.append("legal_hold", {"subject_key": sk, "reason": "case 7", "by": "Legal"})
            held = True
        elif op == "release":
            ledger.append(
                "legal_hold_release", {"subject_key": sk, "reason": "closed", "by": "Legal"}
            )
            held = False
        elif held:
            with pytest.raises(LedgerError, match="legal hold"):
                ledger.forget("S-1")
            assert ledger.size() == size, "a refused forget appends nothing"
        else:
            ledger.forget("S-1")
            erased = True
        assert (ledger.legal_hold("S-1") is not None) == held
        pii = ledger.decode(ledger.get(decision.id))["body"]["pii"]  # type: ignore[arg-type]
        assert pii == (ERASED if erased else {"name": "Sam"})
    assert ledger.verify().ok


def test_hold_events_need_a_subject_and_a_reason(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match=r"body\.reason"):
        ledger.append("legal_hold", {"subject_key": ledger.subject_key("x")})
    with pytest.raises(ValueError, match=r"body\.subject_key"):
        ledger.append("legal_hold_release", {"reason": "r"})


def test_a_hold_on_one_subject_does_not_hold_another(ledger: Ledger) -> None:
    ledger.append("decision", {"n": 1}, subject_id="A", pii={"name": "a"})
    ledger.append("decision", {"n": 2}, subject_id="B", pii={"name": "b"})
    ledger.append("legal_hold", {"subject_key": ledger.subject_key("A"), "reason": "case"})
    with pytest.raises(LedgerError):
        ledger.forget("A")
    ledger.forget("B")
