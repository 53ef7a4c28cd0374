"""Exact recourse against an exhaustive search, on the real held-out denials of both datasets.

The reference here shares no code with :mod:`governance.core.recourse`: it builds each
feature's feasible values itself (from the GX suite, the training range and the spec), scores
every combination of them with the scikit-learn pipeline's own coefficients, and takes the
cheapest that flips. Counterfactuals are re-scored by scikit-learn, not only by the scorecard.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.core import recourse_record
from governance.core.contract import derive_contract
from governance.core.dataset import DatasetSpec, load_spec, read_source
from governance.core.recourse import (
    MARGIN,
    RecoursePolicy,
    build_policy,
    compute,
    sentences,
)
from governance.core.scorecard import Scorecard, compile_pipeline
from governance.core.training import TrainParams, model_inputs, split, train
from governance.core.validation import load_suite

REPO = Path(__file__).resolve().parents[2]
PARAMS = TrainParams(seed=20240611, threshold=0.5)


class Fitted:
    """A trained model, its held-out denials and the constraints, computed by the test."""

    def __init__(self, name: str) -> None:
        self.spec: DatasetSpec = load_spec(name)
        frame = read_source(self.spec.source).rename(columns=self.spec.rename)
        self.train, self.test = split(frame, self.spec, test_size=0.25, seed=20240611)
        self.pipeline = train(self.train, self.spec, PARAMS)
        self.scorecard: Scorecard = compile_pipeline(self.pipeline, self.spec, self.train, PARAMS)
        suite = json.loads((REPO / self.spec.suite).read_text())
        hard = suite_bounds(suite)
        self.bounds = {
            c: (
                max(hard.get(c, (-math.inf, math.inf))[0], float(self.train[c].min())),
                min(hard.get(c, (-math.inf, math.inf))[1], float(self.train[c].max())),
            )
            for c in self.spec.numeric
        }
        self.contract = derive_contract(self.spec, load_suite(REPO / self.spec.suite), self.train)
        self.policy: RecoursePolicy = build_policy(self.spec, self.scorecard, self.contract)
        x = model_inputs(self.test, self.spec)
        scores, _ = self.scorecard.score_frame(x)
        self.denials = [
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in x[scores >= PARAMS.threshold].to_dict(orient="records")
        ]
        # the model's own coefficients, per unit of each numeric input and per category
        self.clf = self.pipeline.named_steps["clf"]
        pre = self.pipeline.named_steps["pre"]
        names = list(pre.get_feature_names_out())
        self.coef = dict(zip(names, self.clf.coef_.ravel(), strict=True))
        self.scale = dict(
            zip(
                self.spec.numeric,
                pre.named_transformers_["num"].named_steps["scale"].scale_,
                strict=True,
            )
        )

    def sklearn_logit(self, inputs: dict[str, Any]) -> float:
        frame = model_inputs(pd.DataFrame([inputs]), self.spec)
        return float(self.pipeline.decision_function(frame)[0])

    def choices(
        self, inputs: dict[str, Any], name: str
    ) -> tuple[list[Any], list[float], list[float]]:
        """Every value a feature may take (the current one first), its cost and logit change."""
        f = self.spec.feature(name)
        x = inputs[name]
        if f.action == "none" or x is None:
            return [x], [0.0], [0.0]
        if f.kind == "numeric":
            assert f.step is not None
            low, high = self.bounds[name]
            k = np.arange(math.ceil(low / f.step - 1e-9), math.floor(high / f.step + 1e-9) + 1)
            grid = np.round(k * f.step, 10)
            grid = grid[(grid >= low) & (grid <= high)]
            if f.action == "decrease":
                grid = grid[grid < x]
            elif f.action == "increase":
                grid = grid[grid > x]
            else:
                grid = grid[grid != x]
            per_unit = self.coef[f"num__{name}"] / self.scale[name]
            values = [x, *grid.tolist()]
            costs = [0.0] + [f.cost * abs(v - x) / self.scale[name] for v in grid]
            deltas = [0.0] + [per_unit * (v - x) for v in grid]
            return values, costs, deltas
        order = list(f.categories)
        here = order.index(x)
        allowed = [
            c
            for i, c in enumerate(order)
            if c != x and (f.action == "any" or (f.action == "increase") == (i > here))
        ]
        w = {c: self.coef[f"cat__{name}_{c}"] for c in order}
        return (
            [x, *allowed],
            [0.0] + [f.cost] * len(allowed),
            [0.0] + [w[c] - w[x] for c in allowed],
        )

    def brute_force(self, inputs: dict[str, Any], max_changes: int | None = None) -> float | None:
        """The minimal cost over every combination of feasible values, or None.

        Combinations are enumerated feature by feature; a partial combination is dropped only
        when another with no more changed features costs no more and lowers the log-odds at
        least as much (it can never do better), or when it already costs more than a known
        solution. Both prunings are exact.
        """
        logit0 = self.sklearn_logit(inputs)
        need = math.log(PARAMS.threshold / (1 - PARAMS.threshold)) - MARGIN - logit0
        tables = [self.choices(inputs, n) for n in self.spec.feature_names]
        limit = len(tables) if max_changes is None else max_changes
        # an upper bound on the optimum: the cheapest single change that flips, if any
        upper = min(
            (c for _, cs, ds in tables for c, d in zip(cs, ds, strict=True) if d <= need),
            default=math.inf,
        )
        states = {0: (np.zeros(1), np.zeros(1))}  # changes -> (costs, logit changes)
        for _, c, d in tables:
            c, d = np.asarray(c), np.asarray(d)
            grown: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
            for k, (costs, deltas) in states.items():
                grown.setdefault(k, []).append((costs, deltas))
                if k < limit and len(c) > 1:
                    grown.setdefault(k + 1, []).append(
                        (
                            (costs[:, None] + c[None, 1:]).ravel(),
                            (deltas[:, None] + d[None, 1:]).ravel(),
                        )
                    )
            states = {}
            for k, parts in grown.items():
                costs = np.concatenate([p[0] for p in parts])
                # once a combination flips, lowering the log-odds further is worth nothing
                deltas = np.maximum(np.concatenate([p[1] for p in parts]), need)
                keep = costs <= upper + 1e-9
                costs, deltas = costs[keep], deltas[keep]
                if not len(costs):
                    continue
                order = np.lexsort((deltas, costs))
                costs, deltas = costs[order], deltas[order]
                best = np.minimum.accumulate(deltas)
                frontier = np.concatenate([[True], deltas[1:] < best[:-1]])
                states[k] = (costs[frontier], deltas[frontier])
        found = [
            costs[deltas <= need].min()
            for costs, deltas in states.values()
            if (deltas <= need).any()
        ]
        return float(min(found)) if found else None


@pytest.fixture(scope="module", params=["hmda", "credit"])
def fitted(request: pytest.FixtureRequest) -> Fitted:
    return Fitted(request.param)


@pytest.fixture(scope="module")
def hmda() -> Fitted:
    return Fitted("hmda")


def check_constraints(f: Fitted, inputs: dict[str, Any], cf: dict[str, Any]) -> None:
    """Every constraint of the spec and the contract, checked from scratch."""
    assert set(cf) == set(inputs)
    for name, before in inputs.items():
        after = cf["inputs"][name] if "inputs" in cf else cf[name]
        feature = f.spec.feature(name)
        if after == before:
            continue
        assert feature.action != "none", f"immutable {name} changed"
        assert before is not None, f"missing {name} was given a value"
        if feature.kind == "numeric":
            assert feature.step is not None
            low, high = f.bounds[name]
            assert low <= after <= high, (name, after, low, high)
            k = after / feature.step
            assert abs(k - round(k)) < 1e-6, f"{name}={after} is not a multiple of {feature.step}"
            if float(feature.step).is_integer():
                assert isinstance(after, int), f"{name} should stay an integer"
            if feature.action == "decrease":
                assert after < before
            if feature.action == "increase":
                assert after > before
        else:
            order = list(feature.categories)
            assert after in order
            if feature.action == "increase":
                assert order.index(after) > order.index(before)
            if feature.action == "decrease":
                assert order.index(after) < order.index(before)


def test_there_are_denials_to_explain(fitted: Fitted) -> None:
    assert len(fitted.denials) >= 10


def test_every_recourse_flips_respects_constraints_and_is_minimal(fitted: Fitted) -> None:
    feasible = infeasible = 0
    counterfactuals = []
    for inputs in fitted.denials:
        rc = compute(fitted.scorecard, fitted.policy, inputs)
        reference = fitted.brute_force(inputs)
        if reference is None:
            assert not rc.feasible and rc.combined is None and not rc.singles
            infeasible += 1
            continue
        feasible += 1
        assert rc.feasible and rc.combined is not None
        assert rc.combined.cost == pytest.approx(reference, abs=1e-6)
        for cf in (rc.combined, *rc.singles):
            check_constraints(fitted, inputs, cf.inputs)
            rescored = fitted.scorecard.score(cf.inputs)
            assert not rescored.adverse and rescored.score == cf.score
            assert rescored.explanation.logit <= rc.target_logit
            assert cf.outcome == fitted.spec.outcomes["favorable"]
            changed = {n for n in inputs if cf.inputs[n] != inputs[n]}
            assert changed == {c.feature for c in cf.changes}
            assert cf.cost == pytest.approx(sum(c.cost for c in cf.changes))
            counterfactuals.append(cf.inputs)
        for single in rc.singles:
            assert len(single.changes) == 1
            assert single.cost >= rc.combined.cost - 1e-9
    assert feasible > 0
    # and by scikit-learn itself, not only by the compiled scorecard
    frame = model_inputs(pd.DataFrame(counterfactuals), fitted.spec)
    assert (fitted.pipeline.predict_proba(frame)[:, 1] < PARAMS.threshold).all()
    print(f"{fitted.spec.name}: {feasible} with recourse, {infeasible} without")


def test_a_value_past_the_training_range_can_still_move_into_it(fitted: Fitted) -> None:
    """A recorded value beyond the feasible range on the side it moves away from (the contract
    accepts values past the training range) may be brought back inside it: the recourse keeps
    that move and stays the exact optimum. It once dropped the move whenever the value lay more
    than one step past the bound, and called the cheapest change "no change would flip"."""
    checked = 0
    for inputs in fitted.denials[:12]:
        for name in fitted.spec.numeric:
            f = fitted.spec.feature(name)
            if f.action == "none" or f.step is None or inputs[name] is None:
                continue
            low, high = fitted.bounds[name]
            past = high + 7.5 * f.step if f.action != "increase" else low - 7.5 * f.step
            if float(f.step).is_integer():
                past = int(past)
            moved = {**inputs, name: past}
            if not fitted.scorecard.score(moved).adverse:
                continue
            reference = fitted.brute_force(moved)
            rc = compute(fitted.scorecard, fitted.policy, moved)
            if reference is None:
                assert not rc.feasible
                continue
            assert rc.feasible and rc.combined is not None, (name, past)
            assert rc.combined.cost == pytest.approx(reference, abs=1e-6), (name, past)
            for cf in (rc.combined, *rc.singles):
                check_constraints(fitted, moved, cf.inputs)
            checked += 1
    assert checked > 0


def test_enumeration_and_integer_program_agree(
    fitted: Fitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small cases are enumerated; the integer program must give the same optimum."""
    from governance.core import recourse

    enumerated = [compute(fitted.scorecard, fitted.policy, x) for x in fitted.denials]
    monkeypatch.setattr(recourse, "_MAX_SUBSETS", 0)  # every case to HiGHS
    solved = [compute(fitted.scorecard, fitted.policy, x) for x in fitted.denials]
    assert sum(r.combined is not None for r in enumerated) > 0
    for a, b in zip(enumerated, solved, strict=True):
        assert (a.combined is None) == (b.combined is None)
        if a.combined is not None and b.combined is not None:
            assert a.combined.cost == pytest.approx(b.combined.cost, abs=1e-6)


