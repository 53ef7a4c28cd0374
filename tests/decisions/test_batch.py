"""Batch decision records built column-wise are byte for byte the single-decision records."""

from __future__ import annotations

import gc
import math
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from governance.core.scorecard import Scorecard
from governance.core.training import MISSING
from governance.decisions.batch import (
    body_template,
    collector_paused,
    decision_bodies,
    json_column,
)
from governance.decisions.service import _clean_features, decision_body
from governance.ledger.canonical import CANONICAL_FORMATS, encoder_for
from governance.registry.mlflow import LoadedModel

ENCODERS = {name: encoder_for(name) for name in CANONICAL_FORMATS}
# Floats at every exponent boundary of both formats (positional / exponent, 1e-5 / 1e-7 ...).
EDGES = [
    0.0,
    -0.0,
    1e-7,
    1.5e-7,
    1e-5,
    0.0001,
    1e15,
    1e16,
    123456789012345.6,
    5e-324,
    1.7976931348623157e308,
    2.2250738585072014e-308,
    0.1 + 0.2,
]
# Text with the characters the templates treat specially (``%`` of ``bytes %``, JSON's own).
TEXT = st.text(
    st.one_of(
        st.sampled_from('%"\\{}[],:'), st.characters(codec="utf-8", exclude_categories=("Cs",))
    ),
    min_size=1,
    max_size=6,
)
FLOATS = st.one_of(
    st.sampled_from(EDGES),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(-1e-4, 1e-4, allow_nan=False),
)
WEIGHTS = st.one_of(st.sampled_from([0.0, 1e-7, -2e-6, 3.5, -1e-5]), st.floats(-4, 4))


@st.composite
def cases(draw: st.DrawFn) -> tuple[Scorecard, pd.DataFrame, LoadedModel, dict[str, Any]]:
    names = draw(st.lists(TEXT, min_size=1, max_size=5, unique=True))
    numeric: dict[str, dict[str, float]] = {}
    categorical: dict[str, dict[str, Any]] = {}
    columns: dict[str, Any] = {}
    n = draw(st.integers(1, 8))
    nullable = set()
    for name in names:
        if draw(st.booleans()):
            numeric[name] = {
                "fill": draw(FLOATS),
                "mean": draw(FLOATS),
                "scale": draw(st.sampled_from([1.0, 0.5, 3.0, 1e-3])),
                "weight": draw(WEIGHTS),
                "reference": draw(WEIGHTS),
            }
            if draw(st.booleans()):  # an integer column
                columns[name] = np.asarray(draw(st.lists(st.integers(-50, 50), min_size=n))[:n])
            else:
                values = draw(st.lists(st.one_of(FLOATS, st.just(math.nan)), min_size=n))[:n]
                columns[name] = np.asarray(values, dtype="float64")
                if any(math.isnan(v) for v in values):
                    nullable.add(name)
        else:
            cats = draw(st.lists(TEXT, min_size=1, max_size=4, unique=True))
            weights = {c: draw(WEIGHTS) for c in cats}
            weights[MISSING] = draw(WEIGHTS)
            categorical[name] = {"weights": weights, "reference": draw(WEIGHTS)}
            # None and the imputer's own category: both scored, and worded, as left out
            values = draw(
                st.lists(st.one_of(st.sampled_from(cats), st.none(), st.just(MISSING)), min_size=n)
            )[:n]
            columns[name] = pd.array(values, dtype=draw(st.sampled_from(["str", "object"])))
            if any(v is None for v in values):
                nullable.add(name)
    frame = pd.DataFrame(columns)[names]
    scorecard = Scorecard(
        intercept=draw(WEIGHTS),
        numeric=numeric,
        categorical=categorical,
        order=tuple(names),
        threshold=draw(st.sampled_from([0.5, 0.3, 0.9])),
        reasons={name: draw(TEXT) for name in names},
        reason_count=draw(st.integers(0, 4)),
        outcomes={"adverse": draw(TEXT), "favorable": draw(TEXT)},
        nullable=frozenset(nullable),
        labels={name: draw(TEXT) for name in names},
        # format 2: the words of an input left out, for some of the columns that have one, and
        # of some categories
        missing_reasons={name: draw(TEXT) for name in sorted(nullable) if draw(st.booleans())},
        value_reasons={
            name: {
                c: draw(TEXT) for c in c_weights["weights"] if c != MISSING and draw(st.booleans())
            }
            for name, c_weights in categorical.items()
            if draw(st.booleans())
        },
        missing_factors={name: draw(TEXT) for name in sorted(nullable) if draw(st.booleans())},
    )
    model = LoadedModel(draw(TEXT), draw(TEXT), scorecard, {}, "ab" * 32, draw(TEXT))
    context = {
        "alias": draw(st.one_of(st.none(), TEXT)),
        "caller": draw(st.one_of(st.none(), TEXT)),
        "purpose": draw(st.one_of(st.none(), TEXT)),
    }
    return scorecard, frame, model, context


