"""Strict request parsing (``governance.service.bodies``, ``deps``), without a model.

The endpoint tests (``test_api.py``, ``test_invocations.py``, ``test_fuzz.py``) check the same
rules through the whole service; these pin each rule where it is implemented, one input at a
time: sizes, media types, malformed and non-finite JSON, huge integers, CSV.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient

from governance.service import schemas as s
from governance.service.bodies import (
    ApiError,
    check_scalars,
    csv_rows,
    error_response,
    find_nonfinite,
    invocation_rows,
    json_response,
    merge_pii,
    nonfinite_message,
    parse,
    parse_json,
    read_body,
    validate,
)
from governance.service.deps import invocation_body, json_body

_JSON = {"Content-Type": "application/json"}


def _refused(call: Any, status: int) -> str:
    """The message of the :class:`ApiError` ``call`` raises, checking its status."""
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == status, caught.value.message
    return caught.value.message


# -- parse_json ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "the request body is empty"),
        (b"  \n\t", "the request body is empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": ', "malformed JSON in the request body"),
        (b'{"a": 1,}', "malformed JSON in the request body"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unreadable_json_is_400(raw: bytes, words: str) -> None:
    assert words in _refused(lambda: parse_json(raw), 400)


def test_malformed_json_names_line_and_column() -> None:
    message = _refused(lambda: parse_json(b'{\n  "a": tru\n}'), 400)
    assert "(line 2, column" in message


def test_an_integer_past_pythons_4300_digit_limit_is_400_not_a_crash() -> None:
    raw = b'{"features": {"pirat": ' + b"7" * 4_301 + b"}}"
    assert "unreadable number" in _refused(lambda: parse_json(raw), 400)
    # just under the limit parses (and is refused later, as too large to be a number)
    doc, nonfinite = parse_json(b'{"x": ' + b"7" * 4_000 + b"}")
    assert not nonfinite and doc["x"] == int("7" * 4_000)


def test_finite_json_parses_in_one_pass() -> None:
    assert parse_json(b'{"features": {"pirat": 0.3}}') == ({"features": {"pirat": 0.3}}, False)
    assert parse_json('{"name": "Zoë"}'.encode()) == ({"name": "Zoë"}, False)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nonfinite_literals_are_marked_not_read_as_floats(token: str) -> None:
    doc, nonfinite = parse_json(f'{{"features": {{"pirat": {token}}}}}'.encode())
    assert nonfinite
    assert not isinstance(doc["features"]["pirat"], float)
    assert repr(doc["features"]["pirat"]) == token
    assert find_nonfinite(doc) == (("features", "pirat"), token)


def test_find_nonfinite_walks_lists_and_reports_the_first() -> None:
    doc, _ = parse_json(b'{"applications": [{"features": {"a": 1}}, {"features": {"b": NaN}}]}')
    path, token = find_nonfinite(doc) or ((), "")
    assert (path, token) == (("applications", 1, "features", "b"), "NaN")
    assert nonfinite_message(path, token) == (
        "application 1: feature 'b': NaN is not a finite number (JSON has no NaN or Infinity)"
    )
    assert find_nonfinite({"a": [1, 2.5, {"b": None}]}) is None


def test_nonfinite_outside_features_names_the_dotted_field() -> None:
    doc, _ = parse_json(b'{"params": {"limits": [1, Infinity]}}')
    found = find_nonfinite(doc)
    assert found is not None
    assert nonfinite_message(*found).startswith("field 'params.limits[1]': Infinity")


# -- parse / validate ----------------------------------------------------------------------


def test_parse_refuses_nonfinite_feature_naming_it() -> None:
    raw = b'{"features": {"pirat": 0.3, "lvrat": -Infinity}}'
    message = _refused(lambda: parse(raw, s.DecisionRequest), 422)
    assert message == (
        "feature 'lvrat': -Infinity is not a finite number (JSON has no NaN or Infinity)"
    )


def test_parse_gives_the_model() -> None:
    req = parse(b'{"features": {"pirat": 0.3}, "subject_id": "a-1"}', s.DecisionRequest)
    assert req.features == {"pirat": 0.3} and req.subject_id == "a-1"


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([1, 2], "the request body must be a JSON object, not a list"),
        ("x", "the request body must be a JSON object, not a string"),
        (None, "the request body must be a JSON object, not null"),
        (True, "the request body must be a JSON object, not a boolean"),
        ({"subject_id": "a-1"}, "missing required field 'features'"),
        ({"subject_id": "a-1", "features": {}, "colour": "red"}, "unknown field 'colour'"),
        ({"subject_id": "a-1", "features": []}, "field 'features': "),
    ],
)
def test_validate_names_the_first_problem(doc: Any, words: str) -> None:
    assert words in _refused(lambda: validate(s.DecisionRequest, doc), 422)


def test_validate_counts_further_problems() -> None:
    message = _refused(lambda: validate(s.DecisionRequest, {"a": 1}), 422)
    assert message == "missing required field 'subject_id' (and 2 more problems)"


# -- check_scalars -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"a": 1}, "got an object"),
        ([1], "got a list"),
        (10**400, "the integer is too large to be a number here"),
        (-(10**400), "the integer is too large to be a number here"),
    ],
)
def test_check_scalars_refuses_what_is_not_a_number_or_string(value: Any, words: str) -> None:
    message = _refused(lambda: check_scalars({"pirat": value}, "application 3: "), 422)
    assert message.startswith("application 3: feature 'pirat': ")
    assert words in message


def test_check_scalars_takes_numbers_strings_booleans_and_null() -> None:
    check_scalars({"a": 1, "b": 0.5, "c": "no", "d": None, "e": True, "f": 2**1022})


# -- read_body and the media types ---------------------------------------------------------


def _run(coroutine: Coroutine[Any, Any, bytes]) -> bytes:
    """Run ``coroutine`` to its end on a loop of its own thread.

    Not ``asyncio.run`` here: the browser tests keep an event loop running in the main thread
    for the whole session, and ``asyncio.run`` refuses to start under a running loop.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _request(chunks: Sequence[bytes], headers: dict[str, str]) -> Request:
    """A Starlette request whose body arrives in ``chunks``."""
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive)


