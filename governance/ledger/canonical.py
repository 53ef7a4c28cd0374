"""Canonical JSON: the one byte encoding of a JSON value that the ledger hashes.

The canonical form is the output of Python's C JSON encoder with these settings, encoded as
UTF-8::

    json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
               allow_nan=False)

* object keys sorted by code point, no whitespace, non-ASCII characters written as UTF-8 (only
  ``"``, ``\\`` and the C0 controls are escaped, with the short escapes ``\\n`` etc. where JSON
  has them and ``\\u00XX`` otherwise);
* integers in decimal, floats as Python's ``repr`` (the shortest string that round-trips the
  IEEE 754 double, exponent form ``1e-07`` / ``1e+16`` outside ``[1e-4, 1e16)``);
* NaN and the infinities are refused (JSON has no such numbers).

Only plain JSON values are accepted, so that what is read back equals what was written
(``json.loads(canonical_json(v)) == v``): ``dict`` with ``str`` keys, ``list``, ``str``, ``int``,
``float``, ``bool`` and ``None`` (subclasses such as ``enum.StrEnum`` members are accepted and
written as their plain value). Tuples, sets, bytes, non-``str`` keys, ``Decimal``, datetimes,
numpy scalars and anything else are refused with a :class:`CanonicalJSONError` that names the
offending location (``$.explanation.reasons[2]``). Lone surrogates in strings are refused too
(they are not UTF-8 encodable).

This is *not* RFC 8785 (JCS): JCS formats numbers the ECMAScript way. Nothing in the ledger needs
another implementation to reproduce these bytes: hashes are computed over the stored bytes, and a
verifier in any language only hashes them. Integers beyond 2**53 are exact here but lose
precision in JavaScript consumers; store such identifiers as strings.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CANONICAL_FORMAT",
    "CanonicalJSONError",
    "canonical_json",
    "check_json",
    "is_canonical",
    "parse_json",
    "utc_now",
]

CANONICAL_FORMAT = "governance.canonical-json/1"
"""Name of this encoding, recorded in each ledger's metadata."""

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_encode = _ENCODER.encode
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
    """Return the canonical JSON bytes of ``value``.

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
    check_json(value)
    try:
        return _encode(value).encode("utf-8")
    except RecursionError as exc:
        raise CanonicalJSONError("not canonical JSON: nested too deeply") from exc
    except (ValueError, TypeError) as exc:  # NaN/Infinity, lone surrogates (UnicodeEncodeError)
        _raise_problem(value)
        raise CanonicalJSONError(f"not canonical JSON: {exc}") from exc


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
        The value.

    Raises
    ------
    ValueError
        If ``data`` is not valid JSON (``json.JSONDecodeError``, ``UnicodeDecodeError`` or
        :class:`CanonicalJSONError`).
    """
    return json.loads(data, parse_constant=_reject_constant)


def is_canonical(data: bytes) -> bool:
    """Whether ``data`` is exactly the canonical JSON encoding of the value it holds.

    Parameters
    ----------
    data
        Candidate bytes.

    Returns
    -------
    bool
        ``False`` for invalid JSON, duplicate keys, whitespace, unsorted keys, other number
        spellings, escaped non-ASCII, and so on.
    """
    try:
        return canonical_json(parse_json(data)) == data
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