def test_single_changes_are_the_cheapest_per_feature(hmda: Fitted) -> None:
    for inputs in hmda.denials[:15]:
        rc = compute(hmda.scorecard, hmda.policy, inputs)
        singles = {s.changes[0].feature: s for s in rc.singles}
        for name in rc.actionable:
            _, costs, deltas = hmda.choices(inputs, name)
            logit0 = hmda.sklearn_logit(inputs)
            flips = [
                c
                for c, d in zip(costs[1:], deltas[1:], strict=True)
                if logit0 + d <= rc.target_logit
            ]
            if not flips:
                assert name not in singles
            else:
                assert singles[name].cost == pytest.approx(min(flips), abs=1e-9)


def test_a_documents_changes_are_the_dataclass_fields(hmda: Fitted) -> None:
    """``Counterfactual.to_dict`` writes each change out by hand: the same as ``asdict``."""
    changes = 0
    for inputs in hmda.denials[:15]:
        rc = compute(hmda.scorecard, hmda.policy, inputs)
        for cf in [*rc.singles, *([rc.combined] if rc.combined else [])]:
            written = cf.to_dict()["changes"]
            assert json.dumps(written) == json.dumps([asdict(c) for c in cf.changes])
            changes += len(written)
    assert changes > 15


def test_no_feasible_recourse_is_a_stated_answer(hmda: Fitted) -> None:
    frozen = replace(
        hmda.policy, actions=tuple(replace(a, action="none") for a in hmda.policy.actions)
    )
    inputs = hmda.denials[0]
    rc = compute(hmda.scorecard, frozen, inputs)
    assert not rc.feasible and rc.combined is None and rc.singles == ()
    assert rc.actionable == ()
    doc = rc.to_dict()
    assert doc["feasible"] is False and doc["combined"] is None
    assert "no change would have led" in doc["summary"][0]
    # a real applicant whose actionable factors cannot move far enough
    hopeless = {**inputs, "insurance": "yes", "phist": "yes", "chist": 6, "mhist": 4}
    hopeless.update(pirat=0.0, hirat=0.0, lvrat=hmda.bounds["lvrat"][0], hschool="yes")
    rc = compute(hmda.scorecard, hmda.policy, hopeless)
    assert hmda.brute_force(hopeless) is None
    assert not rc.feasible
    assert "No change to the factors you can act on" in rc.to_dict()["summary"][0]


