"""The register stage's dataset schema: inferred from representative rows, equal to MLflow's."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.data.pandas_dataset import PandasDataset

from governance.registry.mlflow import representative_rows

_MISSING = st.sampled_from([None, math.nan])
_OBJECTS = st.one_of(
    st.text(max_size=3), st.integers(-3, 3), st.floats(-2, 2), st.booleans(), _MISSING
)


def _schema(frame: pd.DataFrame) -> Any:
    # What the register stage logged before: MLflow's inference over every row.
    return PandasDataset(frame, source="file:///data.csv", digest="0").schema


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 12))
    columns: dict[str, Any] = {}
    for i, kind in enumerate(draw(st.lists(st.sampled_from(range(6)), min_size=1, max_size=5))):
        name = f"c{i}"
        if kind == 0:  # floats, maybe missing
            values = draw(st.lists(st.one_of(st.floats(-5, 5), st.just(math.nan)), min_size=n))
            columns[name] = np.asarray(values[:n], dtype="float64")
        elif kind == 1:
            columns[name] = np.asarray(draw(st.lists(st.integers(-9, 9), min_size=n))[:n])
        elif kind == 2:
            columns[name] = np.asarray(draw(st.lists(st.booleans(), min_size=n))[:n], dtype=bool)
        elif kind == 3:  # pandas strings, maybe missing
            values = draw(st.lists(st.one_of(st.sampled_from("abc"), _MISSING), min_size=n))
            columns[name] = pd.array(values[:n], dtype="str")
        elif kind == 4:  # Python objects of mixed types
            columns[name] = pd.array(draw(st.lists(_OBJECTS, min_size=n))[:n], dtype=object)
        else:  # nullable integers
            values = draw(st.lists(st.one_of(st.integers(-9, 9), st.none()), min_size=n))
            columns[name] = pd.array(values[:n], dtype="Int64")
    return pd.DataFrame(columns)


@settings(max_examples=150, deadline=None)
@given(frames())
def test_representative_rows_give_the_schema_of_the_whole_frame(frame: pd.DataFrame) -> None:
    sample = representative_rows(frame)
    assert sample.index.isin(frame.index).all()
    assert _schema(sample) == _schema(frame)


def test_representative_rows_are_few_for_a_large_frame() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "s": pd.array(rng.choice(["a", "b", "c"], n), dtype="str"),
            "k": rng.integers(0, 4, n),
        }
    )
    frame.loc[n - 1, "x"] = math.nan
    frame.loc[n - 2, "s"] = None
    sample = representative_rows(frame)
    assert len(sample) <= 6
    assert _schema(sample) == _schema(frame)
    assert [c.required for c in _schema(sample).inputs] == [False, False, True]