def _single(
    model: LoadedModel, features: dict[str, Any], context: dict[str, Any], ood: list[str]
) -> dict[str, Any]:
    """The body :meth:`DecisionService.decide_many` builds for one application."""
    scored = model.scorecard.score(features)
    e = scored.explanation
    return decision_body(
        model,
        context["alias"],
        features,
        scored.score,
        scored.outcome,
        e.base_value,
        e.contributions,
        e.logit,
        scored.reasons,
        context["caller"],
        context["purpose"],
        scored.factors,
        ood,
    )


@pytest.mark.parametrize("fmt", CANONICAL_FORMATS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), with_subjects=st.booleans(), with_ood=st.booleans())
def test_batch_bodies_are_the_single_decision_bodies(
    fmt: str,
    case: tuple[Scorecard, pd.DataFrame, LoadedModel, dict[str, Any]],
    with_subjects: bool,
    with_ood: bool,
) -> None:
    scorecard, frame, model, context = case
    encode = ENCODERS[fmt]
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: the single path refuses
        _, contrib = scorecard.score_frame(frame)
    assume(np.isfinite(contrib).all())
    scored = scorecard.conclude_frame(contrib)
    assume(np.isfinite(scored.logits).all())

    def make(**slots: Any) -> dict[str, Any]:
        return decision_body(
            model,
            context["alias"],
            slots["inputs"],
            slots["score"],
            slots["outcome"],
            scorecard.base_value,
            slots["contributions"],
            slots["logit"],
            slots["reasons"],
            context["caller"],
            context["purpose"],
            slots["main_factors"],
            slots.get("out_of_distribution", ()),
        )

    keys = [f"{i:064x}" for i in range(len(frame))] if with_subjects else None
    # some rows flagged out of distribution (their bodies hold the list), others not
    names = sorted(scorecard.order)
    ood = [names[: i % 3] if with_ood else [] for i in range(len(frame))]
    template = body_template(make, encode, subject_key=with_subjects)
    ood_template = body_template(make, encode, subject_key=with_subjects, out_of_distribution=True)
    batch = decision_bodies(
        template,
        scorecard,
        frame,
        contrib,
        scored,
        encode,
        keys,
        ood=ood,
        ood_template=ood_template,
    )

    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    assert len(batch) == len(records)
    for i, raw in enumerate(records):
        body = _single(model, _clean_features(raw), context, ood[i])
        if keys is not None:
            body = {**body, "subject_key": keys[i]}  # as the ledger adds it
        assert batch[i] == encode(body)


@pytest.mark.parametrize("fmt", CANONICAL_FORMATS)
def test_a_column_is_encoded_value_by_value(fmt: str) -> None:
    encode = ENCODERS[fmt]
    values: list[Any] = [*EDGES, -1e-7, 3, None, -12]
    assert json_column(values, encode) == [encode(v) for v in values]
    strings = ["a,b", '"', "\\", "\x00", "é", None, "a,b"]
    assert json_column(strings, encode) == [encode(v) for v in strings]
    assert json_column([], encode) == []


def test_a_template_needs_every_slot_once() -> None:
    encode = ENCODERS[CANONICAL_FORMATS[-1]]
    with pytest.raises(ValueError, match="slot 'score'"):
        body_template(
            lambda **s: {k: v for k, v in s.items() if k != "score"}, encode, subject_key=False
        )


@pytest.fixture
def collector_on() -> Any:
    """The collector on at the start and again at the end, whatever the test left."""
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_pause_holds_the_collector_off_and_restores_it(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a chunk failed")
    assert gc.isenabled()
    gc.disable()  # off before the pause: stays off after it
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_last(collector_on: None) -> None:
    """A first, B second, A ends while B still builds: the collector stays off until B ends."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def a() -> None:
        with collector_paused():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def b() -> None:
        a_in.wait(10)
        with collector_paused():
            b_in.set()
            a_out.wait(10)
            seen["after A ended"] = gc.isenabled()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"after A ended": False}
    assert gc.isenabled()