def test_direction_constraints_bind(hmda: Fitted) -> None:
    # hirat lowers the log-odds when it rises (collinear with pirat): an unconstrained search
    # would advise raising housing expenses; the policy only lets it fall.
    assert hmda.scorecard.numeric["hirat"]["weight"] < 0
    for inputs in hmda.denials:
        rc = compute(hmda.scorecard, hmda.policy, inputs)
        for cf in (*rc.singles, *([rc.combined] if rc.combined else [])):
            assert all(c.feature != "hirat" or c.after < c.before for c in cf.changes)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    row=st.integers(0, 10_000),
    costs=st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0]), min_size=4, max_size=4),
    max_changes=st.sampled_from([None, 1, 2]),
    lvrat_action=st.sampled_from(["decrease", "any", "none"]),
)
def test_minimal_cost_matches_brute_force_under_other_policies(
    hmda: Fitted, row: int, costs: list[float], max_changes: int | None, lvrat_action: str
) -> None:
    spec = hmda.spec
    features = tuple(
        replace(
            f,
            cost=costs[["pirat", "hirat", "lvrat", "hschool"].index(f.name)],
            action=lvrat_action if f.name == "lvrat" else f.action,
        )
        if f.name in ("pirat", "hirat", "lvrat", "hschool")
        else f
        for f in spec.features
    )
    other = Fitted.__new__(Fitted)
    other.__dict__.update(hmda.__dict__)
    other.spec = replace(spec, features=features)
    other.policy = build_policy(other.spec, hmda.scorecard, hmda.contract, max_changes=max_changes)
    inputs = hmda.denials[row % len(hmda.denials)]
    rc = compute(hmda.scorecard, other.policy, inputs)
    reference = other.brute_force(inputs, max_changes)
    if reference is None:
        assert not rc.feasible
    else:
        assert rc.combined is not None
        assert rc.combined.cost == pytest.approx(reference, abs=1e-6)
        assert max_changes is None or len(rc.combined.changes) <= max_changes
        check_constraints(other, inputs, rc.combined.inputs)