def test_read_body_joins_the_chunks_within_the_limit() -> None:
    request = _request([b"ab", b"cd", b"e"], {"content-length": "5"})
    assert _run(read_body(request, 5)) == b"abcde"


def test_read_body_refuses_a_declared_length_over_the_limit_before_reading() -> None:
    request = _request([b"x" * 11], {"content-length": "11"})
    message = _refused(lambda: _run(read_body(request, 10)), 413)
    assert message == "the request body is 11 bytes; the limit is 10 bytes"


def test_read_body_counts_the_bytes_actually_sent() -> None:
    # Content-Length understates (or is absent): the stream itself is cut off at the limit
    for headers in ({"content-length": "3"}, {}):
        request = _request([b"x" * 6, b"x" * 6], headers)
        message = _refused(lambda r=request: _run(read_body(r, 10)), 413)
        assert message == "the request body exceeds the limit of 10 bytes"


def test_read_body_refuses_a_content_length_that_is_not_a_number() -> None:
    request = _request([b"{}"], {"content-length": "two"})
    assert "is not a number" in _refused(lambda: _run(read_body(request, 10)), 400)


@pytest.fixture(scope="module")
def echo() -> TestClient:
    """A bare app with the body dependencies, the error handler and a 16-byte limit."""
    app = FastAPI()
    app.state.max_body_bytes = 16

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    app.add_exception_handler(ApiError, on_api_error)

    @app.post("/json")
    def json_route(raw: bytes = Depends(json_body)) -> Response:
        return Response(raw)

    @app.post("/invocations")
    def invocation_route(body: tuple[str, bytes] = Depends(invocation_body)) -> Response:
        return json_response({"media": body[0], "size": len(body[1])})

    return TestClient(app)


@pytest.mark.parametrize(
    ("media", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("APPLICATION/JSON", 200),
        ("application/problem+json", 200),
        ("text/plain", 415),
        ("text/csv", 415),
        ("", 415),
    ],
)
def test_json_body_takes_only_json(echo: TestClient, media: str, status: int) -> None:
    answer = echo.post("/json", content=b"{}", headers={"Content-Type": media} if media else {})
    assert answer.status_code == status
    if status == 415:
        got = media or "none"
        assert answer.json() == {"error": f"Content-Type must be application/json (got {got})"}


