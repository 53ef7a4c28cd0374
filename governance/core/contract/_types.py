"""Values of the input contract: intervals, relations, policy, verdicts; messages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final, Literal

import numpy as np

FORMAT: Final = "governance.contract/1"

Kind = Literal["numeric", "categorical"]
ValueType = Literal["integer", "number", "string"]
OutOfDistribution = Literal["flag", "refuse"]
Rule = Literal[
    "unknown_feature",
    "missing_feature",
    "null",
    "type",
    "finite",
    "minimum",
    "maximum",
    "allowed",
    "forbidden",
    "relation",
    "out_of_distribution",
]

#: GX / pandas dtype names that mean "whole numbers only".
INTEGER_DTYPES: Final = frozenset(
    {"int"} | {f"{p}{b}" for p in ("int", "uint", "Int", "UInt") for b in (8, 16, 32, 64)}
)
#: Row-level expectations on one column that the contract turns into hard rules.
_COLUMN_RULES: Final = frozenset(
    {
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_of_type",
    }
)
_PAIR_RULE: Final = "expect_column_pair_values_a_to_be_greater_than_b"
#: Longest rendering of a value inside a message.
VALUE_DISPLAY_LIMIT: Final = 60
#: How many violations the message of a :class:`ContractViolation` spells out.
MESSAGE_VIOLATION_LIMIT: Final = 5

ERR_UNKNOWN_FEATURE = "{where}unknown feature {feature!r}; the model takes {expected}"
ERR_MISSING_FEATURE = "{where}missing feature {feature!r}"
ERR_MISSING_COLUMN = "missing feature column {feature!r}"
ERR_NULL = "{where}feature {feature!r} must not be missing (null)"
ERR_NUMBER = "{where}feature {feature!r} = {value}: expected a number"
ERR_INTEGER = "{where}feature {feature!r} = {value}: expected a whole number (the suite's type)"
ERR_TEXT = "{where}feature {feature!r} = {value}: expected text (one of {allowed})"
ERR_FINITE = "{where}feature {feature!r} = {value}: expected a finite number"
ERR_MINIMUM = "{where}feature {feature!r} = {value} is below the hard minimum {bound}"
ERR_STRICT_MINIMUM = "{where}feature {feature!r} = {value} must be greater than {bound}"
ERR_MAXIMUM = "{where}feature {feature!r} = {value} is above the hard maximum {bound}"
ERR_STRICT_MAXIMUM = "{where}feature {feature!r} = {value} must be less than {bound}"
ERR_ALLOWED = "{where}feature {feature!r} = {value} is not one of {allowed}"
ERR_FORBIDDEN = "{where}feature {feature!r} = {value} is one of the forbidden values {forbidden}"
ERR_RELATION = "{where}feature {left!r} = {a} must be {op} feature {right!r} = {b}"
ERR_REFUSED_OOD = "{where}{flag} (policy: out_of_distribution: refuse)"
ERR_MORE = "; and {n} more"

FLAG_RANGE = "feature {feature!r} = {value} is outside the training range {range}"
FLAG_UNSEEN = "feature {feature!r} = {value} was never seen in training (seen: {seen})"
FLAG_MISSING = "feature {feature!r} is missing, which training never saw"

ERR_POLICY_TYPE = "params.yaml contract: expected a mapping, got {value!r}"
ERR_POLICY_KEY = "params.yaml contract: unknown key {key!r}; known keys: {known}"
ERR_POLICY_OOD = "params.yaml contract.out_of_distribution: expected flag or refuse, got {value!r}"
ERR_POLICY_MARGIN = "params.yaml contract.range_margin: expected a number >= 0, got {value!r}"
ERR_NO_COLUMN = "cannot derive the contract: the training data lacks feature column {feature!r}"
ERR_EMPTY_ALLOWED = (
    "cannot derive the contract: suite {suite} allows none of feature {feature!r}'s "
    "categories {categories}"
)
ERR_TRAINING_BREAKS = (
    "cannot derive the contract: the training data breaks its own suite's rules ({message})"
)
ERR_FORMAT = "not a {format} document (format={found!r})"


# -- small value types ----------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A range of numbers; ``None`` means unbounded on that side.

    Attributes
    ----------
    low, high : int, float or None
        The ends, as the suite or the data gave them.
    low_strict, high_strict : bool
        True when the end itself is excluded (GX ``strict_min`` / ``strict_max``).
    """

    low: int | float | None = None
    high: int | float | None = None
    low_strict: bool = False
    high_strict: bool = False

    @property
    def bounded(self) -> bool:
        """True when at least one end is set."""
        return self.low is not None or self.high is not None

    def below(self, x: int | float) -> bool:
        """Return True if ``x`` lies below the low end (exact for any int or float)."""
        if self.low is None:
            return False
        return x <= self.low if self.low_strict else x < self.low

    def above(self, x: int | float) -> bool:
        """Return True if ``x`` lies above the high end (exact for any int or float)."""
        if self.high is None:
            return False
        return x >= self.high if self.high_strict else x > self.high

    def contains(self, x: int | float) -> bool:
        """Return True if ``x`` lies inside the interval."""
        return not self.below(x) and not self.above(x)

    def widened(self, margin: float) -> Interval:
        """Return the interval widened on both sides by ``margin`` times its width.

        Parameters
        ----------
        margin : float
            A fraction of ``high - low`` (0 keeps the interval). One-sided intervals are kept.

        Returns
        -------
        Interval
        """
        if margin == 0 or self.low is None or self.high is None:
            return self
        width = float(self.high) - float(self.low)
        return replace(
            self, low=float(self.low) - margin * width, high=float(self.high) + margin * width
        )

    def describe(self) -> str:
        """Render as ``[0, 5]``, ``(0, 5]``, ``≥ 0`` or ``any number``."""
        if self.low is not None and self.high is not None:
            left = "(" if self.low_strict else "["
            right = ")" if self.high_strict else "]"
            return f"{left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_strict else '≥'} {_number(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_strict else '≤'} {_number(self.high)}"
        return "any number"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"min", "max", "strict_min", "strict_max"}`` (ends may be null)."""
        return {
            "min": self.low,
            "max": self.high,
            "strict_min": self.low_strict,
            "strict_max": self.high_strict,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interval:
        """Read :meth:`to_dict`'s output."""
        return cls(d.get("min"), d.get("max"), bool(d.get("strict_min")), bool(d.get("strict_max")))