def test_approvals_have_no_recourse(hmda: Fitted) -> None:
    x = model_inputs(hmda.test, hmda.spec).iloc[0].to_dict()
    scored = hmda.scorecard.score(x)
    if scored.adverse:
        pytest.skip("first held-out row is a denial")
    with pytest.raises(ValueError, match="not adverse"):
        compute(hmda.scorecard, hmda.policy, x)


def test_policy_round_trips_and_is_content_addressed(hmda: Fitted) -> None:
    doc = json.loads(json.dumps(hmda.policy.to_dict()))
    again = RecoursePolicy.from_dict(doc)
    assert again == hmda.policy and again.sha256() == hmda.policy.sha256()
    changed = replace(hmda.policy, max_changes=1)
    assert changed.sha256() != hmda.policy.sha256()
    rc = compute(hmda.scorecard, hmda.policy, hmda.denials[0])
    assert rc.policy_sha256 == hmda.policy.sha256()


def test_recourse_in_plain_words(hmda: Fitted) -> None:
    rc = next(
        r
        for r in (compute(hmda.scorecard, hmda.policy, d) for d in hmda.denials)
        if r.feasible and r.singles
    )
    words = sentences(rc.to_dict())
    single = rc.singles[0].changes[0]
    assert words[0].startswith(f"Lowering the {single.label} from ")
    assert words[0].endswith("alone would have led to the outcome \u201capprove\u201d.")
    assert json.loads(json.dumps(rc.to_dict()))["summary"] == words


