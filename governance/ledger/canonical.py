"""Canonical JSON: the one byte encoding of a JSON value that the ledger hashes.

Two versions exist. Every ledger records the one it writes in its metadata (``canonical``) and
keeps writing it for its whole life; verification hashes the stored bytes, so it never needs to
re-encode, and the deep check (bytes are canonical) uses the ledger's own version.

``governance.canonical-json/2`` (:data:`CANONICAL_FORMAT`, what new ledgers write)
    Produced by orjson (Rust; ``orjson.dumps(value, option=OPT_SORT_KEYS)``), about 20 times
    faster than Python's encoder on a decision record. The bytes are defined here exactly, so
    that any implementation can reproduce them; :func:`reference_json` is a second, pure-Python
    implementation of the same definition, and the tests compare the two.

    * UTF-8 JSON text without any whitespace.
    * Objects: members sorted by key, comparing keys as sequences of Unicode code points (the
      same as comparing their UTF-8 bytes; *not* UTF-16 code units as RFC 8785 does, so
      ``"\\uffff"`` sorts before ``"\\U0001f600"``). Keys are ``str`` and unique.
    * Strings: every character is written as itself in UTF-8, except ``"`` → ``\\"``,
      ``\\`` → ``\\\\``, U+0008 → ``\\b``, U+0009 → ``\\t``, U+000A → ``\\n``, U+000C → ``\\f``,
      U+000D → ``\\r`` and the other C0 controls U+0000..U+001F → ``\\u00xx`` (lowercase hex).
      Nothing else is escaped: not ``/``, not U+007F, not U+2028/U+2029, not non-ASCII. Lone
      surrogates are refused (they are not Unicode scalar values).
    * ``true``, ``false``, ``null``.
    * Integers (``int``, not ``bool``): decimal, ``-`` for negatives, no leading zeros, any size.
    * Floats (finite IEEE 754 binary64): take the shortest decimal digit string
      ``d1 d2 … dn`` (``d1`` ≠ 0, ``dn`` ≠ 0) that reads back as the same double, the one
      nearest the exact value when several are that short (as Python's ``repr``, Ryu and
      Schubfach choose it), and the exponent ``E`` with ``|x| = d1.d2…dn * 10**E``. Write
      ``-`` if the sign bit is set (so ``-0.0``), then

      - zero: ``0.0``;
      - ``-5 ≤ E ≤ 15``, positional: ``n - 1 ≤ E``: the digits, ``E - n + 1`` zeros, ``.0``
        (``100.0``, ``1000000000000000.0``); ``0 ≤ E < n - 1``: ``d1…d(E+1)`` ``.`` the rest
        (``123.456``); ``E < 0``: ``0.``, ``-E - 1`` zeros, the digits (``0.00001``);
      - otherwise: ``d1``, then ``.d2…dn`` if ``n > 1``, then ``e``, ``+`` or ``-``, and
        ``|E|`` in decimal without leading zeros (``1e-7``, ``1.5e+16``, ``5e-324``,
        ``1.7976931348623157e+308``).

      NaN and the infinities are refused (JSON has no such numbers).

``governance.canonical-json/1`` (:data:`CANONICAL_FORMAT_V1`, ledgers created before format 2)
    The output of Python's C JSON encoder, encoded as UTF-8::

        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                   allow_nan=False)

    Identical to format 2 except for floats with ``-9 ≤ E ≤ -5``: format 1 writes them as
    Python's ``repr`` does, in exponent form with at least two exponent digits (``1e-05``,
    ``1.5e-07``), where format 2 writes ``0.00001`` and ``1.5e-7``. Lineage ids and evidence
    digests are defined over format 1 and stay so: they are content addresses already written
    into records and registry tags (:func:`canonical_json_v1`).

Both versions accept only plain JSON values, so that what is read back equals what was written
(``parse_json(canonical_json(v)) == v``): ``dict`` with ``str`` keys, ``list``, ``str``,
``int``, ``float``, ``bool`` and ``None`` (subclasses such as ``enum.StrEnum`` members are
accepted and written as their plain value). Tuples, sets, bytes, non-``str`` keys, ``Decimal``,
datetimes, UUIDs, plain enums, numpy arrays and anything else are refused with a
:class:`CanonicalJSONError` that names the offending location (``$.explanation.reasons[2]``).

Neither is RFC 8785 (JCS): JCS formats numbers the ECMAScript way and sorts keys by UTF-16 code
units. Integers beyond 2**53 are exact here but lose precision in JavaScript consumers; store
such identifiers as strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "CANONICAL_FORMAT",
    "CANONICAL_FORMATS",
    "CANONICAL_FORMAT_V1",
    "CanonicalJSONError",
    "canonical_json",
    "canonical_json_v1",
    "check_json",
    "encoder_for",
    "float_text",
    "is_canonical",
    "parse_json",
    "reference_json",
    "utc_now",
    "utc_text",
]

CANONICAL_FORMAT_V1 = "governance.canonical-json/1"
"""Python's encoder with sorted keys: ledgers created before format 2 keep writing it."""
CANONICAL_FORMAT = "governance.canonical-json/2"
"""The encoding new ledgers write (orjson), recorded in each ledger's metadata."""
CANONICAL_FORMATS = (CANONICAL_FORMAT_V1, CANONICAL_FORMAT)
"""Every format this code reads and writes, oldest first."""
ERR_UNKNOWN_FORMAT = "unknown canonical JSON format {name!r}; this code knows {known}"

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_encode = _ENCODER.encode
_encode_str: Callable[[str], str] = json.encoder.encode_basestring
_dumps = orjson.dumps
_loads = orjson.loads
# Subclasses, dataclasses and datetimes make orjson raise instead of converting them, so they
# reach the slow path (which accepts subclasses of JSON types and refuses the rest by name).
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_CONTAINERS: frozenset[type] = frozenset({dict, list})


