"""Model inputs: categorical values become exactly the text ``str()`` gives, whatever the dtype."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.core.dataset import as_text, load_spec, read_source
from governance.core.training import model_inputs


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