@dataclass(frozen=True)
class Relation:
    """A rule between two numeric inputs of one application: ``left op right``.

    From ``expect_column_pair_values_a_to_be_greater_than_b`` (``column_A`` is ``left``);
    ``op`` is ``">="`` with ``or_equal`` and ``">"`` without. Not checked when either is missing.
    """

    left: str
    op: Literal[">=", ">"]
    right: str

    def holds(self, a: int | float, b: int | float) -> bool:
        """Return True if ``a op b``."""
        return a >= b if self.op == ">=" else a > b

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"left", "op", "right"}``."""
        return {"left": self.left, "op": self.op, "right": self.right}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Relation:
        """Read :meth:`to_dict`'s output."""
        op = d["op"]
        if op not in (">=", ">"):
            raise ValueError(f"relation op must be '>=' or '>', got {op!r}")
        return cls(str(d["left"]), op, str(d["right"]))


@dataclass(frozen=True)
class ContractPolicy:
    """What to do with applications the contract judges (``params.yaml`` → ``contract``).

    Attributes
    ----------
    out_of_distribution : {"flag", "refuse"}
        ``flag`` (default): decide and record which features were out of distribution;
        ``refuse``: refuse such applications like hard violations.
    range_margin : float
        Widen each numeric training range on both sides by this fraction of its width before
        flagging (default 0: anything outside what training saw is flagged).
    """

    out_of_distribution: OutOfDistribution = "flag"
    range_margin: float = 0.0

    KEYS: ClassVar[tuple[str, ...]] = ("out_of_distribution", "range_margin")

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> ContractPolicy:
        """Read the ``contract`` block of ``params.yaml`` (absent keys take the defaults).

        Parameters
        ----------
        params : mapping or None
            The block, e.g. ``{"out_of_distribution": "flag", "range_margin": 0.0}``.

        Returns
        -------
        ContractPolicy

        Raises
        ------
        ValueError
            On an unknown key or a bad value, naming it.
        """
        if params is None:
            return cls()
        if not isinstance(params, Mapping):
            raise ValueError(ERR_POLICY_TYPE.format(value=params))
        known = cls.KEYS
        for key in params:
            if key not in known:
                raise ValueError(ERR_POLICY_KEY.format(key=key, known=", ".join(known)))
        ood = params.get("out_of_distribution", "flag")
        if ood not in ("flag", "refuse"):
            raise ValueError(ERR_POLICY_OOD.format(value=ood))
        margin = params.get("range_margin", 0.0)
        if (
            isinstance(margin, bool)
            or not isinstance(margin, int | float)
            or not math.isfinite(margin)
            or margin < 0
        ):
            raise ValueError(ERR_POLICY_MARGIN.format(value=margin))
        return cls(out_of_distribution=ood, range_margin=float(margin))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"out_of_distribution", "range_margin"}``."""
        return {"out_of_distribution": self.out_of_distribution, "range_margin": self.range_margin}


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    Attributes
    ----------
    rule : str
        Which rule: ``unknown_feature``, ``missing_feature``, ``null``, ``type``, ``finite``,
        ``minimum``, ``maximum``, ``allowed``, ``forbidden``, ``relation`` or
        ``out_of_distribution`` (only under the ``refuse`` policy).
    feature : str or None
        The feature (for a relation, its left side).
    value : Any
        The offending value as given (for a relation, the left value).
    bound : Any
        What it was held against: a number, a list of values, a relation or a range, as JSON.
    message : str
        One line naming row (for frames), feature, value and bound.
    row : int or None
        Position of the row in a frame (or batch); None for a single application.
    hard : bool
        True for the suite's rules; False for an out-of-distribution value refused by policy.
    """

    rule: Rule
    feature: str | None
    value: Any
    bound: Any
    message: str
    row: int | None = None
    hard: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the violation as JSON (the value rendered as in the message)."""
        return {
            "rule": self.rule,
            "feature": self.feature,
            "value": _display(self.value),
            "bound": self.bound,
            "message": self.message,
            "row": self.row,
            "hard": self.hard,
        }


@dataclass(frozen=True)
class Flag:
    """An input inside the hard rules but outside what training saw.

    Attributes
    ----------
    feature : str
    value : Any
    expected : Any
        The training range (``Interval.to_dict()``) or the values seen in training (a list).
    message : str
        One line, e.g. ``"feature 'lvrat' = 2.5 is outside the training range [0.02, 1.95]"``.
    """

    feature: str
    value: Any
    expected: Any
    message: str


class ContractViolation(ValueError):
    """An application breaks its model version's input contract; nothing may be recorded.

    ``str(exc)`` spells out the first few violations on one line; :attr:`violations` holds all.
    """

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        shown = "; ".join(v.message for v in self.violations[:MESSAGE_VIOLATION_LIMIT])
        hidden = len(self.violations) - MESSAGE_VIOLATION_LIMIT
        super().__init__(shown + (ERR_MORE.format(n=hidden) if hidden > 0 else ""))


@dataclass(frozen=True)
class Verdict:
    """The contract's judgement of one application.

    Attributes
    ----------
    violations : tuple of Violation
        Every broken rule (empty when the application may be decided).
    flags : tuple of Flag
        Every out-of-distribution input, in feature order.
    """

    violations: tuple[Violation, ...] = ()
    flags: tuple[Flag, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is violated (flags do not count)."""
        return not self.violations

    @property
    def out_of_distribution(self) -> list[str]:
        """The names of the flagged features, in feature order (what a record stores)."""
        return [f.feature for f in self.flags]

    def raise_for_violations(self) -> None:
        """Raise :class:`ContractViolation` if anything is violated."""
        if self.violations:
            raise ContractViolation(self.violations)


