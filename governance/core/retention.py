"""How long each kind of ledger record is kept, and when it falls due (pure; no I/O).

Defaults follow the law that asks for the longest keeping: Regulation B (12 CFR 1002.12(b))
keeps an application, the notice of action taken and the statement of reasons for 25 months
after the notice; the EU AI Act (art. 19(1) and 26(6)) keeps the logs of a high-risk system for
at least six months, which is also the floor no type may go below. "Due" means the record is
older than its retention period: its subject's personal data may then be erased with
``governance audit forget`` (the pseudonymous record itself stays in the append-only chain),
unless the subject is under a legal hold.

Those floors are the law's, not settings: a type Regulation B covers may not be set below 25
months, nor ``minimum`` below six; a setting may only keep records longer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

REG_B_MONTHS: Final = 25
AI_ACT_MINIMUM_MONTHS: Final = 6
DEFAULTS: Final[dict[str, int]] = {
    "decision": REG_B_MONTHS,
    "notice": REG_B_MONTHS,
    "recourse": REG_B_MONTHS,
    "review": REG_B_MONTHS,
    "outcome": REG_B_MONTHS,
}

MAX_MONTHS: Final = 1200  # a century: past it the cut-off leaves the calendar

ERR_SECTION = "params.yaml retention must hold settings (decision: 25, ...), got {got}"
ERR_MONTHS = "retention.{type} must be a whole number of months up to 1200, got {value!r}"
ERR_BELOW_MINIMUM = "retention.{type} is {months} months, below retention.minimum ({minimum})"
ERR_BELOW_LAW = "retention.{type} is {months} months, below the {months_law} {law} requires"
ERR_UNKNOWN_TYPE = "retention.{type}: no ledger record has that type; known: {known}"
LAWS: Final[dict[str, tuple[int, str]]] = {
    **dict.fromkeys(DEFAULTS, (REG_B_MONTHS, "Regulation B (12 CFR 1002.12(b))")),
    "minimum": (AI_ACT_MINIMUM_MONTHS, "the EU AI Act (art. 19, 26(6))"),
}
"""The floor each setting may not go below, and the law that sets it."""


@dataclass(frozen=True)
class RetentionPolicy:
    """Months to keep each record type; ``default`` for types not named."""

    months: dict[str, int]
    default: int = AI_ACT_MINIMUM_MONTHS
    minimum: int = AI_ACT_MINIMUM_MONTHS

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> RetentionPolicy:
        """From ``params.yaml`` → ``retention`` (checked against the minimum)."""
        from governance.ledger.records import EVENT_TYPES

        if params is not None and not isinstance(params, Mapping):
            raise ValueError(ERR_SECTION.format(got=type(params).__name__))
        p = dict(params or {})
        unknown = sorted(str(k) for k in p if k not in {*EVENT_TYPES, "minimum", "default"})
        if unknown:  # a typo (decison: 120) would leave decisions at the default
            known = ", ".join(sorted(EVENT_TYPES))
            raise ValueError(ERR_UNKNOWN_TYPE.format(type=unknown[0], known=known))
        minimum = _months("minimum", p.pop("minimum", AI_ACT_MINIMUM_MONTHS))
        default = _months("default", p.pop("default", AI_ACT_MINIMUM_MONTHS))
        months = {**DEFAULTS, **{str(k): _months(str(k), v) for k, v in p.items()}}
        for name, value in {**months, "minimum": minimum}.items():
            months_law, law = LAWS.get(name, (0, ""))
            if value < months_law:
                raise ValueError(
                    ERR_BELOW_LAW.format(type=name, months=value, months_law=months_law, law=law)
                )
        for name, value in {**months, "default": default}.items():
            if value < minimum:
                raise ValueError(ERR_BELOW_MINIMUM.format(type=name, months=value, minimum=minimum))
        return cls(months, default, minimum)

    def months_for(self, record_type: str) -> int:
        """How many months records of this type are kept."""
        return self.months.get(record_type, self.default)

    def cutoff(self, record_type: str, now: dt.datetime) -> dt.datetime:
        """Records of this type written before this instant are due."""
        return subtract_months(now, self.months_for(record_type))


def _months(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MONTHS:
        raise ValueError(ERR_MONTHS.format(type=name, value=value))
    return value


def subtract_months(when: dt.datetime, months: int) -> dt.datetime:
    """``when`` minus whole calendar months (the day clamped to the month's length)."""
    total = when.year * 12 + (when.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return when.replace(year=year, month=month, day=min(when.day, days))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
