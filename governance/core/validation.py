"""Validate a data frame against a Great Expectations suite stored as JSON.

A suite lives in ``expectations/<dataset>.json`` in the GX 1.x ``ExpectationSuite`` JSON shape
(``name``, ``expectations`` as a list of ``{"type": ..., "kwargs": ...}``, ``meta``).
:func:`validate` runs it on an in-memory :class:`pandas.DataFrame` and returns a
:class:`ValidationResult`: a compact summary (success, statistics, the failed expectations with a
short observation each, a one-line message) plus the full GX result as JSON.

Great Expectations is imported lazily (it takes seconds to import) and runs in an ephemeral,
in-memory data context that is built once per process and reused: nothing is written to disk,
analytics are off and progress bars are disabled, so validation never touches the network and
keeps stderr readable. A suite that fails, including one whose data lacks a column, yields a
failed result rather than an exception; only an unusable suite raises :class:`ValueError`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FailedExpectation", "ValidationResult", "load_suite", "validate"]

#: How many sample unexpected values a :class:`FailedExpectation` keeps.
PARTIAL_LIST_LIMIT = 5
#: How many failed expectations :meth:`ValidationResult.message` spells out.
MESSAGE_FAILURE_LIMIT = 10
#: Keys of a GX expectation result copied into :attr:`FailedExpectation.observed`.
_OBSERVED_KEYS = (
    "observed_value",
    "element_count",
    "missing_count",
    "unexpected_count",
    "unexpected_percent",
    "partial_unexpected_list",
    "details",
)
#: Kwargs GX adds to an expectation at run time; they are not part of the suite.
_RUNTIME_KWARGS = frozenset({"batch_id"})

_SOURCE_NAME = "governance"
_ASSET_NAME = "dataframe"
_BATCH_DEFINITION_NAME = "whole_dataframe"

_lock = threading.Lock()
_batch_definition: Any = None  # great_expectations BatchDefinition, built on first use


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold.

    Attributes
    ----------
    expectation : str
        The expectation type, e.g. ``"expect_column_values_to_be_between"``.
    column : str or None
        The column it checks, or None for table-level and multi-column expectations.
    kwargs : dict
        The expectation's arguments as written in the suite.
    observed : dict
        A short JSON-able summary of what GX saw: ``unexpected_count``,
        ``partial_unexpected_list`` (at most five values), ``observed_value``, ``details``, or
        ``exception`` when GX could not evaluate the expectation (e.g. the column is missing).
    """

    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    observed: Any

    def columns(self) -> list[str]:
        """Return every column the expectation names.

        Returns
        -------
        list of str
            ``[column]`` for single-column expectations, ``[column_A, column_B]`` for column
            pairs, the ``column_list`` for multi-column ones, and ``[]`` for table-level ones.
        """
        if self.column is not None:
            return [self.column]
        names = [self.kwargs[key] for key in ("column_A", "column_B") if key in self.kwargs]
        names.extend(self.kwargs.get("column_list") or [])
        return [str(name) for name in names]

    def summary(self) -> str:
        """Describe the failure in a few words, for one-line messages.

        Returns
        -------
        str
            For example ``"expect_column_values_to_not_be_null(deny): 3 unexpected"`` or
            ``"expect_table_columns_to_match_set: missing ['pirat']"``.
        """
        columns = self.columns()
        label = f"{self.expectation}({', '.join(columns)})" if columns else self.expectation
        return f"{label}: {_describe_observed(self.observed)}"

    def to_dict(self) -> dict[str, Any]:
        """Return the failure as a JSON-able dict.

        Returns
        -------
        dict
            Keys ``expectation``, ``column``, ``kwargs`` and ``observed``.
        """
        return {
            "expectation": self.expectation,
            "column": self.column,
            "kwargs": self.kwargs,
            "observed": self.observed,
        }


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one data frame against one suite.

    Attributes
    ----------
    suite : str
        The suite's name.
    success : bool
        True when every expectation held.
    statistics : dict
        ``evaluated_expectations``, ``successful_expectations``, ``unsuccessful_expectations``
        and ``success_percent``.
    failed : tuple of FailedExpectation
        The expectations that did not hold, in suite order.
    result : dict
        The full GX ``ExpectationSuiteValidationResult`` as JSON (``to_json_dict()``).
    """

    suite: str
    success: bool
    statistics: dict[str, Any]
    failed: tuple[FailedExpectation, ...]
    result: dict[str, Any]

    def message(self) -> str:
        """Summarise the result in one line.

        Returns
        -------
        str
            ``"validation passed: 40 of 40 expectations"``, or ``"validation failed: 2 of 40
            expectations — <failure>; <failure>"`` naming each failed expectation (the first
            ten, then how many more), its column(s) and what was observed.
        """
        evaluated = self.statistics.get("evaluated_expectations", 0)
        if self.success:
            return f"validation passed: {evaluated} of {evaluated} expectations ({self.suite})"
        shown = "; ".join(f.summary() for f in self.failed[:MESSAGE_FAILURE_LIMIT])
        hidden = len(self.failed) - MESSAGE_FAILURE_LIMIT
        if hidden > 0:
            shown += f"; and {hidden} more"
        return (
            f"validation failed: {len(self.failed)} of {evaluated} expectations "
            f"({self.suite}) — {shown}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-able dict, without the full GX result.

        Returns
        -------
        dict
            Keys ``suite``, ``success``, ``statistics``, ``message`` and ``failed`` (a list of
            :meth:`FailedExpectation.to_dict`).
        """
        return {
            "suite": self.suite,
            "success": self.success,
            "statistics": self.statistics,
            "message": self.message(),
            "failed": [f.to_dict() for f in self.failed],
        }