def test_invocation_body_takes_json_or_csv(echo: TestClient) -> None:
    answer = echo.post("/invocations", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert answer.json() == {"media": "text/csv", "size": 8}
    answer = echo.post("/invocations", content=b"<x/>", headers={"Content-Type": "text/xml"})
    assert answer.status_code == 415
    assert answer.json() == {
        "error": "Content-Type must be application/json or text/csv (got text/xml)"
    }


def test_oversized_body_is_413_through_the_dependency(echo: TestClient) -> None:
    answer = echo.post("/json", content=b'{"a": "' + b"x" * 20 + b'"}', headers=_JSON)
    assert answer.status_code == 413
    assert answer.json() == {"error": "the request body is 29 bytes; the limit is 16 bytes"}


# -- /invocations JSON ---------------------------------------------------------------------


def _rows(doc: Any) -> tuple[list[dict[str, Any]], list[str | None] | None, Any]:
    return invocation_rows(json.dumps(doc).encode())


def test_every_mlflow_format_gives_the_same_rows() -> None:
    want = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    docs = [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}},
        {"dataframe_records": want},
        {"instances": want},
        {"inputs": want},
        {"inputs": {"a": [1, 2], "b": ["x", "y"]}},
    ]
    for doc in docs:
        assert _rows(doc) == (want, None, None), doc
    assert _rows({"inputs": {"a": 1, "b": "x"}})[0] == [{"a": 1, "b": "x"}]


def test_params_give_subject_ids_and_purpose() -> None:
    doc = {"instances": [{"a": 1}], "params": {"subject_ids": ["s-1"], "purpose": "p"}}
    assert _rows(doc) == ([{"a": 1}], ["s-1"], "p")


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([{"a": 1}], "must be a JSON object with one of dataframe_split"),
        ({}, "give exactly one of dataframe_split, dataframe_records, instances, inputs"),
        ({"params": {}}, "(got none)"),
        ({"instances": [{"a": 1}], "inputs": [{"a": 1}]}, "(got instances, inputs)"),
        ({"instances": []}, "no rows to score: the input is empty"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, "a column twice"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}, "row 0 has 1 values"),
        (
            {"dataframe_split": {"columns": ["a"], "data": [[1]], "index": [0, 1]}},
            "dataframe_split.index has 2 entries for 1 rows",
        ),
        ({"inputs": {"a": [1, 2], "b": 3}}, "give every column as a list"),
        ({"inputs": {"a": [1, 2], "b": [3]}}, "give every column as a list"),
        ({"instances": [{"a": {"b": 1}}]}, "feature 'a': expected a number, a string or null"),
        ({"instances": [{"a": 1}, {"a": [1]}]}, "row 1: feature 'a'"),
        ({"instances": [{"a": 1}], "params": {"colour": 1}}, "unknown params 'colour'"),
        ({"instances": [{"a": 1}], "params": {"subject_ids": "s"}}, "must be a list of strings"),
        (
            {"instances": [{"a": 1}, {"a": 2}], "params": {"subject_ids": ["s"]}},
            "params.subject_ids has 1 ids for 2 rows",
        ),
        ({"instances": [{"a": 1}], "params": {"purpose": 3}}, "params.purpose must be a string"),
    ],
)
def test_bad_invocations_are_422(doc: Any, words: str) -> None:
    assert words in _refused(lambda: _rows(doc), 422)


def test_too_many_invocation_rows_are_422() -> None:
    doc = {"instances": [{"a": 1}] * (s.MAX_INVOCATION_ROWS + 1)}
    message = _refused(lambda: _rows(doc), 422)
    assert message == f"at most {s.MAX_INVOCATION_ROWS:,} rows per request; got 10,001"


def test_nonfinite_in_an_invocation_names_row_and_feature() -> None:
    raw = b'{"dataframe_records": [{"a": 1}, {"a": Infinity}]}'
    message = _refused(lambda: invocation_rows(raw), 422)
    assert message == (
        "row 1: feature 'a': Infinity is not a finite number (JSON has no NaN or Infinity)"
    )
    raw = b'{"instances": [{"a": 1}], "params": {"purpose": NaN}}'
    assert "field 'params.purpose': NaN" in _refused(lambda: invocation_rows(raw), 422)


