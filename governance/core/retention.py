"""How long each kind of ledger record is kept, and when it falls due (pure; no I/O).

Defaults follow the law that asks for the longest keeping: Regulation B (12 CFR 1002.12(b))
keeps an application, the notice of action taken and the statement of reasons for 25 months
after the notice; the EU AI Act (art. 19(1) and 26(6)) keeps the logs of a high-risk system for
at least six months, which is also the floor no type may go below. "Due" means the record is
older than its retention period: its subject's personal data may then be erased with
``governance audit forget`` (the pseudonymous record itself stays in the append-only chain),
unless the subject is under a legal hold.
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

ERR_MONTHS = "retention.{type} must be a whole number of months, got {value!r}"
ERR_BELOW_MINIMUM = (
    "retention.{type} is {months} months, below the minimum of {minimum} (EU AI Act art. 19: "
    "logs are kept at least six months)"
)


@dataclass(frozen=True)
class RetentionPolicy:
    """Months to keep each record type; ``default`` for types not named."""

    months: dict[str, int]
    default: int = AI_ACT_MINIMUM_MONTHS
    minimum: int = AI_ACT_MINIMUM_MONTHS

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> RetentionPolicy:
        """From ``params.yaml`` → ``retention`` (checked against the minimum)."""
        p = dict(params or {})
        minimum = _months("minimum", p.pop("minimum", AI_ACT_MINIMUM_MONTHS))
        default = _months("default", p.pop("default", AI_ACT_MINIMUM_MONTHS))
        months = {**DEFAULTS, **{str(k): _months(str(k), v) for k, v in p.items()}}
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
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
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
