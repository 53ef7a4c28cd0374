"""The rules for one model input, and what training saw of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from governance.core.contract._types import (
    ERR_ALLOWED,
    ERR_FINITE,
    ERR_FORBIDDEN,
    ERR_INTEGER,
    ERR_MAXIMUM,
    ERR_MINIMUM,
    ERR_NULL,
    ERR_NUMBER,
    ERR_STRICT_MAXIMUM,
    ERR_STRICT_MINIMUM,
    ERR_TEXT,
    FLAG_MISSING,
    FLAG_RANGE,
    FLAG_UNSEEN,
    Flag,
    Interval,
    Kind,
    Rule,
    ValueType,
    Violation,
    _display,
    _finite,
    _number,
    _values,
    _whole,
)

# -- one feature ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureContract:
    """The rules for one model input, and what training saw of it.

    Attributes
    ----------
    name : str
    kind : {"numeric", "categorical"}
    type : {"integer", "number", "string"}
        ``integer``: whole numbers only (the suite's type list holds only integer dtypes).
    nullable : bool
        May a caller leave it missing (the model imputes it)?
    bounds : Interval
        Hard bounds (numeric); unbounded when the suite sets none.
    allowed : tuple or None
        The only permitted values (categories, or codes of a numeric input); None = any value
        within the bounds.
    forbidden : tuple
        Values the suite forbids.
    training_range : Interval or None
        ``[min, max]`` of the numeric input in the training data (None for categorical inputs
        or when training had no value).
    training_values : tuple or None
        The values seen in training (categorical inputs and numeric inputs with ``allowed``
        codes), sorted; None otherwise.
    training_missing : bool
        Whether training data had missing values for it.
    """

    name: str
    kind: Kind
    type: ValueType
    nullable: bool
    bounds: Interval = field(default_factory=Interval)
    allowed: tuple[Any, ...] | None = None
    forbidden: tuple[Any, ...] = ()
    training_range: Interval | None = None
    training_values: tuple[Any, ...] | None = None
    training_missing: bool = False

    # -- public reading API (feasibility) ---------------------------------------------------
    def feasible_values(self) -> tuple[Any, ...] | None:
        """The finite set of values the contract permits, or None if it is not finite.

        Returns
        -------
        tuple or None
            ``allowed`` without ``forbidden`` values and without values outside the bounds,
            in ``allowed`` order; None for a numeric input without ``allowed`` codes.
        """
        if self.allowed is None:
            return None
        return tuple(
            v
            for v in self.allowed
            if v not in self.forbidden and (self.kind != "numeric" or self.bounds.contains(v))
        )

    def feasible(self, value: Any) -> bool:
        """Return True if ``value`` satisfies every hard rule of this feature alone.

        Parameters
        ----------
        value : Any
            A JSON value (None = missing). Relations between features are not considered.

        Returns
        -------
        bool
        """
        return not self._violations(value, where="")

    # -- checking ----------------------------------------------------------------------------
    def _violations(self, value: Any, *, where: str, row: int | None = None) -> list[Violation]:
        """The hard rules ``value`` breaks (at most one: the first that applies)."""

        def broken(rule: Rule, template: str, limit: Any, **extra: Any) -> list[Violation]:
            message = template.format(
                where=where, feature=self.name, value=_display(value), **extra
            )
            return [Violation(rule, self.name, value, limit, message, row)]

        if value is None:
            return [] if self.nullable else broken("null", ERR_NULL, None)
        if self.kind == "categorical" and not isinstance(value, str):
            allowed = self.allowed or ()  # shown only in a message: most values pass
            return broken("type", ERR_TEXT, list(allowed), allowed=_values(allowed))
        if self.kind != "categorical":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return broken("type", ERR_NUMBER, self.type)
            if isinstance(value, float) and not _finite(value):
                return broken("finite", ERR_FINITE, None)
            if self.type == "integer" and not _whole(value):
                return broken("type", ERR_INTEGER, self.type)
        if self.allowed is not None and value not in self.allowed:
            shown = _values(self.allowed)
            return broken("allowed", ERR_ALLOWED, list(self.allowed), allowed=shown)
        if self.forbidden and value in self.forbidden:
            forbidden = _values(self.forbidden)
            return broken("forbidden", ERR_FORBIDDEN, list(self.forbidden), forbidden=forbidden)
        if self.kind == "numeric":
            b = self.bounds
            if b.below(value):
                template = ERR_STRICT_MINIMUM if b.low_strict else ERR_MINIMUM
                return broken("minimum", template, b.low, bound=_number(b.low))
            if b.above(value):
                template = ERR_STRICT_MAXIMUM if b.high_strict else ERR_MAXIMUM
                return broken("maximum", template, b.high, bound=_number(b.high))
            if not _finite(value):  # an int no float can hold, with no bound to name
                return broken("finite", ERR_FINITE, None)
        return []

    def _flag(self, value: Any, margin: float) -> Flag | None:
        """The out-of-distribution flag for a value that passed the hard rules, if any."""
        kind = self._flag_kind(value, margin)
        if kind is None:
            return None
        if kind == "missing":
            return Flag(self.name, None, None, FLAG_MISSING.format(feature=self.name))
        if kind == "unseen":
            seen = list(self.training_values or ())
            message = FLAG_UNSEEN.format(
                feature=self.name, value=_display(value), seen=_values(seen)
            )
            return Flag(self.name, value, seen, message)
        assert self.training_range is not None
        limits = self.training_range.widened(margin)
        message = FLAG_RANGE.format(
            feature=self.name, value=_display(value), range=limits.describe()
        )
        return Flag(self.name, value, limits.to_dict(), message)

    def _flag_kind(self, value: Any, margin: float) -> str | None:
        """Which flag :meth:`_flag` gives ``value`` ("missing", "unseen" or "range"), without
        writing its message (a batch needs only the flagged features' names), or None."""
        if value is None:
            return None if self.training_missing else "missing"
        if self.training_values is not None and value not in self.training_values:
            return "unseen"
        if self.kind != "numeric" or self.training_range is None:
            return None
        return None if self.training_range.widened(margin).contains(value) else "range"

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the feature's rules and training facts as JSON."""
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "nullable": self.nullable,
            "bounds": self.bounds.to_dict(),
            "allowed": None if self.allowed is None else list(self.allowed),
            "forbidden": list(self.forbidden),
            "training": {
                "range": None if self.training_range is None else self.training_range.to_dict(),
                "values": None if self.training_values is None else list(self.training_values),
                "missing": self.training_missing,
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureContract:
        """Read :meth:`to_dict`'s output."""
        training = d.get("training") or {}
        kind, value_type = d["kind"], d["type"]
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"feature {d['name']!r}: kind must be numeric or categorical")
        if value_type not in ("integer", "number", "string"):
            raise ValueError(f"feature {d['name']!r}: type must be integer, number or string")
        return cls(
            name=str(d["name"]),
            kind=kind,
            type=value_type,
            nullable=bool(d["nullable"]),
            bounds=Interval.from_dict(d.get("bounds") or {}),
            allowed=None if d.get("allowed") is None else tuple(d["allowed"]),
            forbidden=tuple(d.get("forbidden") or ()),
            training_range=(
                None if training.get("range") is None else Interval.from_dict(training["range"])
            ),
            training_values=(None if training.get("values") is None else tuple(training["values"])),
            training_missing=bool(training.get("missing", False)),
        )
