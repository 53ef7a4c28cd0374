"""Model inputs: categorical values become exactly the text ``str()`` gives, whatever the dtype."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.core.dataset import as_text, load_spec, read_source
from governance.core.training import TrainParams, model_inputs, number, whole


def one_by_one(column: pd.Series) -> list[object]:
    """The definition: ``str()`` of each present value, NaN where the value is missing."""
    return [math.nan if pd.isna(v) else str(v) for v in column.to_numpy(dtype=object)]


def same(got: np.ndarray, want: list[object]) -> bool:
    assert len(got) == len(want)
    for g, w in zip(got.tolist(), want, strict=True):
        if isinstance(w, float):
            if not (isinstance(g, float) and math.isnan(g)):
                return False
        elif not (isinstance(g, str) and g == w):
            return False
    return True


missing = st.sampled_from([None, math.nan])
texts = st.lists(st.one_of(st.text(max_size=4), missing), max_size=30)
mixed = st.lists(
    st.one_of(
        st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.booleans(), st.text(max_size=2)
    )
    | missing,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(values=texts)
def test_text_columns_of_every_string_dtype(values: list[object]) -> None:
    for dtype in (object, "str", "string"):
        column = pd.Series(values, dtype=dtype)
        assert same(as_text(column), one_by_one(column)), dtype


@settings(max_examples=150, deadline=None)
@given(values=mixed)
def test_object_columns_mixing_equal_values_of_other_types(values: list[object]) -> None:
    # 1, 1.0 and True are equal (one hash) but print "1", "1.0" and "True"
    column = pd.Series(values, dtype=object)
    assert same(as_text(column), one_by_one(column))


@settings(max_examples=100, deadline=None)
@given(
    ints=st.lists(st.integers(-5, 5), max_size=30),
    floats=st.lists(st.floats(-5, 5, width=32) | st.just(math.nan), max_size=30),
    bools=st.lists(st.booleans(), max_size=30),
)
def test_numeric_and_boolean_columns(
    ints: list[int], floats: list[float], bools: list[bool]
) -> None:
    for column in (
        pd.Series(ints, dtype="int64"),
        pd.Series(ints, dtype="Int64").mask(pd.Series(ints) == 0),
        pd.Series(floats, dtype="float64"),
        pd.Series(bools, dtype=bool),
        pd.Series(ints, dtype="category"),
    ):
        assert same(as_text(column), one_by_one(column)), column.dtype


def test_real_rows_as_read_from_csv(tmp_path) -> None:
    for name in ("hmda", "credit"):
        spec = load_spec(name)
        frame = read_source(spec.source).rename(columns=spec.rename)
        frame.to_csv(tmp_path / "raw.csv", index=False)
        for source in (frame, pd.read_csv(tmp_path / "raw.csv")):
            x = model_inputs(source, spec)
            assert list(x.columns) == spec.feature_names
            for name_ in spec.categorical:
                assert same(x[name_].to_numpy(), one_by_one(source[name_])), name_
            for name_ in spec.numeric:
                assert x[name_].dtype == np.float64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": 1.5}, "train.threshold must be between 0 and 1, got 1.5"),
        ({"threshold": 0.0}, "train.threshold must be between 0 and 1"),
        ({"threshold": math.nan}, "train.threshold must be between 0 and 1"),
        ({"reason_count": 0}, "train.reason_count must be a whole number >= 1, got 0"),
        ({"reason_count": -3}, "train.reason_count must be a whole number >= 1"),
        ({"max_iter": 0}, "train.max_iter must be a whole number >= 1"),
        ({"seed": -1}, "train.seed must be a whole number >= 0"),
        ({"seed": True}, "train.seed must be a whole number"),
        ({"C": 0.0}, "train.C must be a finite number > 0"),
        ({"C": math.inf}, "train.C must be a finite number > 0"),
    ],
)
def test_train_params_that_make_the_gates_meaningless_are_refused(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainParams(**change)  # type: ignore[arg-type]


def test_the_defaults_and_the_projects_params_are_accepted() -> None:
    TrainParams()
    TrainParams(C=0.5, max_iter=1, seed=0, threshold=0.01, reason_count=1)


@pytest.mark.parametrize(("value", "want"), [(7, 7), (7.0, 7), ("7", 7), ("-2", -2)])
def test_whole_takes_whole_numbers(value: object, want: int) -> None:
    assert whole(value, "split.seed") == want


@pytest.mark.parametrize("value", [1.7, "1.7", True, None, "seven", math.nan])
def test_whole_refuses_what_int_would_truncate_or_guess(value: object) -> None:
    with pytest.raises(ValueError, match=r"params.yaml split.seed must be a whole number"):
        whole(value, "split.seed")


@pytest.mark.parametrize(
    ("value", "want"), [(0.25, 0.25), (1, 1.0), ("0.25", 0.25), ("1e-3", 1e-3)]
)
def test_number_takes_finite_numbers(value: object, want: float) -> None:
    got = number(value, "split.test_size")
    assert type(got) is float and got == want


@pytest.mark.parametrize("value", ["a quarter", True, None, [0.25], math.nan, "inf", -math.inf])
def test_number_refuses_what_is_not_a_finite_number(value: object) -> None:
    with pytest.raises(ValueError, match=r"params.yaml split.test_size must be a finite number"):
        number(value, "split.test_size")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # an unquoted `yes` became "True": training failed on "only one class: 0"
        ({"adverse_label": "True"}, "the target 'deny' never holds the adverse_label 'True'"),
        ({"adverse_label": "no"}, None),  # both classes: the labels are merely inverted
        ({"target": "gone"}, "the data has no target column 'gone'"),
    ],
)
def test_the_split_names_a_target_that_cannot_be_learnt(
    change: dict[str, str], message: str | None
) -> None:
    from dataclasses import replace

    from governance.core.training import split

    spec = replace(load_spec("hmda"), **change)
    frame = read_source(spec.source).rename(columns=spec.rename)
    if message is None:
        train, test = split(frame, spec, test_size=0.25, seed=1)
        assert len(train) + len(test) == len(frame)
        return
    with pytest.raises(ValueError, match=re.escape(message)):
        split(frame, spec, test_size=0.25, seed=1)


def test_the_split_names_a_target_that_holds_only_the_adverse_label() -> None:
    from governance.core.training import split

    spec = load_spec("hmda")
    frame = read_source(spec.source).rename(columns=spec.rename)
    frame[spec.target] = "yes"
    with pytest.raises(ValueError, match=r"the target 'deny' only holds the adverse_label 'yes'"):
        split(frame, spec, test_size=0.25, seed=1)
