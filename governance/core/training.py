"""Seeded split and training of the scikit-learn pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from governance.core.dataset import DatasetSpec, as_text

MISSING = "missing"  # the category a missing categorical value is imputed to
ERR_UNKNOWN_MODEL = "unknown model {model!r}: only 'logistic' (an exactly explainable scorecard)"
ERR_PARAM = "params.yaml train.{key} must be {want}, got {got!r}"
ERR_WHOLE = "params.yaml {key} must be a whole number, got {got!r}"
ERR_NUMBER = "params.yaml {key} must be a finite number, got {got!r}"
ERR_NO_TARGET = "the data has no target column {target!r} (dataset spec {path})"
ERR_ONE_LABEL = (
    "the target {target!r} {which} holds the adverse_label {label!r} (values seen: {seen}); "
    "dataset spec {path}"
)


def whole(value: object, key: str) -> int:
    """``value`` as an ``int`` if it is one (``1.0`` too), else :data:`ERR_WHOLE`: ``int(1.7)``
    would quietly train with seed 1 while the lineage records 1.7."""
    if isinstance(value, bool):
        raise ValueError(ERR_WHOLE.format(key=key, got=value))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(ERR_WHOLE.format(key=key, got=value))


def number(value: object, key: str) -> float:
    """``value`` as a finite ``float`` if it is a number (or text of one), else
    :data:`ERR_NUMBER` naming ``key``: ``float('high')`` names nothing."""
    if not isinstance(value, bool) and isinstance(value, int | float | str):
        try:
            out = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(out):
                return out
    raise ValueError(ERR_NUMBER.format(key=key, got=value))


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` section of ``params.yaml``."""

    model: str = "logistic"
    C: float = 1.0
    max_iter: int = 1000
    seed: int = 0
    threshold: float = 0.5
    reason_count: int = 4

    def __post_init__(self) -> None:
        """Refuse what would train a model whose gates mean nothing (one message per key)."""
        for key, low in (("max_iter", 1), ("seed", 0), ("reason_count", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    ERR_PARAM.format(key=key, want=f"a whole number >= {low}", got=value)
                )
        if not (isinstance(self.C, int | float) and math.isfinite(self.C) and self.C > 0):
            raise ValueError(ERR_PARAM.format(key="C", want="a finite number > 0", got=self.C))
        t = self.threshold
        if not (isinstance(t, int | float) and math.isfinite(t) and 0 < t < 1):
            raise ValueError(ERR_PARAM.format(key="threshold", want="between 0 and 1", got=t))


def split(
    frame: pd.DataFrame, spec: DatasetSpec, *, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/test split; rows keep their original order within each part.

    Refused, naming the spec's keys, when the data has no target column or its labels never
    (or only) hold the spec's ``adverse_label``: nothing could be learnt or judged.
    """
    if spec.target not in frame.columns:
        raise ValueError(ERR_NO_TARGET.format(target=spec.target, path=spec.spec_path))
    adverse = int(spec.labels(frame).sum())
    if adverse in (0, len(frame)):
        seen = sorted(map(str, frame[spec.target].dropna().unique()))[:10]
        raise ValueError(
            ERR_ONE_LABEL.format(
                target=spec.target,
                which="never" if adverse == 0 else "only",
                label=spec.adverse_label,
                seen=seen,
                path=spec.spec_path,
            )
        )
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=spec.labels(frame)
    )
    return train.sort_index(), test.sort_index()


def build_pipeline(spec: DatasetSpec, params: TrainParams) -> Pipeline:
    """The model: impute, scale / one-hot, regularised logistic regression.

    Categories are fixed by the spec (plus ``missing``), so the encoding never depends on which
    rows happened to land in the training split.
    """
    if params.model != "logistic":
        raise ValueError(ERR_UNKNOWN_MODEL.format(model=params.model))
    categories = [[*spec.feature(c).categories, MISSING] for c in spec.categorical]
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
            ("onehot", OneHotEncoder(categories=categories, handle_unknown="error")),
        ]
    )
    pre = ColumnTransformer(
        [("num", numeric, spec.numeric), ("cat", categorical, spec.categorical)],
        remainder="drop",
        sparse_threshold=0.0,
    )
    clf = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed)
    return Pipeline([("pre", pre), ("clf", clf)])


def model_inputs(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Only the model's input columns, categoricals as strings (missing stays missing)."""
    x = pd.DataFrame(index=frame.index)
    for f in spec.features:
        column = frame[f.name]
        if f.kind == "numeric":
            x[f.name] = column.astype("float64")
        else:
            x[f.name] = pd.Series(as_text(column), index=frame.index, dtype=object)
    return x


def train(train_frame: pd.DataFrame, spec: DatasetSpec, params: TrainParams) -> Pipeline:
    """Fit the pipeline on the training split. Sensitive attributes are never inputs."""
    pipeline = build_pipeline(spec, params)
    pipeline.fit(model_inputs(train_frame, spec), spec.labels(train_frame))
    return pipeline