# -- /invocations CSV ----------------------------------------------------------------------


def test_csv_reads_numbers_only_in_numeric_columns() -> None:
    raw = "\ufeffpirat,chist,phist,note\n0.3,1,no,\n,2,yes,12\n".encode()
    assert csv_rows(raw, {"pirat", "chist"}) == [
        {"pirat": 0.3, "chist": 1, "phist": "no", "note": None},
        {"pirat": None, "chist": 2, "phist": "yes", "note": "12"},
    ]
    # a numeric column holding text is passed on as text (the scorecard names it)
    assert csv_rows(b"pirat\nlots\n", {"pirat"}) == [{"pirat": "lots"}]


def test_csv_skips_blank_lines_and_reads_quoted_fields() -> None:
    raw = b'a,b\n\n"x, y",2\n\n'
    assert csv_rows(raw, {"b"}) == [{"a": "x, y", "b": 2}]


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"", 400, "the request body is empty; expected CSV with a header line"),
        (b"\n  \n", 400, "the request body is empty"),
        (b"\xef\xbb\xbf", 400, "the request body is empty"),  # a byte-order mark alone
        (b"\xef\xbb\xbf\r\n \n", 400, "the request body is empty"),
        (b"a,b\n\xff,1\n", 400, "not UTF-8"),
        (b"a,b,c\n1,2,3\n1,2\n", 400, "line 3 has 2 fields for 3 columns"),
        (b'a,b\n"1,2\n', 400, "malformed CSV in the request body: unexpected end of data"),
        (b'a,b\n"x"y,2\n', 400, "malformed CSV in the request body: ',' expected after '\"'"),
        (b"a,a\n1,2\n", 422, "the CSV header names a column twice"),
        (b"a,b\n", 422, "no rows to score: the CSV has a header but no rows"),
    ],
)
def test_bad_csv(raw: bytes, status: int, words: str) -> None:
    assert words in _refused(lambda: csv_rows(raw, {"a", "b"}), status)


def test_too_many_csv_rows_are_422() -> None:
    raw = b"a\n" + b"1\n" * (s.MAX_INVOCATION_ROWS + 1)
    assert "at most 10,000 rows" in _refused(lambda: csv_rows(raw, {"a"}), 422)


# -- answers -------------------------------------------------------------------------------


def test_json_response_is_compact_utf8_and_never_nan() -> None:
    answer = json_response({"name": "Zoë", "x": [1.5, float("nan"), float("inf")]}, 201)
    assert answer.status_code == 201 and answer.media_type == "application/json"
    assert answer.body == '{"name":"Zoë","x":[1.5,null,null]}'.encode()


def test_json_response_escapes_a_lone_surrogate() -> None:
    answer = json_response({"echo": "a\ud800b"})
    assert answer.body == b'{"echo":"a\\ud800b"}'


def test_json_response_writes_what_orjson_refuses() -> None:
    # an integer beyond 64 bits (echoed from a request), with a non-finite float beside it
    answer = json_response({"n": 2**70, "x": float("nan")})
    assert answer.body == b'{"n":1180591620717411303424,"x":null}'


def test_error_response_is_one_sentence_with_headers_and_violations() -> None:
    answer = error_response(ApiError(401, "invalid API key", {"WWW-Authenticate": "Bearer"}))
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert json.loads(answer.body) == {"error": "invalid API key"}
    broken = [{"feature": "pirat", "rule": "max"}]
    answer = error_response(ApiError(422, "refused", violations=broken))
    assert json.loads(answer.body) == {"error": "refused", "violations": broken}


def test_merge_pii_puts_sensitive_under_its_key_once() -> None:
    assert merge_pii(None, None) is None
    assert merge_pii({"name": "A"}, None) == {"name": "A"}
    assert merge_pii(None, {"race": "x"}) == {"sensitive": {"race": "x"}}
    assert merge_pii({"name": "A"}, {"race": "x"}) == {"name": "A", "sensitive": {"race": "x"}}
    message = _refused(lambda: merge_pii({"sensitive": {}}, {"race": "x"}, "application 2: "), 422)
    assert message.startswith("application 2: give sensitive attributes either as")