def load_suite(path: Path | str) -> dict[str, Any]:
    """Read a suite JSON file and check its shape.

    Parameters
    ----------
    path : Path or str
        A GX 1.x ``ExpectationSuite`` JSON file.

    Returns
    -------
    dict
        The parsed suite: ``name`` (str), ``expectations`` (non-empty list of dicts, each with a
        ``type`` str and a ``kwargs`` dict) and ``meta`` (dict, may be absent).

    Raises
    ------
    ValueError
        If the file cannot be read, is not valid JSON, or lacks a required key; the message
        names the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read expectation suite {path}: {exc.strerror or exc}") from exc
    try:
        suite = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"expectation suite {path} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(suite, dict):
        raise ValueError(f"expectation suite {path} must be a JSON object")
    name = suite.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"expectation suite {path} lacks a non-empty string 'name'")
    expectations = suite.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ValueError(f"expectation suite {path} lacks a non-empty 'expectations' list")
    for index, expectation in enumerate(expectations):
        if not isinstance(expectation, dict):
            raise ValueError(f"expectation suite {path}: expectations[{index}] is not an object")
        if not isinstance(expectation.get("type"), str) or not expectation["type"]:
            raise ValueError(f"expectation suite {path}: expectations[{index}] lacks a 'type'")
        if not isinstance(expectation.get("kwargs"), dict):
            raise ValueError(
                f"expectation suite {path}: expectations[{index}] "
                f"({expectation['type']}) lacks a 'kwargs' object"
            )
    if not isinstance(suite.get("meta", {}), dict):
        raise ValueError(f"expectation suite {path}: 'meta' must be an object")
    return suite


def validate(df: pd.DataFrame, suite_path: Path | str) -> ValidationResult:
    """Validate a data frame against the suite in ``suite_path``.

    Parameters
    ----------
    df : pandas.DataFrame
        The data, typically read back with ``pandas.read_csv``.
    suite_path : Path or str
        The suite JSON file (see :func:`load_suite`).

    Returns
    -------
    ValidationResult
        The outcome. Failing expectations, including those on a column the frame lacks, give
        ``success=False``; they do not raise.

    Raises
    ------
    TypeError
        If ``df`` is not a pandas DataFrame.
    ValueError
        If the suite file is unreadable or malformed, or names an unknown expectation type or
        invalid arguments.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate() needs a pandas DataFrame, got {type(df).__name__}")
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before GX is imported or a context is built
    spec = load_suite(Path(suite_path))
    with _lock:
        batch_definition = _get_batch_definition()
        suite, keys = _build_suite(spec, Path(suite_path))
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        gx_result = batch.validate(suite)
        result = _json_safe(gx_result.to_json_dict())
    return _summarise(spec, keys, result, set(map(str, df.columns)))


