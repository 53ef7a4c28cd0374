"""Canonical JSON: one byte string per value, refusing what JSON cannot represent.

Known-answer vectors pin both formats byte for byte (floats at every exponent boundary, escapes,
non-ASCII, key order, big integers, nesting); property tests compare format 2's orjson encoder
with its pure-Python reference and check that format 1 and 2 differ only where documented.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.ledger.canonical import (
    CANONICAL_FORMAT,
    CANONICAL_FORMAT_V1,
    CANONICAL_FORMATS,
    CanonicalJSONError,
    canonical_json,
    canonical_json_v1,
    check_json,
    encoder_for,
    float_text,
    is_canonical,
    parse_json,
    reference_json,
    utc_now,
)
from governance.ledger.records import GENESIS_HEX, encode_record, new_record_ids

ENCODERS: dict[str, Callable[[object], bytes]] = {
    "v1": canonical_json_v1,
    "v2": canonical_json,
    "v2-reference": reference_json,
}
all_encoders = pytest.mark.parametrize("encode", list(ENCODERS.values()), ids=list(ENCODERS))

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


@all_encoders
def test_sorted_keys_no_whitespace_utf8(encode: Callable[[object], bytes]) -> None:
    value = {"b": [1, 2.5, None, True, False], "a": {"z": 'é\n"\\', "y": "日本"}, "A": 0}
    data = encode(value)
    assert data == '{"A":0,"a":{"y":"日本","z":"é\\n\\"\\\\"},"b":[1,2.5,null,true,false]}'.encode()
    assert data.decode("utf-8")  # valid UTF-8, non-ASCII not escaped
    assert b"\\u00e9" not in data


@all_encoders
def test_keys_sort_by_code_point(encode: Callable[[object], bytes]) -> None:
    assert encode({"é": 1, "z": 2, "Z": 3, "aa": 4, "a": 5}) == (
        '{"Z":3,"a":5,"aa":4,"z":2,"é":1}'.encode()
    )
    # Code point order, not UTF-16 order (RFC 8785 would put U+1F600, whose UTF-16 form starts
    # with the surrogate D83D, before U+E000 and U+FFFF).
    assert encode({"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "": 4, "~": 5}) == (
        b'{"":4,"~":5,"\xee\x80\x80":3,"\xef\xbf\xbf":2,"\xf0\x9f\x98\x80":1}'
    )


def test_numbers() -> None:
    value = [1, -0, 1.0, -0.0, 0.1, 1e16, 1e-7, 2**64]
    assert canonical_json(value) == b"[1,0,1.0,-0.0,0.1,1e+16,1e-7,18446744073709551616]"
    assert canonical_json_v1(value) == b"[1,0,1.0,-0.0,0.1,1e+16,1e-07,18446744073709551616]"


# (value, format 2, format 1): every exponent boundary, subnormals, the extremes, signed zero.
FLOAT_VECTORS = [
    (1e-10, "1e-10", "1e-10"),
    (9.999999999999999e-10, "9.999999999999999e-10", "9.999999999999999e-10"),
    (1e-9, "1e-9", "1e-09"),
    (1e-7, "1e-7", "1e-07"),
    (-1e-7, "-1e-7", "-1e-07"),
    (1.5e-7, "1.5e-7", "1.5e-07"),
    (1e-6, "1e-6", "1e-06"),
    (9.999999999999999e-06, "9.999999999999999e-6", "9.999999999999999e-06"),
    (1e-5, "0.00001", "1e-05"),
    (1.5e-5, "0.000015", "1.5e-05"),
    (1.234e-5, "0.00001234", "1.234e-05"),
    (9.999999999999999e-05, "0.00009999999999999999", "9.999999999999999e-05"),
    (1e-4, "0.0001", "0.0001"),
    (0.001, "0.001", "0.001"),
    (0.1, "0.1", "0.1"),
    (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
    (2 / 3, "0.6666666666666666", "0.6666666666666666"),
    (1.0, "1.0", "1.0"),
    (100.0, "100.0", "100.0"),
    (123.456, "123.456", "123.456"),
    (1e15, "1000000000000000.0", "1000000000000000.0"),
    (1234567890123456.8, "1234567890123456.8", "1234567890123456.8"),
    (9999999999999998.0, "9999999999999998.0", "9999999999999998.0"),
    (1e16, "1e+16", "1e+16"),
    (-1e16, "-1e+16", "-1e+16"),
    (1.5e16, "1.5e+16", "1.5e+16"),
    (1e17, "1e+17", "1e+17"),
    (123456789012345680.0, "1.2345678901234568e+17", "1.2345678901234568e+17"),
    (1e21, "1e+21", "1e+21"),
    (1e22, "1e+22", "1e+22"),
    (1e23, "1e+23", "1e+23"),
    (1e100, "1e+100", "1e+100"),
    (1.2345678901234567e-300, "1.2345678901234568e-300", "1.2345678901234568e-300"),
    (2.2250738585072014e-308, "2.2250738585072014e-308", "2.2250738585072014e-308"),  # min normal
    (2.225073858507201e-308, "2.225073858507201e-308", "2.225073858507201e-308"),  # max subnormal
    (1e-323, "1e-323", "1e-323"),
    (5e-324, "5e-324", "5e-324"),  # min subnormal
    (-5e-324, "-5e-324", "-5e-324"),
    (sys.float_info.max, "1.7976931348623157e+308", "1.7976931348623157e+308"),
    (-sys.float_info.max, "-1.7976931348623157e+308", "-1.7976931348623157e+308"),
    (0.0, "0.0", "0.0"),
    (-0.0, "-0.0", "-0.0"),
    (9007199254740993.0, "9007199254740992.0", "9007199254740992.0"),  # 2**53 + 1 rounds
]


@pytest.mark.parametrize(("value", "v2", "v1"), FLOAT_VECTORS, ids=[v[1] for v in FLOAT_VECTORS])
def test_float_known_answers(value: float, v2: str, v1: str) -> None:
    assert canonical_json([value]) == f"[{v2}]".encode()
    assert reference_json([value]) == f"[{v2}]".encode()
    assert canonical_json_v1([value]) == f"[{v1}]".encode()
    assert float_text(value) == v2 and float_text(value, CANONICAL_FORMAT_V1) == v1
    for text in (v1, v2):
        back = float(text)
        assert back == value and math.copysign(1, back) == math.copysign(1, value)


def test_escapes_known_answers() -> None:
    controls = "".join(chr(c) for c in range(0x20))
    expected_controls = "".join(
        {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(c, f"\\u{c:04x}")
        for c in range(0x20)
    )
    value = {"c": controls, "q": '"\\/', "d": "\x7f", "s": "\u2028\u2029", "u": "é日😀\ue000"}
    expected = (
        '{"c":"' + expected_controls + '","d":"\x7f","q":"\\"\\\\/","s":"\u2028\u2029",'
        '"u":"é日😀\ue000"}'
    ).encode()
    assert b"\\u001f" in expected and b"\\u000b" in expected  # lowercase hex, long form
    for encode in ENCODERS.values():
        assert encode(value) == expected


@all_encoders
@pytest.mark.parametrize(
    "value", ["\ud800", "\udfff", "a\ud83d\ude00", {"k\udc00": 1}, [["\ud800"]]]
)
def test_lone_surrogates_refused(encode: Callable[[object], bytes], value: Any) -> None:
    with pytest.raises(CanonicalJSONError, match="surrogate"):
        encode(value)


BIG_INTS = [2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(2**70)]


@all_encoders
def test_integers_of_any_size_in_decimal(encode: Callable[[object], bytes]) -> None:
    assert encode(BIG_INTS) == ("[" + ",".join(str(i) for i in BIG_INTS) + "]").encode()
    assert encode({"n": [True, False, 0, -1]}) == b'{"n":[true,false,0,-1]}'


@all_encoders
def test_nesting(encode: Callable[[object], bytes]) -> None:
    deep: Any = "x"
    for i in range(300):  # deeper than orjson's limit of 255: format 2 takes the Python path
        deep = [deep] if i % 2 else {"k": deep}
    data = encode(deep)
    assert data == (canonical_json_v1 if encode is canonical_json_v1 else reference_json)(deep)
    assert data.count(b"[") == 150 and data.count(b"{") == 150 and parse_json(data) == deep
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CanonicalJSONError, match="nested too deeply"):
        encode(deep)


class _Plain(enum.Enum):
    A = 1


@dataclasses.dataclass
class _Point:
    x: int
    y: int


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
        ({"a": [1.0, -math.inf]}, "$.a[1]", "-Infinity"),
        ({"u": uuid.UUID(int=1)}, "$.u", "UUID"),
        ({"e": _Plain.A}, "$.e", "_Plain"),
        ({"f": orjson.Fragment(b"1")}, "$.f", "Fragment"),
        ({"d": _Point(1, 2)}, "$.d", "_Point"),
        ({"t": datetime(2026, 1, 1, tzinfo=UTC)}, "$.t", "datetime"),
        ({"a": np.array([1.0])}, "$.a", "ndarray"),
        ({"b": np.bool_(True)}, "$.b", "bool"),
    ],
)
@all_encoders
def test_rejects_non_json(
    encode: Callable[[object], bytes], value: Any, where: str, what: str
) -> None:
    with pytest.raises(CanonicalJSONError) as info:
        encode(value)
    message = str(info.value)
    assert where in message and what in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


@all_encoders
def test_nan_is_a_value_error_with_a_clear_message(encode: Callable[[object], bytes]) -> None:
    with pytest.raises(ValueError, match=r"NaN is not a JSON number"):
        encode({"score": float("nan")})
    with pytest.raises(ValueError, match=r"NaN is not a JSON number"):
        encode(float("nan"))


@all_encoders
def test_subclasses_of_json_types_are_written_as_plain_values(
    encode: Callable[[object], bytes],
) -> None:
    class Colour(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    class Tag(str):
        def __str__(self) -> str:
            return "not this"

    value = {"c": Colour.RED, "l": Level.HIGH, "f": np.float64(1e-7), Tag("k"): Tag("v")}
    plain = {"c": "red", "l": 3, "f": 1e-7, "k": "v"}
    assert encode(value) == encode(plain)
    assert canonical_json(value) == b'{"c":"red","f":1e-7,"k":"v","l":3}'


def test_formats_and_encoders() -> None:
    assert CANONICAL_FORMATS == (CANONICAL_FORMAT_V1, CANONICAL_FORMAT)
    assert CANONICAL_FORMAT == "governance.canonical-json/2"
    assert encoder_for(CANONICAL_FORMAT) is canonical_json
    assert encoder_for(CANONICAL_FORMAT_V1) is canonical_json_v1
    with pytest.raises(ValueError, match="unknown canonical JSON format"):
        encoder_for("governance.canonical-json/3")
    with pytest.raises(ValueError, match="unknown canonical JSON format"):
        float_text(1.0, "json")
    with pytest.raises(CanonicalJSONError, match="inf"):
        float_text(math.inf)


def test_parse_json_refuses_nan_literals() -> None:
    with pytest.raises(ValueError):
        parse_json(b'{"a":NaN}')
    with pytest.raises(ValueError):
        parse_json(b"[Infinity]")


@pytest.mark.parametrize("fmt", CANONICAL_FORMATS)
@pytest.mark.parametrize(
    "text",
    [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1,"a":1}', b'"\\u00e9"', b"1.50", b"1E5", b"[1 ]"],
)
def test_is_canonical_rejects_other_spellings(text: bytes, fmt: str) -> None:
    assert not is_canonical(text, fmt)


def test_is_canonical_knows_each_format() -> None:
    assert is_canonical(b"[1e-7]") and not is_canonical(b"[1e-7]", CANONICAL_FORMAT_V1)
    assert is_canonical(b"[1e-07]", CANONICAL_FORMAT_V1) and not is_canonical(b"[1e-07]")
    assert is_canonical(b"[0.00001]") and is_canonical(b"[1e-05]", CANONICAL_FORMAT_V1)


def test_utc_now_format() -> None:
    stamp = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_round_trip_is_stable(value: Any) -> None:
    for fmt in CANONICAL_FORMATS:
        encode = encoder_for(fmt)
        data = encode(value)
        back = parse_json(data)
        assert _same(back, value)
        assert encode(back) == data
        assert is_canonical(data, fmt)
        # The stdlib reading of the bytes agrees.
        assert encode(json.loads(data.decode("utf-8"))) == data


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_orjson_and_the_reference_agree(value: Any) -> None:
    assert canonical_json(value) == reference_json(value)


def test_orjson_and_the_reference_agree_on_random_doubles() -> None:
    rng = np.random.default_rng(20261201)
    bits = rng.integers(0, 2**64, size=200_000, dtype=np.uint64, endpoint=False)
    doubles = bits.view(np.float64)
    scaled = rng.random(50_000) * 10.0 ** rng.integers(-12, 20, size=50_000)
    values = [x for x in np.concatenate([doubles, scaled]).tolist() if math.isfinite(x)]
    assert len(values) > 240_000
    assert canonical_json(values) == reference_json(values)


@settings(max_examples=500, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False)
    | st.builds(lambda m, e: m * 10.0**e, st.floats(1, 10), st.integers(-11, -3))
)
def test_formats_differ_only_for_exponents_minus_9_to_minus_5(value: float) -> None:
    v1, v2 = canonical_json_v1([value]), canonical_json([value])
    exponent = Decimal(repr(value)).adjusted() if value else 0  # E in d1.d2...dn * 10**E
    if exponent < -9 or exponent > -5:
        assert v1 == v2
    else:
        assert v1 != v2 and float(v1[1:-1]) == float(v2[1:-1]) == value


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
