"""Request bodies, read and checked strictly, and error answers in one shape.

Bodies are read and parsed here, not by FastAPI, so that the size limit holds while reading,
``NaN`` / ``Infinity`` (which Python's ``json`` accepts) are refused naming the feature, and
every error is ``{"error": "<one sentence>"}`` (:class:`ApiError`). The OpenAPI fragments of the
bodies parsed here (:func:`request_doc`, :func:`responses_for`) live here too.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from governance.service import schemas as s

M = TypeVar("M", bound=BaseModel)
JSON_MEDIA = "application/json"
CSV_MEDIA = "text/csv"
INVOCATION_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
INVOCATION_PARAMS = ("subject_ids", "purpose")
WRITE_ERRORS = (400, 401, 403, 404, 413, 415, 422)

_SCALARS = (str, int, float, bool, type(None))
_MAX_INT = 2**1023  # larger integers do not convert to a finite float


class ApiError(Exception):
    """An error answer: status code, one-sentence message, optional headers."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        violations: Sequence[Mapping[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.violations = list(violations) if violations is not None else None


# -- JSON in and out -----------------------------------------------------------------------


class NonFinite:
    """Stands for a ``NaN`` / ``Infinity`` / ``-Infinity`` literal found in a request body."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return self.token


class _NonFiniteFound(Exception):
    pass


def _refuse_constant(token: str) -> Any:
    raise _NonFiniteFound(token)


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant)
_LENIENT = json.JSONDecoder(parse_constant=NonFinite)


def parse_json(raw: bytes) -> tuple[Any, bool]:
    """Parse a request body; return the document and whether it holds NaN/Infinity literals.

    Non-finite literals become :class:`NonFinite` markers (located later, to name the
    feature); the common case costs one ordinary parse.

    Raises
    ------
    ApiError
        400 if the body is empty, not UTF-8 or not JSON.
    """
    if not raw.strip():
        raise ApiError(400, "the request body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text") from None
    try:
        try:
            return _STRICT.decode(text), False
        except _NonFiniteFound:
            return _LENIENT.decode(text), True
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            f"malformed JSON in the request body: {exc.msg} (line {exc.lineno},"
            f" column {exc.colno})",
        ) from None
    except RecursionError:
        raise ApiError(400, "the JSON in the request body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal past Python's 4,300-digit limit
        raise ApiError(400, f"unreadable number in the request body: {exc}") from None


def find_nonfinite(node: Any, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], str] | None:
    """The path and token of the first :class:`NonFinite` marker in ``node``, or ``None``."""
    if isinstance(node, NonFinite):
        return path, node.token
    if isinstance(node, dict):
        for key, value in node.items():
            found = find_nonfinite(value, (*path, key))
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = find_nonfinite(value, (*path, i))
            if found:
                return found
    return None


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def nonfinite_message(path: tuple[Any, ...], token: str) -> str:
    """The 422 message for a non-finite literal at ``path`` (naming the feature if it is one)."""
    what = f"{token} is not a finite number (JSON has no NaN or Infinity)"
    if "features" in path:
        at = path.index("features")
        prefix = f"application {path[1]}: " if path[:1] == ("applications",) else ""
        if at + 1 < len(path):
            return f"{prefix}feature {path[at + 1]!r}: {what}"
    return f"field {_dotted(path)!r}: {what}"


def _finite(node: Any) -> Any:
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_finite(v) for v in node]
    return node


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer (compact, UTF-8); non-finite floats (never in decisions) become null."""
    try:  # in C: orjson writes NaN and the infinities as null, as _finite does
        data = orjson.dumps(content)
    except orjson.JSONEncodeError:  # a lone surrogate echoed from a request, an int > 64 bits
        data = _json_bytes(content)
    return Response(data, status, dict(headers or {}), media_type=JSON_MEDIA)


def _json_bytes(content: Any) -> bytes:
    """:func:`json_response`'s bytes in Python, for what orjson refuses."""
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (echoed from a request): escape it
        return json.dumps(json.loads(text), separators=(",", ":")).encode()


def error_response(exc: ApiError) -> Response:
    """The JSON error response of an :class:`ApiError` (status, headers, any violations)."""
    doc: dict[str, Any] = {"error": exc.message}
    if exc.violations is not None:  # an input contract's refusal: every broken rule
        doc["violations"] = exc.violations
    return json_response(doc, exc.status, exc.headers)