@dataclass(frozen=True)
class FrameVerdict:
    """The contract's judgement of a frame, row by row.

    Attributes
    ----------
    violations : tuple of Violation
        Every broken rule, by row then feature order; each names its row.
    out_of_distribution : list of list of str
        For each row, the names of its flagged features (empty lists for most rows).
    flags : dict of int to tuple of Flag
        The flags of each flagged row, keyed by row position (``first_row``-based).
    """

    violations: tuple[Violation, ...]
    out_of_distribution: list[list[str]]
    flags: dict[int, tuple[Flag, ...]]

    @property
    def ok(self) -> bool:
        """True when no row violates anything."""
        return not self.violations

    def raise_for_violations(self) -> None:
        """Raise :class:`ContractViolation` if any row violates anything."""
        if self.violations:
            raise ContractViolation(self.violations)


# -- helpers ----------------------------------------------------------------------------------


def _refused(flags: Iterable[Flag], *, where: str, row: int | None) -> list[Violation]:
    return [
        Violation(
            "out_of_distribution",
            f.feature,
            f.value,
            f.expected,
            ERR_REFUSED_OOD.format(where=where, flag=f.message),
            row,
            hard=False,
        )
        for f in flags
    ]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite(value: int | float) -> bool:
    """True for finite floats and for ints a 64-bit float can hold."""
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return False
        return True
    return math.isfinite(value)


def _whole(value: int | float) -> bool:
    return isinstance(value, int) or float(value).is_integer()


def _number(value: int | float | None) -> str:
    """A bound as written: ``0``, ``5``, ``0.02``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return _display(value)


def _display(value: Any) -> str:
    """A value for a one-line message: repr, control characters escaped, cut to a limit."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    text = repr(value)
    if len(text) > VALUE_DISPLAY_LIMIT:
        text = text[: VALUE_DISPLAY_LIMIT - 1] + "…"
    return text


def _values(values: Iterable[Any]) -> str:
    """A short list of values for a message."""
    return "[" + ", ".join(_display(v) for v in values) + "]"
