"""Exact minimal-cost recourse for the compiled logistic scorecard.

Recourse answers the applicant's question "what could I have changed?": the smallest change to
the features they can act on that turns an adverse decision into a favourable one, under the
constraints of the dataset spec and the version's data contract (Ustun, Spangher & Liu,
"Actionable Recourse in Linear Classification", FAT* 2019).

The problem
-----------
A :class:`RecoursePolicy` says, per model input, whether it may change (``action``: ``none``
makes it immutable; ``increase``, ``decrease`` or ``any``), its feasible values (numeric: the
multiples of ``step`` inside ``[low, high]``, so an integer feature stays integer; categorical:
the allowed categories, ordered for the directions) and the cost of a change (numeric:
``cost * |new - old| / spread`` with the spread the training standard deviation the scorecard
standardises by; categorical: ``cost`` per change). The feasible values come from the
version's data contract (:mod:`governance.core.contract`): hard bounds intersected with the range
training saw, permitted codes and categories, whole numbers where required; a relation between
two inputs (``Price >= Amount``) bounds one side when the other stays fixed and is a constraint
of the program when both may change. A missing value stays missing: we do not know it, so we
cannot say how far to move it.

The decision is adverse when ``P(adverse) >= threshold``, i.e. when the log-odds is at least
``t = logit(threshold)``; a counterfactual must bring the log-odds to ``t - MARGIN`` or below
(``MARGIN`` = 1e-9 keeps float rounding from putting it back on the threshold).

A *move* changes one feature one way: a numeric feature to the first feasible value beyond its
current one (``y = 1``), then ``k`` further steps (``0 <= k <= count * y``); a categorical one
to one allowed category (``y = 1``, ``k = 0``). Along a move both the cost and the change of
the log-odds are linear in ``k``: the cost because it is ``|new - old|`` scaled, the log-odds
because the scorecard *is* a sum of per-feature terms, each linear in a numeric input. The
minimal-cost combined change is therefore exactly the integer program::

    minimise    sum_m cost0_m y_m + cost1_m k_m
    subject to  sum_m gain0_m y_m + gain1_m k_m <= t - MARGIN - logit(x)
                k_m <= count_m y_m                       for every move m
                sum_{m of feature j} y_m <= 1            for every feature j
                sum_m y_m <= max_changes                 (when the policy limits it)
                y_m in {0, 1},  k_m in {0, ..., count_m}

Why the answer is exact
-----------------------
The program is the problem itself, not an approximation of the classifier (as gradient searches
such as DiCE or Wachter et al. are): every feasible counterfactual is one assignment and the
objective and constraint are its exact cost and log-odds. Moves that cannot lower the log-odds
are left out (dropping one from any solution keeps it feasible and lowers its cost). When the
program is small (at most two numeric moves with steps in any set of moves, no relation between
two changing inputs), every set of moves is enumerated with the steps in closed form
(:func:`_enumerate`: microseconds, where a solver call costs milliseconds, paid for every denial
of a batch); otherwise HiGHS (through :func:`scipy.optimize.milp`) solves it by branch and bound
to a proven optimum (relative gap 0; absolute optimality tolerance 1e-6 in cost units). A test
holds the two to the same optimum on every held-out denial. The single-feature changes have a
closed form (the fewest steps along one move). Every counterfactual is re-scored by the same
:class:`~governance.core.scorecard.Scorecard`; one that does not flip the outcome is never
returned (the program is solved again with a tightened bound, and if that fails an error is
raised, never a wrong answer). The tests compare the minimal cost on every held-out denial of
both datasets with an exhaustive search over the same values, and
``bench/reference/actionable_recourse.py`` compares it with actionable-recourse (CBC).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from governance.core.dataset import ACTIONS
from governance.core.recourse_policy import (
    FeatureAction,
    RecoursePolicy,
    build_policy,
    tightest,
)
from governance.core.recourse_words import change_words, format_value, sentences
from governance.core.scorecard import Scorecard

FORMAT: Final = "governance.recourse/1"
MARGIN: Final = 1e-9
"""A counterfactual's log-odds must be at least this far below the threshold's."""
MAX_COST: Final = 1e9
"""A change costing more than this (in spreads times the feature's cost) is not offered."""
_STRICT_GAP: Final = 1e-9  # a strict relation between two changed inputs: left >= right + this
_SLACKS: Final = (0.0, 1e-7, 1e-6, 1e-5)  # extra tightening if the solver's answer re-scores badly
_CUTOFF_SLACK: Final = 1e-7  # the objective cutoff: no dearer than the best single change + this

ERR_NOT_ADVERSE = "the decision is not adverse ({outcome}): there is nothing to change"
ERR_POLICY_FEATURES = "recourse policy covers {policy}, the model takes {model}"
ERR_NOT_REFLIPPED = (
    "the solver's combined change does not re-score to the favourable outcome even with a "
    "tightened bound; refusing to report it"
)
ERR_SOLVER = "the recourse solver failed: {message}"


# -- the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One feature changed: from the recorded value to the counterfactual's."""

    feature: str
    label: str
    before: Any
    after: Any
    cost: float


@dataclass(frozen=True)
class Counterfactual:
    """Changed inputs that the scorecard scores favourably, with their cost."""

    changes: tuple[Change, ...]
    cost: float
    inputs: dict[str, Any]
    score: float
    logit: float
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        """The counterfactual as a JSON-ready document."""
        return {
            "changes": [
                {
                    "feature": c.feature,
                    "label": c.label,
                    "before": c.before,
                    "after": c.after,
                    "cost": c.cost,
                }
                for c in self.changes
            ],  # dataclasses.asdict written out: it deep-copies (8 µs a change against 0.5)
            "cost": self.cost,
            "inputs": self.inputs,
            "score": self.score,
            "logit": self.logit,
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class Recourse:
    """The recourse for one adverse decision (``feasible`` False: no change would flip it)."""

    feasible: bool
    outcome: str
    score: float
    logit: float
    threshold: float
    target_logit: float
    singles: tuple[Counterfactual, ...]
    combined: Counterfactual | None
    actionable: tuple[str, ...]
    immutable: tuple[str, ...]
    missing: tuple[str, ...]
    policy_sha256: str
    favorable: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The recourse as JSON-able data, with its plain-word ``summary``."""
        doc = self._facts()
        doc["summary"] = sentences(doc)
        return doc

    def _facts(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "feasible": self.feasible,
            "outcome": self.outcome,
            "score": self.score,
            "logit": self.logit,
            "threshold": self.threshold,
            "target_logit": self.target_logit,
            "margin": MARGIN,
            "singles": [c.to_dict() for c in self.singles],
            "combined": self.combined.to_dict() if self.combined else None,
            "actionable": list(self.actionable),
            "immutable": list(self.immutable),
            "missing": list(self.missing),
            "policy_sha256": self.policy_sha256,
            "favorable": self.favorable,
            "labels": self.labels,
        }


@dataclass(frozen=True)
class _Move:
    """One way to change one feature: to ``first``, then ``k`` more steps the same way.

    Cost and log-odds change are linear in ``k`` (a numeric feature) or fixed (a category:
    ``count`` is 0), which is what makes the program below small and exact.
    """

    group: int  # index of the actionable feature (a feature's moves exclude each other)
    first: Any
    step: float  # signed; 0 for a category
    count: int  # how many further steps stay feasible
    decimals: int
    cost0: float
    cost1: float
    gain0: float
    gain1: float
    shift0: float = 0.0  # numeric: first - current value

    def value(self, k: int) -> Any:
        if k == 0 or self.step == 0:
            return self.first
        v = round(self.first + k * self.step, self.decimals)
        return int(v) if self.decimals == 0 else v


def logit_of(threshold: float) -> float:
    """The log-odds at which the decision turns adverse."""
    return math.log(threshold / (1.0 - threshold))


def compute(scorecard: Scorecard, policy: RecoursePolicy, inputs: Mapping[str, Any]) -> Recourse:
    """The exact recourse for one adverse decision (see the module docstring).

    Parameters
    ----------
    scorecard
        The version's compiled scorecard: the same one that decided.
    policy
        The version's recourse policy (:func:`build_policy`).
    inputs
        The decision's recorded inputs.

    Returns
    -------
    Recourse
        Single-feature changes sorted by cost, the minimal-cost combined change, or
        ``feasible=False`` when no change within the policy flips the decision.

    Raises
    ------
    ValueError
        If the inputs do not score adversely, or the policy does not match the model.
    """
    if {a.feature for a in policy.actions} != set(scorecard.order):
        raise ValueError(
            ERR_POLICY_FEATURES.format(
                policy=sorted(a.feature for a in policy.actions), model=sorted(scorecard.order)
            )
        )
    scored = scorecard.score(inputs)
    if not scored.adverse:
        raise ValueError(ERR_NOT_ADVERSE.format(outcome=scored.outcome))
    contributions = scored.explanation.contributions
    logit0 = scored.explanation.logit
    target = logit_of(scorecard.threshold) - MARGIN
    need = target - logit0  # < 0: the log-odds must drop by at least -need

    actionable = [a for a in policy.actions if a.actionable and inputs.get(a.feature) is not None]
    names = {a.feature for a in actionable}
    # A relation with one side fixed bounds the other; with both sides free it is a constraint
    # of the combined change (a single change keeps the other side fixed).
    joint = [r for r in policy.relations if r[0] in names and r[2] in names]
    alone = [_bounded(a, policy.relations, inputs) for a in actionable]
    together = [_bounded(a, policy.relations, inputs, joint=joint) for a in actionable]

    related = {r[0] for r in joint} | {r[2] for r in joint}

    def moves_of(actions: Sequence[FeatureAction]) -> list[_Move]:
        return [
            m
            for i, a in enumerate(actions)
            for m in _moves(
                scorecard,
                a,
                i,
                inputs[a.feature],
                contributions[a.feature],
                every_direction=a.feature in related,
            )
        ]

    def counterfactual(chosen: Sequence[tuple[_Move, int]]) -> Counterfactual | None:
        new = dict(inputs)
        changes = []
        for move, k in sorted(chosen, key=lambda c: c[0].group):
            action = actionable[move.group]
            after = move.value(k)
            new[action.feature] = after
            before = inputs[action.feature]
            cost = (
                action.cost * abs(after - float(before)) / action.spread
                if action.kind == "numeric"
                else action.cost
            )
            changes.append(Change(action.feature, action.label, before, after, cost))
        if not _relations_hold(policy.relations, new):
            return None
        # re-scored by the scorecard (feasible values of checked inputs: no re-check)
        logit, score, adverse = scorecard.odds(scorecard.contributions(new))
        if adverse or logit > target:
            return None
        return Counterfactual(
            changes=tuple(changes),
            cost=math.fsum(c.cost for c in changes),
            inputs=new,
            score=score,
            logit=logit,
            outcome=scorecard.outcomes["favorable"],
        )

    single_moves = moves_of(alone)
    # most denials: no relation bounds any feature differently in the two programs
    same = all(a is b for a, b in zip(alone, together, strict=True))
    singles: dict[int, Counterfactual] = {}
    for move in single_moves:
        single = _single(move, need, counterfactual)
        if single is not None and (
            move.group not in singles or single.cost < singles[move.group].cost
        ):
            singles[move.group] = single
    combined = _solve(
        single_moves if same else moves_of(together),
        len(actionable),
        need,
        policy.max_changes,
        counterfactual,
        _joint_rows(joint, together, inputs),
        incumbent=min(singles.values(), key=lambda c: c.cost, default=None),
    )
    return Recourse(
        feasible=combined is not None,
        outcome=scored.outcome,
        score=scored.score,
        logit=logit0,
        threshold=scorecard.threshold,
        target_logit=target,
        singles=tuple(sorted(singles.values(), key=lambda c: (c.cost, c.changes[0].feature))),
        combined=combined,
        actionable=tuple(a.feature for a in actionable),
        immutable=tuple(a.feature for a in policy.actions if not a.actionable),
        missing=tuple(
            a.feature for a in policy.actions if a.actionable and inputs.get(a.feature) is None
        ),
        policy_sha256=policy.sha256(),
        favorable=scorecard.outcomes["favorable"],
        labels={a.feature: a.label for a in policy.actions},
    )


def _relations_hold(relations: Iterable[tuple[str, str, str]], values: Mapping[str, Any]) -> bool:
    for left, op, right in relations:
        a, b = values.get(left), values.get(right)
        if a is None or b is None:
            continue
        if not (a > b if op == ">" else a >= b):
            return False
    return True


def _bounded(
    action: FeatureAction,
    relations: Iterable[tuple[str, str, str]],
    inputs: Mapping[str, Any],
    *,
    joint: Sequence[tuple[str, str, str]] = (),
) -> FeatureAction:
    """The action with the bounds that relations to fixed inputs put on it."""
    if action.kind != "numeric":
        return action
    low, low_strict, high, high_strict = (
        action.low,
        action.low_strict,
        action.high,
        action.high_strict,
    )
    for relation in relations:
        left, op, right = relation
        if relation in joint:
            continue
        if left == action.feature and inputs.get(right) is not None:
            low, low_strict = tightest(
                [(low, low_strict), (float(inputs[right]), op == ">")], lower=True
            )
        if right == action.feature and inputs.get(left) is not None:
            high, high_strict = tightest(
                [(high, high_strict), (float(inputs[left]), op == ">")], lower=False
            )
    if (low, low_strict, high, high_strict) == (
        action.low,
        action.low_strict,
        action.high,
        action.high_strict,
    ):
        return action  # no relation bounds it further (most actions, most denials)
    return replace(action, low=low, low_strict=low_strict, high=high, high_strict=high_strict)


def _joint_rows(
    joint: Sequence[tuple[str, str, str]],
    actions: Sequence[FeatureAction],
    inputs: Mapping[str, Any],
) -> list[tuple[dict[int, int], float]]:
    """Relations between two free features: ``left - right >= 0`` as ``(-left + right <= rhs)``.

    Returned as ``(sign per feature group, rhs)``; :func:`_solve` expands them over moves.
    """
    index = {a.feature: i for i, a in enumerate(actions)}
    rows = []
    for left, op, right in joint:
        gap = float(inputs[left]) - float(inputs[right])
        rhs = gap - (_STRICT_GAP if op == ">" else 0.0)
        rows.append(({index[left]: -1, index[right]: 1}, rhs))
    return rows


@functools.lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _moves(
    scorecard: Scorecard,
    action: FeatureAction,
    group: int,
    current: Any,
    contribution: float,
    *,
    every_direction: bool = False,
) -> list[_Move]:
    """The ways one feature may change that lower the log-odds (or every allowed way, for a
    feature in a relation with another changing one: moving it may make room for the other).
    """
    out: list[_Move] = []
    if action.kind == "categorical":
        c = scorecard.categorical[action.feature]
        order = list(action.categories)
        here = order.index(current) if current in order else None
        for i, value in enumerate(order):
            if value == current or value not in c["weights"]:
                continue
            if action.action in ("increase", "decrease") and (
                here is None or (i > here) != (action.action == "increase")
            ):
                continue  # against the allowed direction (or no position to move from)
            gain = (c["weights"][value] - c["reference"]) - contribution
            if gain < 0:
                out.append(_Move(group, value, 0.0, 0, 0, action.cost, 0.0, gain, 0.0))
        return out
    assert action.step is not None and action.low is not None and action.high is not None
    n = scorecard.numeric[action.feature]
    x, step, decimals = float(current), action.step, _decimals(action.step)

    def grid(k: int) -> float:
        return round(k * step, decimals)

    def term(v: float) -> float:
        return float(n["weight"] * ((v - n["mean"]) / n["scale"]) - n["reference"])

    def move(first: Any, signed_step: float, count: int) -> _Move:
        nxt = round(float(first) + signed_step, decimals)
        return _Move(
            group=group,
            first=first,
            step=signed_step,
            count=count,
            decimals=decimals,
            cost0=action.cost * abs(float(first) - x) / action.spread,
            cost1=action.cost * abs(signed_step) / action.spread,
            gain0=term(float(first)) - contribution,
            gain1=(term(nxt) - term(float(first))) if count else 0.0,
            shift0=float(first) - x,
        )

    directions = {"increase": (1,), "decrease": (-1,), "any": (1, -1)}[action.action]
    for sign in directions:
        if n["weight"] * sign >= 0 and not every_direction:
            continue  # moving this way never lowers the log-odds
        if action.values is not None:  # permitted codes only: one move per code
            for v in action.values:
                if (float(v) - x) * sign > 0 and action.inside(float(v)):
                    out.append(move(v, 0.0, 0))
            continue
        # k: the first grid value strictly beyond x in this direction (x far outside the
        # bounds is taken from just outside them: no float overflow, and the walk below is short)
        xc = min(max(x, action.low - 2 * step), action.high + 2 * step)
        if sign > 0:
            k = math.floor(xc / step)
            while grid(k) <= xc:
                k += 1
            while grid(k - 1) > xc:
                k -= 1
        else:
            k = math.ceil(xc / step)
            while grid(k) >= xc:
                k -= 1
            while grid(k + 1) < xc:
                k += 1
        # x beyond the bound it moves away from (a value past the range it was trained on,
        # which the contract may still accept): the first value is that bound's edge
        while not action.inside(grid(k)) and (
            grid(k) < action.high if sign > 0 else grid(k) > action.low
        ):
            k += sign
        if not action.inside(grid(k)):
            continue  # the bound is already reached
        # the last grid value inside the bounds in this direction
        end = math.floor(action.high / step) + 1 if sign > 0 else math.ceil(action.low / step) - 1
        while not action.inside(grid(end)):
            end -= sign
        first = grid(k)
        out.append(move(int(first) if decimals == 0 else first, sign * step, abs(end - k)))
    return [m for m in out if _sane(m)]


def _sane(move: _Move) -> bool:
    """A move whose cost and effect are finite and of a size a person could act on (a value
    recorded absurdly far outside the feasible range would cost more than :data:`MAX_COST`)."""
    numbers = (move.cost0, move.cost1, move.gain0, move.gain1, move.shift0)
    return all(math.isfinite(v) for v in numbers) and move.cost0 <= MAX_COST


def _single(move: _Move, need: float, counterfactual: Any) -> Counterfactual | None:
    """The cheapest change along one move that flips the decision alone (closed form)."""
    if move.gain0 <= need:
        k = 0
    elif move.gain1 < 0:
        steps = (need - move.gain0) / move.gain1 - 1e-9
        if not math.isfinite(steps) or steps > move.count:
            return None  # not within this move's feasible steps
        k = max(0, math.ceil(steps))
    else:
        return None
    # the closed form is checked by the scorer; a value within rounding of the bound may not
    # flip, and then the next step does
    for steps in range(k, min(k + 3, move.count + 1)):
        found = counterfactual([(move, steps)])
        if found is not None:
            return found
    return None


def _within(moves: Sequence[_Move], budget: float) -> list[_Move]:
    """The moves, each cut to the steps that cost no more than ``budget`` on their own (every
    other move costs >= 0, so no assignment beyond them can cost less)."""
    out = []
    for mv in moves:
        if mv.cost0 > budget:
            continue
        if mv.count and mv.cost1 > 0:
            mv = replace(mv, count=min(mv.count, math.floor((budget - mv.cost0) / mv.cost1)))
        out.append(mv)
    return out


def _reach(moves: Sequence[_Move]) -> float:
    """The most the log-odds can drop, one move per feature, ignoring other limits (so when
    even this does not reach the target, nothing does)."""
    best: dict[int, float] = {}
    for mv in moves:
        drop = min(mv.gain0, mv.gain0 + mv.gain1 * mv.count)
        best[mv.group] = min(best.get(mv.group, 0.0), drop)
    return math.fsum(best.values())


class _TooLarge(Exception):
    """The enumeration would be slower than the integer program."""


_MAX_SUBSETS: Final = 4096  # sets of moves (at most one per feature) the enumeration may visit
_MAX_STEPS: Final = 5000  # steps along the outer move of a pair


def _steps_needed(rest: float, gain1: float, count: int) -> int | None:
    """The fewest steps ``k <= count`` with ``gain1 * k <= rest`` (None: none are enough)."""
    if rest >= 0:
        return 0
    if gain1 >= 0:
        return None
    k = max(0, math.ceil(rest / gain1 - 1e-12))
    while k <= count and gain1 * k > rest:
        k += 1
    while k > 0 and gain1 * (k - 1) <= rest:
        k -= 1
    return k if k <= count else None


def _enumerate(
    moves: Sequence[_Move],
    need: float,
    max_changes: int | None,
    incumbent: Counterfactual | None,
) -> list[tuple[_Move, int]] | None:
    """The minimal-cost combined change by exhaustive enumeration, when that is small.

    Every set of moves with at most one per feature (and at most ``max_changes``) is tried; for
    a set, the steps along its numeric moves are exact: none or one such move has a closed form
    (:func:`_steps_needed`), two are solved by walking the steps of one (the cost along it only
    grows, so the walk stops once it alone costs more than the best found) with the closed form
    for the other. The same program as :func:`_solve`'s, solved without a solver's overhead
    (a few microseconds against HiGHS's milliseconds per call, which a batch of denials pays
    for every row). Raises :class:`_TooLarge` when a set has three or more numeric moves with
    steps, or the sets or steps are too many; the caller then runs the integer program.

    Returns the chosen ``(move, steps)`` pairs of the cheapest change strictly cheaper than
    ``incumbent`` (None if there is none).
    """
    groups: dict[int, list[_Move]] = {}
    for mv in moves:
        groups.setdefault(mv.group, []).append(mv)
    options = [[None, *g] for g in groups.values()]
    if math.prod(len(o) for o in options) > _MAX_SUBSETS:
        raise _TooLarge
    best_cost = incumbent.cost if incumbent is not None else math.inf
    best: list[tuple[_Move, int]] | None = None
    for combo in itertools.product(*options):
        chosen = [mv for mv in combo if mv is not None]
        if not chosen or (max_changes is not None and len(chosen) > max_changes):
            continue
        fixed = [mv for mv in chosen if not mv.count]
        stepped = [mv for mv in chosen if mv.count]
        base_cost = math.fsum(mv.cost0 for mv in chosen)
        rest = need - math.fsum(mv.gain0 for mv in chosen)
        if base_cost >= best_cost:
            continue
        picks: list[tuple[_Move, int]] = [(mv, 0) for mv in fixed]
        if len(stepped) > 2:
            raise _TooLarge
        if not stepped:
            if rest >= 0:
                best_cost, best = base_cost, picks
            continue
        if len(stepped) == 1:
            (a,) = stepped
            k = _steps_needed(rest, a.gain1, a.count)
            if k is not None and base_cost + a.cost1 * k < best_cost:
                best_cost, best = base_cost + a.cost1 * k, [*picks, (a, k)]
            continue
        a, b = sorted(stepped, key=lambda mv: mv.count)
        if a.count > _MAX_STEPS:
            raise _TooLarge
        for ka in range(a.count + 1):
            cost_a = base_cost + a.cost1 * ka
            if cost_a >= best_cost:
                break
            kb = _steps_needed(rest - a.gain1 * ka, b.gain1, b.count)
            if kb is not None and cost_a + b.cost1 * kb < best_cost:
                best_cost, best = cost_a + b.cost1 * kb, [*picks, (a, ka), (b, kb)]
    return best


def _solve(
    moves: list[_Move],
    groups: int,
    need: float,
    max_changes: int | None,
    counterfactual: Any,
    joint: Sequence[tuple[dict[int, int], float]] = (),
    *,
    incumbent: Counterfactual | None = None,
) -> Counterfactual | None:
    """Minimal-cost combined change by mixed-integer programming (HiGHS via scipy).

    Variables, per move: ``y`` (binary: the move is made) and ``k`` (integer: further steps,
    at most ``count * y``). ``incumbent`` (the cheapest single change, already re-scored) bounds
    the objective: the program only looks for something no dearer (a cutoff that spares most
    of the branch and bound), and when there is nothing, the incumbent is the optimum.
    """
    if not moves or max_changes == 0:
        return None
    if _reach(moves) > need:  # not even every feature at its best reaches the target
        return incumbent
    if incumbent is not None and (max_changes is None or max_changes >= 1):
        moves = _within(moves, incumbent.cost + _CUTOFF_SLACK)
        if not moves:
            return incumbent
    if not joint:
        try:
            best = _enumerate(moves, need, max_changes, incumbent)
        except _TooLarge:
            pass  # the branch and bound below
        else:
            if best is None:
                return incumbent
            found = counterfactual(best)
            if found is not None:
                return found
            # within rounding of the threshold: the program's tightened bounds decide
    m = len(moves)
    cost = np.array([v for mv in moves for v in (mv.cost0, mv.cost1)])
    gain = np.array([v for mv in moves for v in (mv.gain0, mv.gain1)])
    upper_vars = np.array([v for mv in moves for v in (1, mv.count)], dtype=float)
    rows: list[np.ndarray] = []
    ub: list[float] = []
    for i, mv in enumerate(moves):  # k <= count * y
        if mv.count:
            row = np.zeros(2 * m)
            row[2 * i + 1], row[2 * i] = 1.0, -float(mv.count)
            rows.append(row)
            ub.append(0.0)
    for g in range(groups):  # one move per feature
        row = np.zeros(2 * m)
        for i, mv in enumerate(moves):
            if mv.group == g:
                row[2 * i] = 1.0
        rows.append(row)
        ub.append(1.0)
    if max_changes is not None:
        row = np.zeros(2 * m)
        row[0::2] = 1.0
        rows.append(row)
        ub.append(float(max_changes))
    for signs, rhs in joint:  # a feature's value: x + (first - x) y + step k, summed over moves
        row = np.zeros(2 * m)
        for i, mv in enumerate(moves):
            sign = signs.get(mv.group, 0)
            if sign:
                row[2 * i] = sign * mv.shift0
                row[2 * i + 1] = sign * mv.step
        rows.append(row)
        ub.append(rhs)
    if incumbent is not None and (max_changes is None or max_changes >= 1):
        rows.append(cost)
        ub.append(incumbent.cost + _CUTOFF_SLACK)
    rows.append(gain)
    matrix = np.vstack(rows)
    for slack in _SLACKS:
        upper = np.array([*ub, need - slack])
        result = milp(
            cost,
            integrality=np.ones(2 * m),
            bounds=Bounds(np.zeros(2 * m), upper_vars),
            constraints=LinearConstraint(matrix, np.full(len(upper), -np.inf), upper),
            options={"mip_rel_gap": 0.0},
        )
        if result.status == 2:  # infeasible: nothing flips the decision (more cheaply)
            return incumbent
        if result.x is None:
            raise RuntimeError(ERR_SOLVER.format(message=result.message))
        z = np.round(result.x).astype(int)
        chosen = [(mv, int(z[2 * i + 1])) for i, mv in enumerate(moves) if z[2 * i] == 1]
        found = counterfactual(chosen)
        if found is not None:
            return found
    raise RuntimeError(ERR_NOT_REFLIPPED)


__all__ = [
    "ACTIONS",
    "MARGIN",
    "Change",
    "Counterfactual",
    "FeatureAction",
    "Recourse",
    "RecoursePolicy",
    "build_policy",
    "change_words",
    "compute",
    "format_value",
    "logit_of",
    "sentences",
]