def pydantic_message(errors: Sequence[Any], prefix: str = "field") -> str:
    """One sentence naming the first of pydantic's ``errors`` (and how many more there are)."""
    first = errors[0]
    # drop pydantic's union-branch tags such as "list[dict[str,any]]" from the location
    loc = _dotted([p for p in first["loc"] if not (isinstance(p, str) and "[" in p)])
    kind = first["type"]
    if kind == "missing":
        message = f"missing required {prefix} {loc!r}"
    elif kind == "extra_forbidden":
        message = f"unknown {prefix} {loc!r}"
    else:
        text = str(first["msg"])
        message = f"{prefix} {loc!r}: {text[:1].lower()}{text[1:]}"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return message


def validate(model: type[M], doc: Any) -> M:
    """Validate a parsed body against a request model (422 naming the first problem)."""
    if not isinstance(doc, dict):
        raise ApiError(422, f"the request body must be a JSON object, not {json_kind(doc)}")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ApiError(422, pydantic_message(exc.errors())) from None


def parse(raw: bytes, model: type[M]) -> M:
    """Parse a JSON body and validate it against ``model``.

    Raises
    ------
    ApiError
        400 for malformed JSON, 422 for a non-finite number (naming where it is) or a body the
        model refuses.
    """
    doc, nonfinite = parse_json(raw)
    if nonfinite:
        found = find_nonfinite(doc)
        if found is not None:
            raise ApiError(422, nonfinite_message(*found))
    return validate(model, doc)


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in words (``"an object"``, ``"a list"``, ...)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def check_scalars(features: Mapping[str, Any], where: str = "") -> None:
    """Refuse feature values that are objects or lists (422 naming the feature)."""
    for name, value in features.items():
        kind = type(value)
        if kind not in _SCALARS:
            raise ApiError(
                422,
                f"{where}feature {name!r}: expected a number, a string or null,"
                f" got {json_kind(value)}",
            )
        if kind is int and not -_MAX_INT < value < _MAX_INT:
            raise ApiError(
                422, f"{where}feature {name!r}: the integer is too large to be a number here"
            )


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters (``""`` if none)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing more than ``limit`` bytes (declared or actually sent).

    Raises
    ------
    ApiError
        413 if ``Content-Length`` or the bytes read exceed ``limit``; 400 for a bad
        ``Content-Length``.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length {declared!r} is not a number") from None
        if length > limit:
            raise ApiError(
                413, f"the request body is {length:,} bytes; the limit is {limit:,} bytes"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def request_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a body this module parses itself."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {JSON_MEDIA: {"schema": ref}}}}


def responses_for(
    ok: int, model: type[BaseModel] | None, description: str, *errors: int
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses``: the success answer and the error answers ``errors``."""
    texts = {
        400: "Malformed JSON or CSV",
        401: "Missing or invalid API key",
        403: "The API key's role may not do this",
        404: "Unknown model, alias, version or decision",
        409: "The ledger does not verify",
        413: "Request body too large",
        415: "Unsupported Content-Type",
        422: "The request cannot be decided (the message names the problem)",
        503: "The ledger does not answer",
    }
    out: dict[int | str, dict[str, Any]] = {ok: {"description": description}}
    if model is not None:
        out[ok]["model"] = model
    for code in errors:
        out[code] = {"model": s.ErrorResponse, "description": texts[code]}
    return out


def merge_pii(
    pii: Mapping[str, Any] | None, sensitive: Mapping[str, Any] | None, where: str = ""
) -> dict[str, Any] | None:
    """PII with the sensitive attributes under ``"sensitive"`` (both stored encrypted)."""
    if not sensitive:
        return dict(pii) if pii else None
    if pii and "sensitive" in pii:
        raise ApiError(
            422,
            f'{where}give sensitive attributes either as "sensitive" or as "pii.sensitive",'
            " not both",
        )
    return {**(pii or {}), "sensitive": dict(sensitive)}


# -- /invocations input --------------------------------------------------------------------


def invocation_rows(raw: bytes) -> tuple[list[dict[str, Any]], list[str | None] | None, Any]:
    """Rows, subject ids and purpose from an MLflow JSON scoring request."""
    doc, nonfinite = parse_json(raw)
    if not isinstance(doc, dict):
        raise ApiError(
            422,
            f"the request body must be a JSON object with one of {', '.join(INVOCATION_FORMATS)},"
            f" not {json_kind(doc)}",
        )
    present = [k for k in INVOCATION_FORMATS if doc.get(k) is not None]
    if len(present) != 1:
        got = f"got {', '.join(present)}" if present else "got none"
        raise ApiError(422, f"give exactly one of {', '.join(INVOCATION_FORMATS)} ({got})")
    req = validate(s.InvocationsRequest, doc)
    rows = _rows(req)
    if not rows:
        raise ApiError(422, "no rows to score: the input is empty")
    if len(rows) > s.MAX_INVOCATION_ROWS:
        raise ApiError(
            422, f"at most {s.MAX_INVOCATION_ROWS:,} rows per request; got {len(rows):,}"
        )
    params = req.params or {}
    if nonfinite:
        for i, row in enumerate(rows):
            for name, value in row.items():
                if isinstance(value, NonFinite):
                    raise ApiError(
                        422,
                        f"row {i}: feature {name!r}: {value.token} is not a finite number"
                        " (JSON has no NaN or Infinity)",
                    )
        found = find_nonfinite(params, ("params",))
        if found is not None:
            raise ApiError(422, nonfinite_message(*found))
    for i, row in enumerate(rows):
        check_scalars(row, f"row {i}: " if len(rows) > 1 else "")
    unknown = sorted(set(params) - set(INVOCATION_PARAMS))
    if unknown:
        raise ApiError(
            422,
            f"unknown params {', '.join(map(repr, unknown))}: this server takes"
            f" {' and '.join(INVOCATION_PARAMS)}",
        )
    subject_ids = params.get("subject_ids")
    if subject_ids is not None:
        if not isinstance(subject_ids, list) or not all(
            isinstance(x, str) or x is None for x in subject_ids
        ):
            raise ApiError(422, "params.subject_ids must be a list of strings (or nulls)")
        if len(subject_ids) != len(rows):
            raise ApiError(
                422,
                f"params.subject_ids has {len(subject_ids)} ids for {len(rows)} rows",
            )
    purpose = params.get("purpose")
    if purpose is not None and not isinstance(purpose, str):
        raise ApiError(422, "params.purpose must be a string")
    return rows, subject_ids, purpose


def _rows(req: s.InvocationsRequest) -> list[dict[str, Any]]:
    if req.dataframe_split is not None:
        split = req.dataframe_split
        columns = split.columns
        if len(set(columns)) != len(columns):
            raise ApiError(422, "dataframe_split.columns names a column twice")
        if split.index is not None and len(split.index) != len(split.data):
            raise ApiError(
                422,
                f"dataframe_split.index has {len(split.index)} entries for {len(split.data)} rows",
            )
        rows = []
        for i, values in enumerate(split.data):
            if len(values) != len(columns):
                raise ApiError(
                    422,
                    f"dataframe_split: row {i} has {len(values)} values for {len(columns)} columns",
                )
            rows.append(dict(zip(columns, values, strict=True)))
        return rows
    if req.dataframe_records is not None:
        return req.dataframe_records
    if req.instances is not None:
        return req.instances
    inputs = req.inputs
    if isinstance(inputs, list):
        return inputs
    assert inputs is not None
    lists = [isinstance(v, list) for v in inputs.values()]
    if not any(lists):
        return [dict(inputs)]
    lengths = {len(v) for v in inputs.values() if isinstance(v, list)}
    if not all(lists) or len(lengths) != 1:
        raise ApiError(422, "inputs: give every column as a list, all of the same length")
    (n,) = lengths
    names = list(inputs)
    columns = [inputs[k] for k in names]
    return [{k: col[i] for k, col in zip(names, columns, strict=True)} for i in range(n)]


def _csv_value(text: str, numeric: bool) -> Any:
    if text == "":
        return None
    if not numeric:
        return text
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text  # the scorecard names the feature and the value


def csv_rows(raw: bytes, numeric: Collection[str]) -> list[dict[str, Any]]:
    """Rows from a CSV body (header line first).

    CSV has no types: columns the model takes as numbers are read as numbers (integers where
    they are written as integers), everything else as strings; an empty field is null.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text") from None
    if not text.strip():  # after decoding: a byte-order mark alone is empty too
        raise ApiError(400, "the request body is empty; expected CSV with a header line")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        if len(set(header)) != len(header):
            raise ApiError(422, "the CSV header names a column twice")
        kinds = [name in numeric for name in header]
        rows = []
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise ApiError(
                    400,
                    f"malformed CSV in the request body: line {reader.line_num} has"
                    f" {len(fields)} fields for {len(header)} columns",
                )
            rows.append(
                {
                    name: _csv_value(value, kind)
                    for name, value, kind in zip(header, fields, kinds, strict=True)
                }
            )
    except csv.Error as exc:
        raise ApiError(400, f"malformed CSV in the request body: {exc}") from None
    if not rows:
        raise ApiError(422, "no rows to score: the CSV has a header but no rows")
    if len(rows) > s.MAX_INVOCATION_ROWS:
        raise ApiError(
            422, f"at most {s.MAX_INVOCATION_ROWS:,} rows per request; got {len(rows):,}"
        )
    return rows