def _get_batch_definition() -> Any:
    """Return the process-wide whole-dataframe batch definition, building it on first use.

    The ephemeral context is configured so GX stays silent and local: analytics off (also via
    ``GX_ANALYTICS_ENABLED=false``), progress bars off, in-memory stores, no data docs site
    (the default ephemeral config would reserve a temporary directory for one).

    Returns
    -------
    great_expectations.core.batch_definition.BatchDefinition
        A batch definition on a pandas dataframe asset; pass the frame as a batch parameter.
    """
    global _batch_definition
    if _batch_definition is not None:
        return _batch_definition
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas(name=_SOURCE_NAME)
    asset = source.add_dataframe_asset(name=_ASSET_NAME)
    _batch_definition = asset.add_batch_definition_whole_dataframe(name=_BATCH_DEFINITION_NAME)
    return _batch_definition


def _build_suite(spec: dict[str, Any], path: Path) -> tuple[Any, list[str]]:
    """Build a GX ``ExpectationSuite`` from a checked suite dict.

    GX's own constructor logs and silently drops an invalid expectation; here each one is built
    first so that a typo in the suite is an error, not a weaker suite. GX reports results in its
    own order and with normalised kwargs, so each expectation also gets a key (see
    :func:`_expectation_key`) that maps a result back to its place in the suite file.

    Parameters
    ----------
    spec : dict
        The output of :func:`load_suite`; it is not modified.
    path : Path
        The suite file, for error messages.

    Returns
    -------
    suite : great_expectations.core.ExpectationSuite
        The suite, not attached to any data context.
    keys : list of str
        One key per expectation, in suite order.

    Raises
    ------
    ValueError
        If an expectation type is unknown or its kwargs are invalid.
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    keys: list[str] = []
    for index, item in enumerate(spec["expectations"]):
        try:
            configuration = ExpectationConfiguration(
                type=item["type"],
                kwargs=copy.deepcopy(item["kwargs"]),
                meta=copy.deepcopy(item.get("meta")),
            )
            expectation = configuration.to_domain_obj()
            keys.append(_expectation_key(item["type"], expectation.configuration.kwargs))
            expectations.append(expectation)
        except Exception as exc:
            detail = getattr(exc, "message", None) or str(exc)
            raise ValueError(
                f"expectation suite {path}: expectations[{index}] ({item['type']}) is invalid: "
                f"{_one_line(detail)}"
            ) from exc
    suite = gx.ExpectationSuite(
        name=spec["name"],
        expectations=expectations,
        meta=copy.deepcopy(spec.get("meta") or {}),
    )
    return suite, keys


def _expectation_key(expectation_type: str, kwargs: Any) -> str:
    """Identify an expectation by its type and (GX-normalised) kwargs.

    Parameters
    ----------
    expectation_type : str
        The expectation type.
    kwargs : Any
        Its kwargs as GX holds them; run-time additions such as ``batch_id`` are ignored.

    Returns
    -------
    str
        A canonical JSON string.
    """
    items = {str(k): v for k, v in dict(kwargs or {}).items() if k not in _RUNTIME_KWARGS}
    return json.dumps([expectation_type, _json_safe(items)], sort_keys=True)


def _summarise(
    spec: dict[str, Any], keys: list[str], result: dict[str, Any], frame_columns: set[str]
) -> ValidationResult:
    """Turn a GX suite result (as JSON) into a :class:`ValidationResult`.

    Parameters
    ----------
    spec : dict
        The suite as loaded by :func:`load_suite`.
    keys : list of str
        The key of each expectation in ``spec``, in order (from :func:`_build_suite`).
    result : dict
        ``ExpectationSuiteValidationResult.to_json_dict()``, made JSON-safe.
    frame_columns : set of str
        The validated frame's columns, to say "column missing" instead of GX's exception text.

    Returns
    -------
    ValidationResult
        The summary, with failures in suite order and kwargs as written in the suite, and the
        full result.
    """
    unused: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        unused.setdefault(key, []).append(index)
    ranked: list[tuple[int, FailedExpectation]] = []
    for item in result.get("results", []):
        config = item.get("expectation_config") or {}
        expectation_type = str(config.get("type", "unknown"))
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k not in _RUNTIME_KWARGS}
        slots = unused.get(_expectation_key(expectation_type, kwargs))
        position = slots.pop(0) if slots else len(keys)
        if item.get("success"):
            continue
        if position < len(keys):
            kwargs = copy.deepcopy(spec["expectations"][position]["kwargs"])
        column = kwargs.get("column")
        failure = FailedExpectation(
            expectation=expectation_type,
            column=str(column) if column is not None else None,
            kwargs=kwargs,
            observed=_observed(item, kwargs, frame_columns),
        )
        ranked.append((position, failure))
    ranked.sort(key=lambda pair: pair[0])
    failed = tuple(failure for _, failure in ranked)
    raw = result.get("statistics") or {}
    statistics = {
        "evaluated_expectations": int(raw.get("evaluated_expectations") or 0),
        "successful_expectations": int(raw.get("successful_expectations") or 0),
        "unsuccessful_expectations": int(raw.get("unsuccessful_expectations") or 0),
        "success_percent": raw.get("success_percent"),
    }
    return ValidationResult(
        suite=str(spec["name"]),
        success=bool(result.get("success")) and not failed,
        statistics=statistics,
        failed=failed,
        result=result,
    )


def _observed(item: dict[str, Any], kwargs: dict[str, Any], frame_columns: set[str]) -> Any:
    """Extract a short summary of one failed expectation result.

    Parameters
    ----------
    item : dict
        One entry of the GX result's ``results`` list, as JSON.
    kwargs : dict
        The expectation's kwargs.
    frame_columns : set of str
        The validated frame's columns.

    Returns
    -------
    dict
        Selected result keys (``partial_unexpected_list`` cut to five values); when GX raised
        instead, ``exception`` with its message and ``missing_columns`` if the expectation names
        columns the frame lacks.
    """
    observed: dict[str, Any] = {}
    details = item.get("result") or {}
    for key in _OBSERVED_KEYS:
        if key in details and details[key] is not None:
            value = details[key]
            if key == "partial_unexpected_list":
                value = value[:PARTIAL_LIST_LIMIT]
            observed[key] = value
    message = _exception_message(item.get("exception_info"))
    if message is not None:
        observed["exception"] = message
        named = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
        named.extend(kwargs.get("column_list") or [])
        missing = [str(c) for c in named if c is not None and str(c) not in frame_columns]
        if missing:
            observed["missing_columns"] = missing
    return observed


def _exception_message(info: Any) -> str | None:
    """Return the first exception message in a GX ``exception_info``, if one was raised.

    GX reports either one ``{"raised_exception": ..., "exception_message": ...}`` dict or a dict
    of them keyed by metric.

    Parameters
    ----------
    info : Any
        The ``exception_info`` of one expectation result.

    Returns
    -------
    str or None
        The message on one line, or None if nothing was raised.
    """
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return _one_line(str(info.get("exception_message") or "unknown error"))
        return None
    for value in info.values():
        message = _exception_message(value)
        if message is not None:
            return message
    return None


def _describe_observed(observed: Any) -> str:
    """Render :attr:`FailedExpectation.observed` as a short phrase.

    Parameters
    ----------
    observed : Any
        The observation dict.

    Returns
    -------
    str
        E.g. ``"3 unexpected, e.g. [7.5]"``, ``"missing ['pirat']"``, ``"observed 'str'"``,
        ``"column missing"`` or ``"error: <message>"``.
    """
    if not isinstance(observed, dict):
        return _one_line(repr(observed))
    if "missing_columns" in observed:
        missing = observed["missing_columns"]
        return (
            f"column {missing[0]!r} missing" if len(missing) == 1 else f"columns {missing} missing"
        )
    if "exception" in observed:
        return f"error: {_shorten(observed['exception'])}"
    mismatched = (observed.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict) and mismatched:
        parts = [f"{kind} {sorted(map(str, cols))}" for kind, cols in mismatched.items() if cols]
        if parts:
            return ", ".join(parts)
    if "unexpected_count" in observed:
        text = f"{observed['unexpected_count']} unexpected"
        sample = observed.get("partial_unexpected_list") or []
        if any(value is not None for value in sample):  # a null check's samples are all None
            text += f", e.g. {_shorten(repr(sample[:3]))}"
        return text
    if "observed_value" in observed:
        return f"observed {_shorten(repr(observed['observed_value']))}"
    return "failed"


def _json_safe(value: Any) -> Any:
    """Return ``value`` with every leaf JSON-serialisable (NaN and infinities become None).

    Parameters
    ----------
    value : Any
        Nested dicts, lists and scalars, possibly holding numpy or other non-JSON values.

    Returns
    -------
    Any
        A structure :func:`json.dumps` accepts with ``allow_nan=False``.
    """
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _one_line(text: str) -> str:
    """Collapse whitespace, including newlines, to single spaces."""
    return " ".join(text.split())


def _shorten(text: str, limit: int = 120) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking a cut with an ellipsis."""
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
