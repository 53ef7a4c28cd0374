"""The recourse policy of a model version: how each input may change, within what, at what cost.

Built from the dataset spec (``action``, ``step``, ``cost``, ``label``, optional ``bounds`` per
feature) and the version's data contract (hard bounds, the training range, permitted codes
and categories, whole numbers, relations between inputs); see :mod:`governance.core.recourse`
for how it is used. The policy serialises to a content-addressed JSON document
(:meth:`RecoursePolicy.to_dict`, :meth:`RecoursePolicy.sha256`) registered with the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from governance.core.contract import Contract
from governance.core.dataset import Action, DatasetSpec
from governance.core.scorecard import Scorecard

POLICY_FORMAT: Final = "governance.recourse-policy/1"

ERR_UNBOUNDED = (
    "feature {name!r} is actionable but has no feasible bounds: give bounds in the dataset spec "
    "or the data contract"
)
ERR_INTEGER_STEP = (
    "feature {name!r}: the contract requires whole numbers but the spec's step is {step}"
)
ERR_BAD_POLICY = "not a {format} document: {problem}"


@dataclass(frozen=True)
class FeatureAction:
    """How one model input may change, and what a change costs.

    Attributes
    ----------
    feature, kind, label
        The input, ``numeric`` or ``categorical``, and its name in plain words.
    action
        ``none`` (immutable), ``increase``, ``decrease`` or ``any``.
    cost
        Numeric: cost of a change of one ``spread``; categorical: cost of one change.
    spread
        Numeric: the training standard deviation (the scorecard's scale); categorical: 1.
    step, low, high, low_strict, high_strict
        Numeric: feasible values are the multiples of ``step`` between ``low`` and ``high``
        (an end excluded when strict).
    values
        Numeric with a finite set of permitted values (codes): only those, sorted.
    categories
        Categorical: the values a change may lead to, in the order ``increase`` follows.
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    label: str
    action: Action = "none"
    cost: float = 1.0
    spread: float = 1.0
    step: float | None = None
    low: float | None = None
    high: float | None = None
    low_strict: bool = False
    high_strict: bool = False
    values: tuple[float, ...] | None = None
    categories: tuple[str, ...] = ()

    @property
    def actionable(self) -> bool:
        """Whether the applicant may change this feature at all."""
        return self.action != "none"

    def inside(self, v: float) -> bool:
        """Whether a numeric value lies within the feasible bounds."""
        assert self.low is not None and self.high is not None
        above_low = v > self.low if self.low_strict else v >= self.low
        below_high = v < self.high if self.high_strict else v <= self.high
        return above_low and below_high


@dataclass(frozen=True)
class RecoursePolicy:
    """Per-feature actions for one model version.

    ``relations`` are the contract's rules between two inputs (``(left, op, right)`` with op
    ``>=`` or ``>``); ``max_changes`` limits how many features a combined change touches.
    """

    actions: tuple[FeatureAction, ...]
    max_changes: int | None = None
    relations: tuple[tuple[str, str, str], ...] = ()

    def action(self, feature: str) -> FeatureAction:
        """The action for one model input (``KeyError`` if the policy has none)."""
        for a in self.actions:
            if a.feature == feature:
                return a
        raise KeyError(feature)

    def to_dict(self) -> dict[str, Any]:
        """The policy as stored with the model version (``recourse_policy.json``)."""
        return {
            "format": POLICY_FORMAT,
            "max_changes": self.max_changes,
            "relations": [list(r) for r in self.relations],
            "actions": [
                {
                    **asdict(a),
                    "categories": list(a.categories),
                    "values": None if a.values is None else list(a.values),
                }
                for a in self.actions
            ],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RecoursePolicy:
        """The policy from its stored form (:meth:`to_dict`)."""
        if doc.get("format") != POLICY_FORMAT:
            problem = f"format is {doc.get('format')!r}"
            raise ValueError(ERR_BAD_POLICY.format(format=POLICY_FORMAT, problem=problem))
        actions = tuple(
            FeatureAction(
                **{
                    **a,
                    "categories": tuple(a.get("categories", ())),
                    "values": None if a.get("values") is None else tuple(a["values"]),
                }
            )
            for a in doc["actions"]
        )
        relations = tuple((str(a), str(op), str(b)) for a, op, b in doc.get("relations", []))
        return cls(actions, doc.get("max_changes"), relations)

    def sha256(self) -> str:
        """Content address of the policy (sha256 of its sorted-key JSON)."""
        digest = self.__dict__.get("_sha256")
        if digest is None:  # once per policy: every denial's recourse names it
            text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            digest = hashlib.sha256(text.encode()).hexdigest()
            object.__setattr__(self, "_sha256", digest)  # frozen; not a field (eq, hash)
        return digest


def build_policy(
    spec: DatasetSpec,
    scorecard: Scorecard,
    contract: Contract,
    *,
    max_changes: int | None = None,
) -> RecoursePolicy:
    """The recourse policy of a model version: the spec's actions under its data contract.

    Parameters
    ----------
    spec
        The dataset spec (``action``, ``step``, ``cost``, ``label`` and optional ``bounds`` per
        feature).
    scorecard
        The compiled model; its training standard deviations are the spreads.
    contract
        The version's input contract: a numeric feature may move within its hard bounds and
        the range training saw (and the spec's own bounds), onto permitted codes only where the
        contract lists them, as a whole number where it requires one; a categorical feature
        only to permitted categories; relations between inputs hold.
    max_changes
        At most this many features changed in the combined change (``None``: no limit).

    Raises
    ------
    ValueError
        If an actionable numeric feature ends up without finite bounds, or its step cannot
        give the whole numbers the contract requires.
    """
    actions = []
    for f in spec.features:
        fc = contract.feature(f.name)
        if f.kind == "numeric":
            ends = [
                (fc.bounds.low, fc.bounds.low_strict, fc.bounds.high, fc.bounds.high_strict),
                (f.bounds[0], False, f.bounds[1], False),
            ]
            if fc.training_range is not None:
                r = fc.training_range
                ends.append((r.low, r.low_strict, r.high, r.high_strict))
            low, low_strict = tightest(((e[0], e[1]) for e in ends), lower=True)
            high, high_strict = tightest(((e[2], e[3]) for e in ends), lower=False)
            if f.action != "none" and (low is None or high is None):
                raise ValueError(ERR_UNBOUNDED.format(name=f.name))
            if f.action != "none" and fc.type == "integer" and not float(f.step or 1).is_integer():
                raise ValueError(ERR_INTEGER_STEP.format(name=f.name, step=f.step))
            permitted = fc.feasible_values()
            actions.append(
                FeatureAction(
                    feature=f.name,
                    kind="numeric",
                    label=f.words,
                    action=f.action,
                    cost=f.cost,
                    spread=float(scorecard.numeric[f.name]["scale"]),
                    step=f.step,
                    low=low,
                    high=high,
                    low_strict=low_strict,
                    high_strict=high_strict,
                    values=None if permitted is None else tuple(sorted(map(float, permitted))),
                )
            )
        else:
            allowed = set(fc.feasible_values() or f.categories)
            actions.append(
                FeatureAction(
                    feature=f.name,
                    kind="categorical",
                    label=f.words,
                    action=f.action,
                    cost=f.cost,
                    categories=tuple(c for c in f.categories if c in allowed),
                )
            )
    relations = tuple((r.left, r.op, r.right) for r in contract.relations)
    return RecoursePolicy(tuple(actions), max_changes, relations)


def tightest(
    ends: Iterable[tuple[float | None, bool]], *, lower: bool
) -> tuple[float | None, bool]:
    """The tightest of several interval ends (a strict end wins a tie)."""
    best: tuple[float | None, bool] = (None, False)
    for value, strict in ends:
        if value is None:
            continue
        v = float(value)
        if best[0] is None or (v > best[0] if lower else v < best[0]):
            best = (v, strict)
        elif v == best[0]:
            best = (v, best[1] or strict)
    return best


__all__ = ["POLICY_FORMAT", "FeatureAction", "RecoursePolicy", "build_policy"]
