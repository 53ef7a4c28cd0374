"""Canonical JSON: one byte string per value, refusing what JSON cannot represent."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.ledger.canonical import (
    CanonicalJSONError,
    canonical_json,
    check_json,
    is_canonical,
    parse_json,
    utc_now,
)
from governance.ledger.records import GENESIS_HEX, encode_record, new_record_ids

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)


def _same(a: Any, b: Any) -> bool:
    """Equality that also tells -0.0 from 0.0 and int from float."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def test_sorted_keys_no_whitespace_utf8() -> None:
    value = {"b": [1, 2.5, None, True, False], "a": {"z": 'é\n"\\', "y": "日本"}, "A": 0}
    data = canonical_json(value)
    assert data == '{"A":0,"a":{"y":"日本","z":"é\\n\\"\\\\"},"b":[1,2.5,null,true,false]}'.encode()
    assert data.decode("utf-8")  # valid UTF-8, non-ASCII not escaped
    assert b"\\u00e9" not in data


def test_keys_sort_by_code_point() -> None:
    assert canonical_json({"é": 1, "z": 2, "Z": 3, "aa": 4, "a": 5}) == (
        '{"Z":3,"a":5,"aa":4,"z":2,"é":1}'.encode()
    )


def test_numbers() -> None:
    assert canonical_json([1, -0, 1.0, -0.0, 0.1, 1e16, 1e-7, 2**64]) == (
        b"[1,0,1.0,-0.0,0.1,1e+16,1e-07,18446744073709551616]"
    )


@pytest.mark.parametrize(
    ("value", "where", "what"),
    [
        (math.nan, "$", "NaN"),
        ({"a": [1, {"b": math.inf}]}, "$.a[1].b", "Infinity"),
        ({"a": -math.inf}, "$.a", "-Infinity"),
        ({"x": (1, 2)}, "$.x", "tuple"),
        ({1: "a"}, "$", "keys must be str"),
        ({"k": b"raw"}, "$.k", "bytes"),
        ({"k": {1, 2}}, "$.k", "set"),
        ({"k": Decimal("1.5")}, "$.k", "Decimal"),
        ({"k": "\ud800"}, "$.k", "surrogate"),
        ({"with space": [object()]}, '$["with space"][0]', "object"),
    ],
)
def test_rejects_non_json(value: Any, where: str, what: str) -> None:
    with pytest.raises(CanonicalJSONError) as info:
        canonical_json(value)
    message = str(info.value)
    assert where in message and what in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_nan_is_a_value_error_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"NaN is not a JSON number"):
        canonical_json({"score": float("nan")})


def test_subclasses_of_json_types_are_written_as_plain_values() -> None:
    import enum

    class Colour(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    assert canonical_json({"c": Colour.RED, "l": Level.HIGH}) == b'{"c":"red","l":3}'


def test_parse_json_refuses_nan_literals() -> None:
    with pytest.raises(ValueError):
        parse_json(b'{"a":NaN}')
    with pytest.raises(ValueError):
        parse_json(b"[Infinity]")


@pytest.mark.parametrize(
    "text",
    [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1,"a":1}', b'"\\u00e9"', b"1.50", b"1E5", b"[1 ]"],
)
def test_is_canonical_rejects_other_spellings(text: bytes) -> None:
    assert not is_canonical(text)


def test_utc_now_format() -> None:
    stamp = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_round_trip_is_stable(value: Any) -> None:
    data = canonical_json(value)
    back = parse_json(data)
    assert _same(back, value)
    assert canonical_json(back) == data
    assert is_canonical(data)
    # The stdlib reading of the bytes agrees.
    assert canonical_json(json.loads(data.decode("utf-8"))) == data


@settings(max_examples=100, deadline=None)
@given(json_objects, st.randoms(use_true_random=False))
def test_key_order_does_not_matter(value: dict[str, Any], rnd: Any) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(value)


@settings(max_examples=100, deadline=None)
@given(
    json_objects,
    st.integers(min_value=0, max_value=2**62),
    st.sampled_from(["decision", "outcome", "x.y-z_1"]),
)
def test_record_encoding_equals_canonical_json(body: dict[str, Any], seq: int, type_: str) -> None:
    record_id = new_record_ids(1)[0]
    ts = utc_now()
    data = encode_record(seq, record_id, type_, ts, GENESIS_HEX, canonical_json(body))
    expected = {"body": body, "id": record_id, "prev": GENESIS_HEX, "seq": seq, "ts": ts}
    assert data == canonical_json(expected | {"type": type_})
    assert is_canonical(data)


def test_check_json_accepts_plain_values() -> None:
    check_json({"a": [1, 2.0, "x", None, True, {"b": []}]})
    check_json("text")
    check_json(None)
