"""What a decision request must pass before anything is written: caller text without control
characters, each application inside its model version's input contract (hard bounds refuse,
the training range flags), a whole frame checked before the first chunk, and an outcome's
``observed_at`` between its decision and now.

Every refusal is a :class:`DecisionError` (the HTTP layer's 4xx); a contract's is a
:class:`ContractRefused` carrying every violation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from governance.core.contract import ContractViolation
from governance.core.scorecard import Scorecard
from governance.core.text import CONTROL_CHARS, TextRefused, refuse_control
from governance.registry.mlflow import LoadedModel

__all__ = [
    "CONTROL_CHARS",
    "ContractRefused",
    "DecisionError",
    "check_contract",
    "check_contract_frame",
    "check_frame",
    "check_observed_at",
    "check_text",
]

ERR_OBSERVED_AT_FORMAT = "observed_at {value!r} is not an ISO 8601 time with a time zone"
ERR_OBSERVED_BEFORE = (
    "observed_at {value} is before the decision was made ({decided}): an outcome cannot be"
    " observed before its decision"
)
ERR_OBSERVED_FUTURE = "observed_at {value} is in the future"
CLOCK_SKEW_SECONDS = 300  # a caller's clock may run this far ahead of ours


class DecisionError(ValueError):
    """The request cannot be decided (unknown model, bad features ...); nothing was recorded."""


class ContractRefused(DecisionError):
    """An application breaks its model version's input contract; nothing was recorded.

    ``str(exc)`` names the first few violations (row, feature, value, bound);
    :attr:`violations` holds every one as JSON.
    """

    def __init__(self, message: str, violations: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(message)
        self.violations = [dict(v) for v in violations]


def _refused(exc: ContractViolation, where: str = "") -> ContractRefused:
    """The contract's violations as the one error every decision path raises."""
    return ContractRefused(where + str(exc), [v.to_dict() for v in exc.violations])


def check_contract(loaded: LoadedModel, features: Mapping[str, Any], where: str = "") -> list[str]:
    """Judge one application by its version's contract: the out-of-distribution features.

    Raises :class:`ContractRefused` (naming feature, value and bound) on any violation.
    """
    if loaded.contract is None:
        return []
    verdict = loaded.contract.check(features)
    try:
        verdict.raise_for_violations()
    except ContractViolation as exc:
        raise _refused(exc, where) from None
    return verdict.out_of_distribution


def check_contract_frame(
    loaded: LoadedModel, frame: pd.DataFrame, first_row: int = 0
) -> list[list[str]]:
    """Judge every row of a frame (numbered from ``first_row``): each row's flagged features."""
    if loaded.contract is None:
        return [[] for _ in range(len(frame))]
    verdict = loaded.contract.check_frame(frame, first_row=first_row, flags=False)
    try:
        verdict.raise_for_violations()
    except ContractViolation as exc:
        raise _refused(exc) from None
    return verdict.out_of_distribution


def check_text(field: str, value: str | None, where: str = "", *, prose: bool = False) -> None:
    """Refuse caller-given text holding control characters (a newline could forge log lines);
    ``prose`` (a review's reason) may hold newlines and tabs (:mod:`governance.core.text`).

    Raises :class:`DecisionError` naming the field and the character.
    """
    try:
        refuse_control(field, value, prose=prose, where=where)
    except TextRefused as exc:
        raise DecisionError(str(exc)) from None


def check_observed_at(observed_at: str, decided_at: str) -> None:
    """``observed_at`` must lie between the decision's time and now (with clock skew)."""
    try:
        when = datetime.fromisoformat(observed_at.replace("Z", "+00:00"))
    except ValueError:
        raise DecisionError(ERR_OBSERVED_AT_FORMAT.format(value=observed_at)) from None
    if when.tzinfo is None:
        raise DecisionError(ERR_OBSERVED_AT_FORMAT.format(value=observed_at))
    decided = datetime.fromisoformat(decided_at.replace("Z", "+00:00"))
    now = datetime.now(UTC)
    if when < decided:
        raise DecisionError(ERR_OBSERVED_BEFORE.format(value=observed_at, decided=decided_at))
    if when > now + timedelta(seconds=CLOCK_SKEW_SECONDS):
        raise DecisionError(ERR_OBSERVED_FUTURE.format(value=observed_at))


def check_frame(loaded: LoadedModel, frame: pd.DataFrame, first_row: int) -> list[list[str]]:
    """Every row checked before anything is written: the out-of-distribution list per row."""
    sc = loaded.scorecard
    missing = [c for c in sc.order if c not in frame.columns]
    if missing:
        raise DecisionError(f"missing feature column(s): {missing}")
    inputs = frame[list(sc.order)]
    ood_rows = check_contract_frame(loaded, inputs, first_row)
    _check_scorecard_inputs(sc, inputs)
    return ood_rows


def _check_scorecard_inputs(sc: Scorecard, inputs: pd.DataFrame) -> None:
    for name in sc.order:
        column = inputs[name]
        if name not in sc.nullable and column.isna().any():
            row = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise DecisionError(f"row {row}: feature {name!r} must not be null")
        if name in sc.numeric:
            values = pd.to_numeric(column, errors="coerce")
            bad = values.isna() & column.notna()
            if bad.any() or not np.isfinite(values.dropna().to_numpy(dtype=float)).all():
                raise DecisionError(f"feature {name!r}: expected finite numbers")