def test_missing_values_stay_missing() -> None:
    f = Fitted("credit")
    with_missing = [d for d in f.denials if any(d[n] is None for n in ("Income", "Assets", "Debt"))]
    assert with_missing, "the credit data has denials with missing values"
    for inputs in with_missing:
        rc = compute(f.scorecard, f.policy, inputs)
        missing = {n for n in ("Income", "Assets", "Debt") if inputs[n] is None}
        assert missing <= set(rc.missing)
        for cf in (*rc.singles, *([rc.combined] if rc.combined else [])):
            assert all(cf.inputs[n] is None for n in missing)


def test_policy_follows_the_contract(hmda: Fitted) -> None:
    # the hard bounds intersected with the training range, as this test computes them itself
    for name in ("pirat", "hirat", "lvrat"):
        action = hmda.policy.action(name)
        assert (action.low, action.high) == pytest.approx(hmda.bounds[name])
    assert hmda.policy.action("hschool").categories == ("no", "yes")
    assert hmda.policy.action("chist").action == "none"


def test_unbounded_actionable_feature_is_refused(hmda: Fitted) -> None:
    unbounded = {
        "features": [
            {
                **f,
                "bounds": {"min": None, "max": None},
                "training": {**f["training"], "range": None},
            }
            if f["name"] == "lvrat"
            else f
            for f in hmda.contract.to_dict()["features"]
        ]
    }
    contract = type(hmda.contract).from_dict({**hmda.contract.to_dict(), **unbounded})
    with pytest.raises(ValueError, match="no feasible bounds"):
        build_policy(hmda.spec, hmda.scorecard, contract)


def test_relations_of_the_contract_hold() -> None:
    # credit: the suite says Price >= Amount; make Price actionable too, so both may move
    f = Fitted("credit")
    assert ("Price", ">=", "Amount") in f.policy.relations
    features = tuple(
        replace(x, action="decrease", step=50.0) if x.name == "Price" else x
        for x in f.spec.features
    )
    spec = replace(f.spec, features=features)
    policy = build_policy(spec, f.scorecard, f.contract)
    for inputs in f.denials[:40]:
        rc = compute(f.scorecard, policy, inputs)
        for cf in (*rc.singles, *([rc.combined] if rc.combined else [])):
            assert cf.inputs["Price"] >= cf.inputs["Amount"]
            assert f.contract.check(cf.inputs).ok


def suite_bounds(suite: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Hard bounds per column from the suite's between-expectations (this test's own reading)."""
    out: dict[str, tuple[float, float]] = {}
    for e in suite["expectations"]:
        kw = e["kwargs"]
        if e["type"] == "expect_column_values_to_be_between" and "max_value" in kw:
            out[kw["column"]] = (float(kw["min_value"]), float(kw["max_value"]))
    return out


@pytest.mark.parametrize(("name", "value"), [("lvrat", 1e300), ("chist", 1e308), ("pirat", 1e30)])
def test_absurd_recorded_values_get_an_answer(hmda: Fitted, name: str, value: float) -> None:
    """Values far outside every bound (decided before the contract refuses them) end in a
    stated answer, never an endless search or an overflow."""
    inputs = {**hmda.denials[0], name: value}
    if not hmda.scorecard.score(inputs).adverse:
        pytest.skip("not adverse with this value")
    rc = compute(hmda.scorecard, hmda.policy, inputs)
    assert rc.feasible is False and rc.combined is None
    assert rc.to_dict()["summary"][0].startswith("No change to the factors you can act on")


def test_the_memo_keeps_the_recent_documents_and_recomputes_the_rest(
    hmda: Fitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[dict[str, Any]] = []
    real = recourse_record.compute

    def counting(scorecard: Scorecard, policy: RecoursePolicy, inputs: dict[str, Any]) -> Any:
        computed.append(dict(inputs))
        return real(scorecard, policy, inputs)

    monkeypatch.setattr(recourse_record, "compute", counting)
    a, b, c = hmda.denials[:3]
    memo = recourse_record.Memo(hmda.scorecard, hmda.policy, size=2)
    docs = [memo.document(x) for x in (a, b, a, c, b, a)]
    # a, b computed; a remembered; c pushes a out (the oldest); b remembered; a again
    assert computed == [a, b, c, a]
    assert docs == [real(hmda.scorecard, hmda.policy, x).to_dict() for x in (a, b, a, c, b, a)]
