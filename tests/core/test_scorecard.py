"""The compiled scorecard against scikit-learn, on every row of both real datasets."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.core.dataset import DatasetSpec, Feature, load_spec, read_source
from governance.core.scorecard import (
    Scorecard,
    adverse_values,
    agreement,
    catalogue,
    compile_pipeline,
    value_reasons,
    worded_reason,
)
from governance.core.training import MISSING, TrainParams, model_inputs, split, train

PARAMS = TrainParams(seed=7, threshold=0.5, reason_count=4)
FORMAT_1 = "governance.scorecard/1"
V2_ONLY = ("missing_reasons", "value_reasons", "missing_factors")  # a format 1 has none


def fitted(name: str) -> tuple[DatasetSpec, pd.DataFrame, object, Scorecard]:
    spec = load_spec(name)
    frame = read_source(spec.source).rename(columns=spec.rename)
    train_frame, _ = split(frame, spec, test_size=0.25, seed=7)
    pipeline = train(train_frame, spec, PARAMS)
    return spec, frame, pipeline, compile_pipeline(pipeline, spec, train_frame, PARAMS)


@pytest.fixture(scope="module", params=["hmda", "credit"])
def model(request: pytest.FixtureRequest) -> tuple[DatasetSpec, pd.DataFrame, object, Scorecard]:
    return fitted(request.param)


def rows(spec: DatasetSpec, frame: pd.DataFrame) -> list[dict[str, object]]:
    records = model_inputs(frame, spec).to_dict(orient="records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in records
    ]


def test_agrees_with_scikit_learn_on_every_row(model: tuple) -> None:
    spec, frame, pipeline, scorecard = model
    assert agreement(scorecard, pipeline, frame, spec) < 1e-12
    reference = pipeline.predict_proba(model_inputs(frame, spec))[:, 1]
    one_at_a_time = np.array([scorecard.score(r).score for r in rows(spec, frame)])
    assert np.max(np.abs(one_at_a_time - reference)) < 1e-12


def test_contributions_add_up_to_the_score(model: tuple) -> None:
    spec, frame, _, scorecard = model
    for r in rows(spec, frame):
        scored = scorecard.score(r)
        e = scored.explanation
        assert abs(e.base_value + math.fsum(e.contributions.values()) - e.logit) < 1e-9
        assert abs(1 / (1 + math.exp(-e.logit)) - scored.score) < 1e-12
        assert set(e.contributions) == set(spec.feature_names)


def test_vectorised_contributions_equal_one_at_a_time(model: tuple) -> None:
    spec, frame, _, scorecard = model
    scores, contrib = scorecard.score_frame(model_inputs(frame, spec))
    for i, r in enumerate(rows(spec, frame)[:200]):
        one = scorecard.score(r)
        assert abs(one.score - scores[i]) < 1e-12
        assert np.allclose([one.explanation.contributions[n] for n in scorecard.order], contrib[i])


def test_reasons_are_the_largest_adverse_contributions_in_words(model: tuple) -> None:
    spec, frame, _, scorecard = model
    adverse = favorable = 0
    for r in rows(spec, frame)[:300]:
        scored = scorecard.score(r)
        c = scored.explanation.contributions
        assert scored.outcome == ("deny" if scored.score >= 0.5 else "approve")
        if not scored.adverse:
            favorable += 1
            assert scored.reasons == []  # adverse-action reasons belong to adverse outcomes
            continue
        adverse += 1
        expected = sorted((n for n in c if c[n] > 0), key=lambda n: -c[n])[: PARAMS.reason_count]
        assert [x["feature"] for x in scored.reasons] == expected
        for x in scored.reasons:
            assert x["reason"] == scorecard.reason_for(x["feature"], r[x["feature"]])
        assert scored.factors == []
    assert adverse and favorable


def _on_the_side(pipeline: Any, spec: DatasetSpec, name: str, value: Any, sides: tuple) -> bool:
    """Whether one input is among ``sides``: categories, or above / below the training mean
    (scikit-learn's scaler, which centres on it: the average applicant contributions compare
    with)."""
    if spec.feature(name).kind == "categorical":
        return value in sides
    scaler = pipeline.named_steps["pre"].named_transformers_["num"].named_steps["scale"]
    mean = float(scaler.mean_[list(spec.numeric).index(name)])
    return {"high": value > mean, "low": value < mean}[sides[0]]


def test_every_principal_reason_is_true_of_the_applicant(model: tuple) -> None:
    """The spec words hirat's reason "Housing expenses too high relative to income", but the
    fitted weight is negative: a *low* ratio raises the denial score. Denials with a low ratio
    were told their housing expenses were too high, and following that "reason" raised the
    score. Every reason given on every row of both datasets is now checked against the applicant:
    the spec's words name the side it states, reworded ones ("... too low", "...: no") the side
    the model penalises. A missing input is said as not provided (the next test)."""
    spec, frame, pipeline, scorecard = model
    checked = 0
    for r in rows(spec, frame):
        for x in scorecard.score(r).reasons:
            f = spec.feature(x["feature"])
            if r[f.name] is None or not f.adverse:
                continue  # a missing input: the next test
            if x["reason"] == f.reason:
                sides = f.adverse
            elif f.kind == "numeric":
                sides = (x["reason"].rsplit(" too ", 1)[1],)
            else:
                sides = (x["reason"].split(": ", 1)[1],)
            assert _on_the_side(pipeline, spec, f.name, r[f.name], sides), (f.name, r, x)
            checked += 1
    assert checked > 400


def test_a_reason_of_an_input_left_out_says_it_was_not_provided() -> None:
    """A missing Income is scored as the training median, which raised the denial score; the
    reason said "Income insufficient for amount of credit requested" of an applicant who gave
    no income. It now says the income was not provided, single and batch alike (the batch
    tests compare the two paths byte for byte)."""
    spec, frame, _, scorecard = fitted("credit")
    said: dict[str, set[str]] = {}
    for r in rows(spec, frame):
        for x in scorecard.score(r).reasons:
            if r[x["feature"]] is None:
                said.setdefault(x["feature"], set()).add(x["reason"])
            else:
                assert x["reason"] == scorecard.reasons[x["feature"]]
    assert said["Income"] == {"Monthly income not provided"}
    assert all(
        words == {f"{spec.feature(n).words[:1].upper()}{spec.feature(n).words[1:]} not provided"}
        for n, words in said.items()
    )
    assert scorecard.missing_reasons.keys() == {f.name for f in spec.features if f.nullable}


def test_a_reason_the_fitted_model_contradicts_is_worded_from_the_model() -> None:
    spec, _, pipeline, scorecard = HMDA
    names, weights = pipeline[:-1].get_feature_names_out(), pipeline[-1].coef_.ravel()
    coef = dict(zip(names, weights, strict=True))
    assert coef["num__hirat"] < 0 and spec.feature("hirat").adverse == ("high",)
    assert scorecard.reasons["hirat"] == "Housing expenses to income ratio too low"
    assert adverse_values(spec.feature("hirat"), scorecard) == ("low",)
    kept = {n: w for n, w in scorecard.reasons.items() if n != "hirat"}
    assert kept == {f.name: f.reason for f in spec.features if f.name != "hirat"}


def _card(**categorical: dict[str, float]) -> Scorecard:
    return Scorecard(
        intercept=0.0,
        numeric={"ratio": {"fill": 0.0, "mean": 0.0, "scale": 1.0, "weight": 0.0, "reference": 0}},
        categorical={n: {"weights": w, "reference": 0.0} for n, w in categorical.items()},
        order=("ratio", *categorical),
        threshold=0.5,
        reasons={},
        reason_count=4,
        outcomes={"adverse": "deny", "favorable": "approve"},
    )


def test_a_categorical_reason_names_a_level_the_spec_s_words_do_not_describe() -> None:
    """A spec's "Public record" said of an applicant with none would be false; an applicant with
    the level the words describe keeps them, one with another level the model penalises is told
    that level, never a list of codes."""
    flag = Feature("flag", "categorical", "Public record", ("no", "yes"), label="public record")
    flag = replace(flag, adverse=("yes",))
    agrees = _card(flag={"no": -1.0, "yes": 1.0, MISSING: 0.5})
    contrary = _card(flag={"no": 1.0, "yes": -1.0, MISSING: 0.5})
    assert worded_reason(flag, contrary) == "Public record"  # what the "yes" applicants get
    assert value_reasons(flag, agrees) == {}  # missing: "... not provided", not a level
    assert value_reasons(flag, contrary) == {"no": "Public record: no"}
    three = replace(flag, categories=("no", "yes", "maybe"), adverse=("yes",))
    levels = _card(flag={"no": 1.0, "yes": 2.0, "maybe": 1.5, MISSING: 0.5})
    assert value_reasons(three, levels) == {
        "no": "Public record: no",
        "maybe": "Public record: maybe",
    }
    worded = replace(
        levels,
        reasons={"ratio": "r", "flag": "Public record"},
        value_reasons={"flag": value_reasons(three, levels)},
    )
    said = {v: worded.reason_for("flag", v) for v in ("no", "yes", "maybe")}
    assert said == {
        "no": "Public record: no",
        "yes": "Public record",
        "maybe": "Public record: maybe",
    }
    assert value_reasons(replace(flag, adverse=()), contrary) == {}  # the words name no level
    ratio = Feature("ratio", "numeric", "Ratio too high", adverse=("high",))
    assert worded_reason(ratio, agrees) == "Ratio too high"  # a zero weight raises nothing


def test_the_imputer_s_own_category_is_worded_as_the_input_left_out() -> None:
    """The model scores the category ``"missing"`` exactly as a left-out input; it was told the
    spec's words. It is still accepted (decisions recorded with it must replay, and a version's
    contract refuses it before any decision), now with the same words as ``None``."""
    spec, frame, _, scorecard = fitted("credit")
    compared = 0
    for r in rows(spec, frame)[:1500]:
        gone, named = scorecard.score({**r, "Home": None}), scorecard.score({**r, "Home": MISSING})
        assert (gone.score, gone.reasons, gone.factors) == (
            named.score,
            named.reasons,
            named.factors,
        )
        compared += any(x["reason"] == "Housing status not provided" for x in gone.reasons)
    assert compared
    as_before = scorecard.score({**rows(spec, frame)[0], "Records": MISSING})  # not nullable
    assert all(x["reason"] == scorecard.reasons[x["feature"]] for x in as_before.reasons)


def test_a_format_2_document_without_the_later_words_still_loads() -> None:
    """The first format 2 scorecards (written before value_reasons and missing_factors) are
    served and replayed with none of either."""
    _, _, _, scorecard = fitted("credit")
    first = {
        k: v
        for k, v in scorecard.to_dict().items()
        if k not in ("value_reasons", "missing_factors")
    }
    loaded = Scorecard.from_dict(first)
    assert loaded.missing_reasons == scorecard.missing_reasons
    assert loaded.value_reasons == {} and loaded.missing_factors == {}


def test_a_main_factor_of_an_input_left_out_says_it_was_not_provided() -> None:
    spec, frame, _, scorecard = fitted("credit")
    said = set()
    for r in rows(spec, frame):
        for x in scorecard.score(r).factors:
            if r[x["feature"]] is None:
                said.add((x["feature"], x["factor"]))
            else:
                assert x["factor"] == spec.feature(x["feature"]).words
    assert ("Debt", "debt (not provided)") in said


def test_the_card_s_catalogue_of_a_scorecard_compiled_before() -> None:
    """A workspace trained before format 2 still gets its card: the words it says, no more."""
    spec, _, _, scorecard = fitted("credit")
    old = {k: v for k, v in scorecard.to_dict().items() if k not in V2_ONLY}
    reasons, reworded = catalogue(spec.features, Scorecard.from_dict(old | {"format": FORMAT_1}))
    assert reasons == [{"feature": f.name, "reason": f.reason} for f in spec.features]
    assert reworded == []
    reasons, _ = catalogue(spec.features, scorecard)
    by_name = {r["feature"]: r for r in reasons}
    assert by_name["Income"]["missing"] == "Monthly income not provided"
    assert "missing" not in by_name["Seniority"]


def test_a_scorecard_is_written_back_in_its_own_format() -> None:
    _, _, _, scorecard = fitted("credit")
    assert scorecard.to_dict()["format"] == "governance.scorecard/2"
    old = {k: v for k, v in scorecard.to_dict().items() if k not in V2_ONLY}
    old["format"] = FORMAT_1
    assert Scorecard.from_dict(old).to_dict() == old


def test_a_scorecard_keeps_the_words_it_was_registered_with() -> None:
    """Replay reloads the registered scorecard: a version compiled before reasons were checked
    keeps saying what its decisions said."""
    spec, frame, _, scorecard = HMDA
    old = scorecard.to_dict() | {"reasons": {f.name: f.reason for f in spec.features}}
    old = {k: v for k, v in old.items() if k not in V2_ONLY}
    again = Scorecard.from_dict(old | {"format": FORMAT_1})
    said = [x["reason"] for r in rows(spec, frame) for x in again.score(r).reasons]
    assert "Housing expenses too high relative to income" in said
    assert "Housing expenses to income ratio too low" not in said
    spec, frame, _, scorecard = fitted("credit")
    old = {k: v for k, v in scorecard.to_dict().items() if k not in V2_ONLY}
    again = Scorecard.from_dict(old | {"format": FORMAT_1})
    assert again.missing_reasons == {} and scorecard.missing_reasons
    no_income = next(
        r
        for r in rows(spec, frame)
        if r["Income"] is None and "Income" in {x["feature"] for x in again.score(r).reasons}
    )
    reasons = {x["feature"]: x["reason"] for x in again.score(no_income).reasons}
    assert reasons["Income"] == "Income insufficient for amount of credit requested"
    with pytest.raises(ValueError, match=r"not a governance\.scorecard/2 document"):
        Scorecard.from_dict(old | {"format": "governance.scorecard/3"})


def test_approvals_carry_main_factors_in_plain_words(model: tuple) -> None:
    spec, frame, _, scorecard = model
    seen = 0
    for r in rows(spec, frame)[:300]:
        scored = scorecard.score(r)
        if scored.adverse:
            continue
        c = scored.explanation.contributions
        expected = sorted((n for n in c if c[n] < 0), key=lambda n: c[n])[: PARAMS.reason_count]
        assert [x["feature"] for x in scored.factors] == expected
        assert all(x["factor"] == spec.feature(x["feature"]).words for x in scored.factors)
        assert all("reason" not in x for x in scored.factors)
        seen += len(scored.factors)
    assert seen


def test_sensitive_attributes_are_not_inputs(model: tuple) -> None:
    spec, _, _, scorecard = model
    assert not set(spec.sensitive_features) & set(scorecard.order)


def test_round_trips_through_json(model: tuple) -> None:
    spec, frame, _, scorecard = model
    again = Scorecard.from_dict(scorecard.to_dict())
    for r in rows(spec, frame)[:50]:
        assert again.score(r) == scorecard.score(r)


def test_missing_values_are_imputed_like_scikit_learn() -> None:
    spec, frame, pipeline, scorecard = fitted("credit")
    incomplete = frame[frame[["Income", "Home", "Job"]].isna().any(axis=1)]
    assert len(incomplete) > 300
    assert agreement(scorecard, pipeline, incomplete, spec) < 1e-12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown feature 'colour'"),
        ({"pirat": "high"}, "feature 'pirat': expected a finite number, got 'high'"),
        ({"pirat": float("nan")}, "feature 'pirat': expected a finite number, got nan"),
        ({"pirat": float("inf")}, "feature 'pirat': expected a finite number, got inf"),
        ({"pirat": True}, "feature 'pirat': expected a finite number, got True"),
        ({"phist": "maybe"}, "feature 'phist': 'maybe' is not one of ['no', 'yes']"),
    ],
)
def test_bad_input_is_named(change: dict[str, object], message: str) -> None:
    spec, frame, _, scorecard = fitted("hmda")
    features = {**rows(spec, frame)[0], **change}
    with pytest.raises(ValueError) as err:
        scorecard.score(features)
    assert str(err.value).startswith(message)


def test_a_missing_feature_is_named() -> None:
    spec, frame, _, scorecard = fitted("hmda")
    features = rows(spec, frame)[0]
    del features["lvrat"]
    with pytest.raises(ValueError, match="missing feature 'lvrat'"):
        scorecard.score(features)


@settings(max_examples=200, deadline=None)
@given(
    pirat=st.floats(0, 3),
    hirat=st.floats(0, 3),
    lvrat=st.floats(0, 2),
    chist=st.integers(1, 6),
    mhist=st.integers(1, 4),
    unemp=st.floats(1, 11),
    flags=st.lists(st.sampled_from(["no", "yes"]), min_size=5, max_size=5),
)
def test_any_valid_application_agrees_and_adds_up(**kw: object) -> None:
    spec, _, pipeline, scorecard = HMDA
    flags = kw.pop("flags")
    features = {**kw, **dict(zip(spec.categorical, flags, strict=True))}
    scored = scorecard.score(features)
    frame = model_inputs(pd.DataFrame([features]), spec)
    assert abs(scored.score - pipeline.predict_proba(frame)[0, 1]) < 1e-12
    e = scored.explanation
    assert abs(e.base_value + math.fsum(e.contributions.values()) - e.logit) < 1e-9


HMDA = fitted("hmda")


def _conclude_frame_equals_conclude(scorecard: Scorecard, contrib: np.ndarray) -> None:
    frame = scorecard.conclude_frame(contrib)
    names = list(scorecard.order)
    for i, row in enumerate(contrib.tolist()):
        one = scorecard.conclude(dict(zip(names, row, strict=True)))
        assert frame.logits[i] == one.explanation.logit  # bit for bit, no tolerance
        assert frame.scores[i] == one.score
        assert bool(frame.adverse[i]) == one.adverse
        reasons = [names[c] for c in frame.reasons[i].tolist() if c >= 0]
        assert reasons == [r["feature"] for r in one.reasons]
        assert (frame.reasons[i] >= 0).sum() == len(one.reasons)
        factors = [names[c] for c in frame.factors[i].tolist() if c >= 0]
        assert factors == [f["feature"] for f in one.factors]
        assert (frame.factors[i] >= 0).sum() == len(one.factors)


def test_conclude_frame_equals_conclude_on_real_rows(model: tuple) -> None:
    spec, frame, _, scorecard = model
    _, contrib = scorecard.score_frame(model_inputs(frame, spec))
    _conclude_frame_equals_conclude(scorecard, contrib)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from([0.0, -0.0, 0.5, -0.5, 1e-300, 0.25])
            | st.floats(-30, 30, allow_nan=False),
            min_size=11,
            max_size=11,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_conclude_frame_equals_conclude_with_ties_and_zeros(values: list[list[float]]) -> None:
    """Ties between contributions (broken by name), zeros and signed zeros, few positives."""
    _, _, _, scorecard = HMDA
    _conclude_frame_equals_conclude(scorecard, np.asarray(values, dtype=np.float64))