class CanonicalJSONError(ValueError, TypeError):
    """A value cannot be written as canonical JSON.

    It is both a :class:`ValueError` (NaN, infinity, unencodable strings) and a
    :class:`TypeError` (a non-JSON type), so callers may catch either.
    """


def _path_join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _find_problem(value: object, path: str = "$") -> tuple[str, str] | None:
    """Return ``(path, problem)`` for the first non-canonical item, or ``None`` (slow path)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, f"object keys must be str, got {type(key).__name__} {key!r}"
            found = _find_problem(item, _path_join(path, key))
            if found:
                return found
            if not _is_encodable(key):
                return path, f"object key {key!r} is not valid Unicode (lone surrogate)"
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_problem(item, _path_join(path, index))
            if found:
                return found
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return path, "NaN is not a JSON number"
        if math.isinf(value):
            return path, f"{'-' if value < 0 else ''}Infinity is not a JSON number"
        return None
    if isinstance(value, int):
        return None
    if isinstance(value, str):
        if not _is_encodable(value):
            return path, "string is not valid Unicode (lone surrogate)"
        return None
    if isinstance(value, tuple):
        return path, "tuple is not a JSON type: use a list (it would read back as a list)"
    return path, f"{type(value).__name__} is not a JSON type"


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raise_problem(value: object) -> None:
    found = _find_problem(value)
    if found is not None:
        path, problem = found
        raise CanonicalJSONError(f"not canonical JSON at {path}: {problem}")


def check_json(value: object) -> None:
    """Check that ``value`` holds only plain JSON types.

    This is the fast structural check used on the write path; NaN, infinity and lone surrogates
    are caught by the encoder itself.

    Parameters
    ----------
    value
        Any Python value.

    Raises
    ------
    CanonicalJSONError
        Naming the first offending location, e.g. ``$.inputs.age``.
    """
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind in _CONTAINERS and _fast_check(value):  # type: ignore[arg-type]
        return
    _raise_problem(value)  # slow path: names the problem, or accepts subclasses of JSON types


def _fast_check(value: dict[Any, Any] | list[Any]) -> bool:
    """Whether ``value`` is made of exact JSON types only (no subclasses, ``str`` keys)."""
    stack: list[Any] = [value]
    pop, push = stack.pop, stack.append
    scalars, containers = _SCALARS, _CONTAINERS
    while stack:
        item = pop()
        if type(item) is dict:
            for key, child in item.items():
                if type(key) is not str:
                    return False
                kind = type(child)
                if kind in containers:
                    push(child)
                elif kind not in scalars:
                    return False
        else:
            for child in item:
                kind = type(child)
                if kind in containers:
                    push(child)
                elif kind not in scalars:
                    return False
    return True


def canonical_json(value: object) -> bytes:
    """Return the canonical JSON bytes of ``value`` in format 2 (:data:`CANONICAL_FORMAT`).

    Parameters
    ----------
    value
        A plain JSON value (see the module docstring).

    Returns
    -------
    bytes
        UTF-8, sorted keys, no whitespace.

    Raises
    ------
    CanonicalJSONError
        For NaN/Infinity, non-JSON types (including tuples and non-``str`` keys) and strings
        that are not valid Unicode; the message names where.
    """
    try:
        data = _dumps(value, None, _ORJSON_OPTIONS)
    except orjson.JSONEncodeError:  # subclasses, non-JSON types, > 64-bit ints, deep nesting
        return _canonical_slow(value)
    # orjson writes NaN and the infinities as null, and tuples, UUIDs, enums and fragments as
    # JSON of another type: reading the bytes back (in C, ~1 µs per KB) then gives a value that
    # differs from the one given. Equal values mean the bytes are exactly the canonical form.
    if _loads(data) != value:
        return _canonical_slow(value)
    return data


def _canonical_slow(value: object) -> bytes:
    """Name the problem, or encode what orjson would not (subclasses, big ints) in Python."""
    return reference_json(value)


def canonical_json_v1(value: object) -> bytes:
    """Return the canonical JSON bytes of ``value`` in format 1 (:data:`CANONICAL_FORMAT_V1`).

    Ledgers created in format 1 keep writing it; lineage ids and evidence digests are defined
    over it.

    Parameters
    ----------
    value
        A plain JSON value (see the module docstring).

    Returns
    -------
    bytes
        UTF-8, sorted keys, no whitespace, floats as Python's ``repr``.

    Raises
    ------
    CanonicalJSONError
        As :func:`canonical_json`.
    """
    check_json(value)
    try:
        return _encode(value).encode("utf-8")
    except RecursionError as exc:
        raise CanonicalJSONError("not canonical JSON: nested too deeply") from exc
    except (ValueError, TypeError) as exc:  # NaN/Infinity, lone surrogates (UnicodeEncodeError)
        _raise_problem(value)
        raise CanonicalJSONError(f"not canonical JSON: {exc}") from exc


def reference_json(value: object) -> bytes:
    """Format 2 written in plain Python: the executable form of its definition.

    Slower than :func:`canonical_json` (which uses orjson) and meant to give the same bytes for
    every value; :func:`canonical_json` falls back to it for what orjson does not take (integers
    beyond 64 bits, subclasses of JSON types, nesting deeper than 255).

    Parameters
    ----------
    value
        A plain JSON value.

    Returns
    -------
    bytes
        The format 2 bytes.

    Raises
    ------
    CanonicalJSONError
        As :func:`canonical_json`.
    """
    try:
        _raise_problem(value)
        return _reference(value).encode("utf-8")
    except RecursionError as exc:
        raise CanonicalJSONError("not canonical JSON: nested too deeply") from exc


def _reference(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, dict):
        members = sorted(value.items(), key=_first)
        return "{" + ",".join(f"{_encode_str(k)}:{_reference(v)}" for k, v in members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_reference(item) for item in value) + "]"
    raise CanonicalJSONError(f"not canonical JSON: {type(value).__name__} is not a JSON type")


def _first(item: tuple[str, Any]) -> str:
    return str.__str__(item[0])


def float_text(value: float, format: str = CANONICAL_FORMAT) -> str:
    """Return how a canonical format writes a finite float.

    Parameters
    ----------
    value
        A finite float.
    format
        :data:`CANONICAL_FORMAT` (default) or :data:`CANONICAL_FORMAT_V1`.

    Returns
    -------
    str
        E.g. ``"1e-7"`` (format 2) or ``"1e-07"`` (format 1) for ``1e-07``.

    Raises
    ------
    CanonicalJSONError
        For NaN and the infinities.
    ValueError
        For an unknown format.
    """
    if not math.isfinite(value):
        raise CanonicalJSONError(f"not canonical JSON: {value!r} is not a JSON number")
    text = float.__repr__(value)  # shortest round-trip digits, nearest the exact value
    if format == CANONICAL_FORMAT_V1:
        return text
    if format != CANONICAL_FORMAT:
        raise ValueError(ERR_UNKNOWN_FORMAT.format(name=format, known=list(CANONICAL_FORMATS)))
    sign = "-" if text.startswith("-") else ""
    text = text.removeprefix("-")
    if text == "0.0":
        return sign + text
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        digits, e = mantissa.replace(".", ""), int(exponent)
    else:
        whole, _, fraction = text.partition(".")
        if whole != "0":
            digits, e = (whole + fraction).rstrip("0"), len(whole) - 1
        else:
            significant = fraction.lstrip("0")
            digits, e = significant.rstrip("0"), len(significant) - len(fraction) - 1
    n = len(digits)
    if -5 <= e <= 15:
        if n - 1 <= e:
            return f"{sign}{digits}{'0' * (e - n + 1)}.0"
        if e >= 0:
            return f"{sign}{digits[: e + 1]}.{digits[e + 1 :]}"
        return f"{sign}0.{'0' * (-e - 1)}{digits}"
    mantissa = digits[0] + (f".{digits[1:]}" if n > 1 else "")
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def encoder_for(format: str) -> Callable[[object], bytes]:
    """Return the encoder of a canonical format (:func:`canonical_json` for format 2).

    Raises
    ------
    ValueError
        For a format this code does not know.
    """
    if format == CANONICAL_FORMAT:
        return canonical_json
    if format == CANONICAL_FORMAT_V1:
        return canonical_json_v1
    raise ValueError(ERR_UNKNOWN_FORMAT.format(name=format, known=list(CANONICAL_FORMATS)))


def _reject_constant(name: str) -> None:
    raise CanonicalJSONError(f"{name} is not a JSON number")


def parse_json(data: bytes | str) -> Any:
    """Parse JSON text strictly (``NaN`` / ``Infinity`` literals are refused).

    Parameters
    ----------
    data
        UTF-8 bytes or text.

    Returns
    -------
    Any
        The value (integers of any size exactly).

    Raises
    ------
    ValueError
        If ``data`` is not valid JSON (``json.JSONDecodeError``, ``UnicodeDecodeError`` or
        :class:`CanonicalJSONError`).
    """
    return json.loads(data, parse_constant=_reject_constant)


def is_canonical(data: bytes, format: str = CANONICAL_FORMAT) -> bool:
    """Whether ``data`` is exactly the canonical JSON encoding, in ``format``, of its value.

    Parameters
    ----------
    data
        Candidate bytes.
    format
        A canonical format (default: format 2).

    Returns
    -------
    bool
        ``False`` for invalid JSON, duplicate keys, whitespace, unsorted keys, other number
        spellings, escaped non-ASCII, and so on.
    """
    encode = encoder_for(format)
    try:
        return encode(parse_json(data)) == data
    except ValueError:
        return False


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with microseconds and ``Z``.

    Returns
    -------
    str
        E.g. ``"2026-07-30T12:34:56.123456Z"`` (always 27 characters, so such strings sort
        chronologically).
    """
    # isoformat is several times faster than strftime; timespec keeps it 27 characters.
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def utc_text(value: datetime) -> str:
    """Return an aware time as the ledger writes times (see :func:`utc_now`): in UTC.

    Raises
    ------
    ValueError
        If ``value`` has no time zone, or falls outside the years 1 to 9999 in UTC (e.g.
        ``0001-01-01T00:00:00+01:00``).
    """
    if value.tzinfo is None:
        raise ValueError("needs a time zone (e.g. a trailing Z for UTC)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 in UTC") from None
    # isoformat writes the year in 4 digits (strftime's %Y does not, before 1000)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"
