"""The HTTP service: decisions through the ledger, MLflow's ``/invocations``, audit reads.

Build the app with :func:`create_app` (tests, embedding) or run it with :func:`serve`
(``governance serve --model NAME --alias ALIAS``).

Endpoints
---------
=======  ==================================  ===============================  ==============
method   path                                what                             role
=======  ==================================  ===============================  ==============
POST     /v1/decisions                       decide one application           scorer
POST     /v1/decisions:batch                 decide 1-1,000, all-or-nothing   scorer
POST     /invocations                        MLflow scoring protocol          scorer
GET      /v1/decisions/{id}                  a decision, events, effective    auditor, approver
GET      /v1/decisions/{id}/trace            decision + full lineage          auditor, approver
GET      /v1/decisions/{id}/proof            RFC 9162 inclusion proof         auditor
POST     /v1/decisions/{id}/outcome          ground truth, later              scorer
POST     /v1/decisions/{id}/reviews          review / override                approver
                                             contest                          scorer,approver
GET      /v1/decisions                       find (subject, model, time)      auditor
GET      /v1/ledger/verify                   verify the whole ledger          auditor
POST     /v1/ledger/checkpoints              sign a checkpoint                admin
GET      /healthz                            the ledger answers               (none)
GET      /metrics                            Prometheus text                  (none)
=======  ==================================  ===============================  ==============

``admin`` may do everything. The batch endpoint uses the AIP-136 custom-method form
``/v1/decisions:batch``.

Errors
------
Every error answer is ``{"error": "<one sentence>"}``: 400 malformed JSON or CSV, 401 missing or
invalid API key (with ``WWW-Authenticate: Bearer``), 403 wrong role (naming the roles needed),
404 unknown model / alias / version / decision, 413 body larger than ``max_body_bytes``
(checked against ``Content-Length`` and against the bytes actually read), 415 wrong
``Content-Type``, 422 a request that cannot be decided (the message names the feature). A
request that fails appends nothing to the ledger: every application is checked before anything
is written, and a batch is one transaction.

Request bodies are read and parsed here, not by FastAPI, so that the size limit holds while
reading, ``NaN`` / ``Infinity`` (which Python's ``json`` accepts) are refused naming the
feature, and every error has the same shape. A decision is durably in the ledger before its
answer is sent (the endpoint returns only after
:class:`~governance.decisions.service.DecisionService` committed).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from governance.decisions.reviews import with_effective_outcomes
from governance.decisions.service import (
    ContractRefused,
    Decision,
    DecisionError,
    DecisionService,
    UnknownModel,
    UntrustedModel,
)
from governance.ledger import IntegrityError, LedgerError, PiiError
from governance.service import schemas as s
from governance.service.auth import KeyStore, KeyStoreError, Principal
from governance.service.metrics import CONTENT_TYPE, Metrics
from governance.settings import Settings
from governance.subjects import notices as subject_notices
from governance.subjects import report as subject_report
from governance.subjects.recourse import recourse_of
from governance.transparency.status import WitnessMonitor

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
DEFAULT_MAX_BODY = 1_048_576
JSON_MEDIA = "application/json"
CSV_MEDIA = "text/csv"
INVOCATION_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
INVOCATION_PARAMS = ("subject_ids", "purpose")

_APPLICATION_PREFIX = re.compile(r"^application (\d+): ")
_SCALARS = (str, int, float, bool, type(None))
_MAX_INT = 2**1023  # larger integers do not convert to a finite float

TAGS = [
    {"name": "decisions", "description": "Decide applications; each decision is in the ledger"},
    {"name": "mlflow", "description": "MLflow's scoring protocol, extended with explanations"},
    {"name": "audit", "description": "Read decisions, their lineage and proofs; add events"},
    {"name": "ledger", "description": "Verify the ledger and sign checkpoints"},
    {"name": "operations", "description": "Health and Prometheus metrics (no API key)"},
]
DESCRIPTION = """\
Governed model decisions. Every decision is appended to a tamper-evident ledger (hash chain,
signed Merkle checkpoints) **before** its answer is sent, with its exact inputs, explanation,
principal reasons, model version and lineage, caller and purpose.

Authenticate with an API key: `Authorization: Bearer gov_...`. Roles: `scorer` (decide, record
outcomes, file contests), `auditor` (read, verify), `approver` (reviews and overrides),
`admin` (everything, checkpoints).

Every error is `{"error": "<one sentence saying what is wrong>"}`, and a request that fails
records nothing.
"""


MAX_OFFSET = 2**62  # past any ledger, within SQLite's and PostgreSQL's 64-bit integers


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


def _find_nonfinite(node: Any, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], str] | None:
    if isinstance(node, NonFinite):
        return path, node.token
    if isinstance(node, dict):
        for key, value in node.items():
            found = _find_nonfinite(value, (*path, key))
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _find_nonfinite(value, (*path, i))
            if found:
                return found
    return None


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nonfinite_message(path: tuple[Any, ...], token: str) -> str:
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
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"))
    try:
        data = text.encode()
    except UnicodeEncodeError:  # a lone surrogate (echoed from a request): escape it
        data = json.dumps(json.loads(text), separators=(",", ":")).encode()
    return Response(data, status, dict(headers or {}), media_type=JSON_MEDIA)


def error_response(exc: ApiError) -> Response:
    """The JSON error response of an :class:`ApiError` (status, headers, any violations)."""
    doc: dict[str, Any] = {"error": exc.message}
    if exc.violations is not None:  # an input contract's refusal: every broken rule
        doc["violations"] = exc.violations
    return json_response(doc, exc.status, exc.headers)


def _pydantic_message(errors: Sequence[Any], prefix: str = "field") -> str:
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
        raise ApiError(422, f"the request body must be a JSON object, not {_json_kind(doc)}")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ApiError(422, _pydantic_message(exc.errors())) from None


def _json_kind(value: Any) -> str:
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
                f" got {_json_kind(value)}",
            )
        if kind is int and not -_MAX_INT < value < _MAX_INT:
            raise ApiError(
                422, f"{where}feature {name!r}: the integer is too large to be a number here"
            )


def _media_type(request: Request) -> str:
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


def _request_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a body this module parses itself."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {JSON_MEDIA: {"schema": ref}}}}


WRITE_ERRORS = (400, 401, 403, 404, 413, 415, 422)


def _responses(
    ok: int, model: type[BaseModel] | None, description: str, *errors: int
) -> dict[int | str, dict[str, Any]]:
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


def _merge_pii(
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


# -- the app -------------------------------------------------------------------------------


def create_app(
    service: DecisionService,
    keys: KeyStore,
    *,
    default_model: str | None = None,
    default_alias: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """Build the HTTP service on a decision service and an API key store.

    Parameters
    ----------
    service
        Decides, records and reads decisions (its ledger is the one the service writes).
    keys
        The API keys (re-read when their file changes).
    default_model
        The model ``/invocations`` serves, and the one ``/v1/decisions*`` use when the request
        names none (``governance serve --model``).
    default_alias
        The alias used for ``default_model`` when a request gives neither version nor alias
        (``governance serve --alias``); ``None`` means the service default, ``champion``.
    max_body_bytes
        Largest request body accepted (413 beyond it).

    Returns
    -------
    FastAPI
        The app; ``app.state`` holds ``service``, ``keys`` and ``metrics``.
    """
    try:
        from importlib.metadata import version as _pkg_version

        api_version = _pkg_version("governance")
    except Exception:  # pragma: no cover - not installed
        api_version = "0"
    app = FastAPI(
        title="governance decision service",
        version=api_version,
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    metrics = Metrics()
    ledger = service.ledger
    witnessing = WitnessMonitor.for_ledger(ledger)
    app.state.service = service
    app.state.keys = keys
    app.state.metrics = metrics
    app.state.default_model = default_model
    app.state.default_alias = default_alias
    app.state.max_body_bytes = max_body_bytes
    mlflow_uri = service.settings.mlflow_uri

    # -- errors ----------------------------------------------------------------------------

    def decision_error(exc: DecisionError, *, rows: bool = False) -> ApiError:
        message = str(exc).replace(f" in {mlflow_uri}", "")
        if rows:
            message = _APPLICATION_PREFIX.sub(r"row \1: ", message)
        if isinstance(exc, UntrustedModel):
            return ApiError(409, message)
        if isinstance(exc, ContractRefused):
            return ApiError(422, message, violations=exc.violations)
        return ApiError(404 if isinstance(exc, UnknownModel) else 422, message)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        first = errors[0]
        where = first["loc"][0] if first["loc"] else "body"
        prefix = f"{where} parameter" if where in ("query", "path", "header") else "field"
        first = {**first, "loc": first["loc"][1:] if prefix != "field" else first["loc"]}
        return error_response(ApiError(422, _pydantic_message([first, *errors[1:]], prefix)))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(ApiError(exc.status_code, message, exc.headers))

    async def on_decision_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DecisionError)
        return error_response(decision_error(exc))

    async def on_integrity_error(request: Request, exc: Exception) -> Response:
        return error_response(ApiError(409, f"the ledger does not verify: {exc}"))

    async def on_key_store_error(request: Request, exc: Exception) -> Response:
        log.error("%s", exc)
        return json_response({"error": str(exc)}, 500)

    async def on_pii_error(request: Request, exc: Exception) -> Response:
        log.error("PII does not decrypt: %s", exc)
        return json_response({"error": f"stored personal data does not decrypt: {exc}"}, 500)

    async def on_server_error(request: Request, exc: Exception) -> Response:
        return json_response({"error": "internal server error; see the server log"}, 500)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DecisionError, on_decision_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
    app.add_exception_handler(KeyStoreError, on_key_store_error)
    app.add_exception_handler(PiiError, on_pii_error)
    app.add_exception_handler(Exception, on_server_error)

    # -- dependencies ----------------------------------------------------------------------

    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="ApiKey",
        description="An API key made by `governance keys create`: `Authorization: Bearer gov_…`",
    )

    def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
        allowed = frozenset((*roles, "admin"))
        needed = " or ".join(sorted(allowed))

        async def principal(
            credentials: HTTPAuthorizationCredentials | None = Security(bearer),
        ) -> Principal:
            if credentials is None:
                raise ApiError(
                    401,
                    "missing API key: send the header 'Authorization: Bearer <key>'",
                    {"WWW-Authenticate": "Bearer"},
                )
            found = keys.authenticate(credentials.credentials)
            if found is None:
                raise ApiError(
                    401,
                    "invalid API key",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            if found.role not in allowed:
                raise ApiError(
                    403,
                    f"this needs role {needed}; the API key {found.name!r} has role {found.role}",
                )
            return found

        return principal

    scorer = require("scorer")
    auditor = require("auditor")
    case_reader = require("auditor", "approver")  # an approver reviews what it can read
    reviewer = require("scorer", "approver")  # the kind decides further (see add_review)
    admin = require()

    async def json_body(request: Request) -> bytes:
        media = _media_type(request)
        if media != JSON_MEDIA and not media.endswith("+json"):
            got = f"got {media}" if media else "got none"
            raise ApiError(415, f"Content-Type must be {JSON_MEDIA} ({got})")
        return await read_body(request, max_body_bytes)

    async def invocation_body(request: Request) -> tuple[str, bytes]:
        media = _media_type(request)
        if media != CSV_MEDIA and media != JSON_MEDIA and not media.endswith("+json"):
            got = f"got {media}" if media else "got none"
            raise ApiError(415, f"Content-Type must be {JSON_MEDIA} or {CSV_MEDIA} ({got})")
        return media, await read_body(request, max_body_bytes)

    def parse(raw: bytes, model: type[M]) -> M:
        doc, nonfinite = parse_json(raw)
        if nonfinite:
            found = _find_nonfinite(doc)
            if found is not None:
                raise ApiError(422, _nonfinite_message(*found))
        return validate(model, doc)

    def target(req: s.Target) -> tuple[str, str | None, str | None]:
        model = req.model or default_model
        if model is None:
            raise ApiError(422, 'missing required field "model" (this server has no default model)')
        version, alias = req.version, req.alias
        if version is None and alias is None and model == default_model:
            alias = default_alias
        return model, version, alias

    def observe(endpoint: str, started: float, decisions: Sequence[Decision]) -> None:
        metrics.observe(
            endpoint,
            time.perf_counter() - started,
            [(d.model["name"], d.model["version"], d.outcome) for d in decisions],
        )

    def not_found(exc: LookupError) -> ApiError:
        if isinstance(exc, KeyError | IndexError):  # a bug, not an unknown decision
            raise exc
        return ApiError(404, str(exc))

    # -- deciding --------------------------------------------------------------------------

    @app.post(
        "/v1/decisions",
        tags=["decisions"],
        summary="Decide one application",
        description="Scores the application with the resolved model version and appends the"
        " decision to the ledger before answering. The caller recorded is the API key's name."
        " Sensitive attributes are stored encrypted with the PII and never given to the"
        " model.",
        status_code=201,
        responses=_responses(201, s.DecisionResponse, "The decision", *WRITE_ERRORS),
        openapi_extra=_request_doc(s.DecisionRequest),
    )
    def create_decision(
        principal: Principal = Depends(scorer), raw: bytes = Depends(json_body)
    ) -> Response:
        req = parse(raw, s.DecisionRequest)
        check_scalars(req.features)
        model, version, alias = target(req)
        pii = _merge_pii(req.pii, req.sensitive)
        started = time.perf_counter()
        try:
            decision = service.decide(
                model,
                req.features,
                subject_id=req.subject_id,
                version=version,
                alias=alias,
                caller=principal.name,
                purpose=req.purpose,
                pii=pii,
            )
        except DecisionError as exc:
            raise decision_error(exc) from None
        observe("decisions", started, [decision])
        return json_response(
            decision.to_dict(), 201, {"Location": f"/v1/decisions/{decision.decision_id}"}
        )

    @app.post(
        "/v1/decisions:batch",
        tags=["decisions"],
        summary="Decide up to 1,000 applications, all-or-nothing",
        description="Every application is checked before anything is written; the decisions"
        " are recorded in one ledger transaction. One bad application refuses the batch and"
        " the error names it (`application N: ...`).",
        status_code=201,
        responses=_responses(
            201, s.BatchResponse, "The decisions, in request order", *WRITE_ERRORS
        ),
        openapi_extra=_request_doc(s.BatchRequest),
    )
    def create_batch(
        principal: Principal = Depends(scorer), raw: bytes = Depends(json_body)
    ) -> Response:
        req = parse(raw, s.BatchRequest)
        model, version, alias = target(req)
        rows: list[dict[str, Any]] = []
        subject_ids: list[str | None] = []
        pii: list[Mapping[str, Any] | None] = []
        for i, application in enumerate(req.applications):
            where = f"application {i}: "
            check_scalars(application.features, where)
            rows.append(application.features)
            subject_ids.append(application.subject_id)
            pii.append(_merge_pii(application.pii, application.sensitive, where))
        started = time.perf_counter()
        try:
            decisions = service.decide_many(
                model,
                rows,
                subject_ids=subject_ids,
                version=version,
                alias=alias,
                caller=principal.name,
                purpose=req.purpose,
                pii=pii if any(p is not None for p in pii) else None,
            )
        except DecisionError as exc:
            raise decision_error(exc) from None
        observe("batch", started, decisions)
        return json_response(
            {"count": len(decisions), "decisions": [d.to_dict() for d in decisions]}, 201
        )

    @app.post(
        "/invocations",
        tags=["mlflow"],
        summary="MLflow scoring protocol (every row is a ledger decision)",
        description="Accepts `dataframe_split`, `dataframe_records`, `instances` or `inputs`"
        " (JSON) or a CSV body (`text/csv`), with MLflow's optional `params`; ours are"
        " `params.subject_ids` (one per row) and `params.purpose`. Scores with the server's"
        " model and alias (`governance serve --model NAME --alias ALIAS`). All rows are"
        " recorded in one ledger transaction; one bad row refuses them all.",
        responses=_responses(
            200, s.InvocationsResponse, "Predictions, explanations and decision ids", *WRITE_ERRORS
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON_MEDIA: {"schema": {"$ref": "#/components/schemas/InvocationsRequest"}},
                    CSV_MEDIA: {
                        "schema": {"type": "string"},
                        "example": ",".join(s.EXAMPLE_FEATURES)
                        + "\n"
                        + ",".join(str(v) for v in s.EXAMPLE_FEATURES.values())
                        + "\n",
                    },
                },
            }
        },
    )
    def invocations(
        principal: Principal = Depends(scorer),
        body: tuple[str, bytes] = Depends(invocation_body),
    ) -> Response:
        if default_model is None:
            raise ApiError(
                404, "no model is being served: start the server with --model NAME [--alias]"
            )
        media, raw = body
        if media == CSV_MEDIA:
            try:
                loaded, _ = service.model(default_model, alias=default_alias)
            except DecisionError as exc:
                raise decision_error(exc) from None
            rows, subject_ids, purpose = _csv_rows(raw, loaded.scorecard.numeric), None, None
        else:
            rows, subject_ids, purpose = _invocation_rows(raw)
        started = time.perf_counter()
        try:
            decisions = service.decide_many(
                default_model,
                rows,
                subject_ids=subject_ids,
                alias=default_alias,
                caller=principal.name,
                purpose=purpose,
            )
        except DecisionError as exc:
            raise decision_error(exc, rows=True) from None
        observe("invocations", started, decisions)
        return json_response(
            {
                "predictions": [{"outcome": d.outcome, "score": d.score} for d in decisions],
                "explanations": [
                    {
                        "reasons": d.reasons,
                        "main_factors": d.main_factors,
                        "contributions": d.explanation["contributions"],
                        "base_value": d.explanation["base_value"],
                    }
                    for d in decisions
                ],
                "decision_ids": [d.decision_id for d in decisions],
            }
        )

    # -- reading and later events ----------------------------------------------------------

    decision_id_path = Path(description="A decision id (from the answer that created it).")

    @app.get(
        "/v1/decisions/{decision_id}",
        tags=["audit"],
        summary="A decision, its later events and its effective outcome",
        responses=_responses(200, s.ShowResponse, "The decision", 401, 403, 404, 409),
    )
    def show_decision(
        decision_id: str = decision_id_path, principal: Principal = Depends(case_reader)
    ) -> Response:
        try:
            return json_response(service.show(decision_id))
        except LookupError as exc:
            raise not_found(exc) from None

    @app.get(
        "/v1/decisions/{decision_id}/trace",
        tags=["audit"],
        summary="A decision joined to its model version's full lineage",
        description="Model version and lineage id, training run, data md5s, validation,"
        " fairness report, model card and code commit, in one answer.",
        responses=_responses(200, s.TraceResponse, "The trace", 401, 403, 404, 409, 422),
    )
    def trace_decision(
        decision_id: str = decision_id_path, principal: Principal = Depends(case_reader)
    ) -> Response:
        try:
            return json_response(service.trace(decision_id))
        except LookupError as exc:
            raise not_found(exc) from None

    @app.get(
        "/v1/decisions/{decision_id}/proof",
        tags=["audit"],
        summary="RFC 9162 inclusion proof of a decision under a signed checkpoint",
        description="Uses the latest checkpoint covering the decision, signing a new one if"
        " none does.",
        responses=_responses(200, s.ProofResponse, "The proof", 401, 403, 404, 409),
    )
    def prove_decision(
        decision_id: str = decision_id_path, principal: Principal = Depends(auditor)
    ) -> Response:
        record = ledger.get(decision_id)
        if record is None or record.type != "decision":
            raise ApiError(404, f"no decision with id {decision_id}")
        return json_response(ledger.inclusion_proof(decision_id))

    @app.get(
        "/v1/decisions/{decision_id}/recourse",
        tags=["audit"],
        summary="The exact recourse recorded with an adverse decision",
        description="Single-feature changes and the minimal-cost combined change that would have"
        " turned the denial into an approval, each re-scored by the scorer that decided, or"
        ' "no feasible recourse"; with the ledger position of the recourse event.',
        responses=_responses(200, None, "The recorded recourse", 401, 403, 404),
    )
    def decision_recourse(
        decision_id: str = decision_id_path, principal: Principal = Depends(case_reader)
    ) -> Response:
        try:
            return json_response(recourse_of(ledger, decision_id))
        except LookupError as exc:
            raise not_found(exc) from None

    @app.get(
        "/v1/decisions/{decision_id}/notice",
        tags=["audit"],
        summary="Issue the adverse-action notice of a denial",
        description="Rendered from the ledger alone (the decision, its reviews, its recorded"
        " recourse; creditor details from params.yaml `notice`) and recorded as a `notice`"
        " event holding the document's SHA-256 (headers `X-Notice-SHA256`, `X-Notice-Event`);"
        " `governance notice verify FILE` proves it later.",
        responses=_responses(200, None, "The notice document", 401, 403, 404, 422),
    )
    def decision_notice(
        decision_id: str = decision_id_path,
        fmt: str = Query("html", alias="format", pattern="^(html|md|pdf)$"),
        date: str | None = Query(None, description="Issue date YYYY-MM-DD (default: today)."),
        principal: Principal = Depends(case_reader),
    ) -> Response:
        issued = date or datetime.now(UTC).date().isoformat()
        try:
            data, body = subject_notices.render_for(
                ledger, service.settings.project_dir, decision_id, fmt=fmt, issued=issued
            )
        except LookupError as exc:
            raise not_found(exc) from None
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        receipt = ledger.append("notice", body)
        return Response(
            data,
            media_type=subject_notices.MEDIA_TYPES[fmt],
            headers={"X-Notice-SHA256": body["sha256"], "X-Notice-Event": receipt.id},
        )

    @app.get(
        "/v1/subjects/{subject_id}/report",
        tags=["audit"],
        summary="Subject access report (auditors only)",
        description="Every decision about a subject with inputs, outcome, logic, contributions,"
        " recourse, reviews, contests, overrides, outcomes, notices, legal holds and erasures;"
        " every record with its inclusion proof (GDPR art. 15, AI Act art. 86).",
        responses=_responses(200, None, "The report (JSON or HTML)", 401, 403, 404),
    )
    def subject_access_report(
        subject_id: str = Path(description="The subject, as the caller knows them."),
        fmt: str = Query("json", alias="format", pattern="^(json|html)$"),
        principal: Principal = Depends(auditor),
    ) -> Response:
        try:
            doc = subject_report.build(
                ledger, subject_id, cards=subject_report.registry_cards(service.settings)
            )
        except LookupError as exc:
            raise not_found(exc) from None
        if fmt == "html":
            return Response(subject_report.render_html(doc), media_type="text/html")
        return json_response(doc)

    @app.post(
        "/v1/decisions/{decision_id}/outcome",
        tags=["audit"],
        summary="Record the observed outcome of a decision",
        description="The recorder is the authenticated caller (the person holding the API key);"
        " `source` is the client's own note of where the outcome came from. `observed_at` must"
        " lie between the decision's time and now. An outcome that contradicts an earlier one"
        " is recorded as its correction (`corrects`).",
        status_code=201,
        responses=_responses(201, s.EventResponse, "The outcome event", *WRITE_ERRORS),
        openapi_extra=_request_doc(s.OutcomeRequest),
    )
    def record_outcome(
        decision_id: str = decision_id_path,
        principal: Principal = Depends(scorer),
        raw: bytes = Depends(json_body),
    ) -> Response:
        req = parse(raw, s.OutcomeRequest)
        observed_at = None
        if req.observed_at is not None:
            observed_at = req.observed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            receipt = service.record_outcome(
                decision_id,
                req.observed,
                source=req.source,
                observed_at=observed_at,
                recorded_by=principal.who,
            )
        except LookupError as exc:
            raise not_found(exc) from None
        return json_response(
            {
                "event_id": receipt.id,
                "decision_id": decision_id,
                "type": "outcome",
                "timestamp": receipt.ts,
                "ledger": {"seq": receipt.seq, "hash": receipt.hash},
            },
            201,
        )

    @app.post(
        "/v1/decisions/{decision_id}/reviews",
        tags=["audit"],
        summary="Record a human review, an override or a contest (GDPR art. 22(3))",
        description="`review` and `override` need role approver; `contest` role scorer or"
        " approver (the calling system files it for the applicant). The reviewer recorded is"
        " the person holding the API key (`recorded_by`: the key's name).",
        status_code=201,
        responses=_responses(201, s.EventResponse, "The review event", *WRITE_ERRORS),
        openapi_extra=_request_doc(s.ReviewRequest),
    )
    def add_review(
        decision_id: str = decision_id_path,
        principal: Principal = Depends(reviewer),
        raw: bytes = Depends(json_body),
    ) -> Response:
        req = parse(raw, s.ReviewRequest)
        if req.kind != "contest" and principal.role not in ("approver", "admin"):
            raise ApiError(
                403,
                f"a {req.kind} needs role admin or approver; the API key {principal.name!r}"
                f" has role {principal.role}",
            )
        try:
            receipt = service.record_review(
                decision_id,
                kind=req.kind,
                reviewer=principal.who,
                reason=req.reason,
                outcome=req.outcome,
                recorded_by=principal.name,
            )
        except LookupError as exc:
            raise not_found(exc) from None
        return json_response(
            {
                "event_id": receipt.id,
                "decision_id": decision_id,
                "type": "review",
                "kind": req.kind,
                "timestamp": receipt.ts,
                "ledger": {"seq": receipt.seq, "hash": receipt.hash},
            },
            201,
        )

    @app.post(
        "/v1/models/{name}/versions/{version}/promote",
        tags=["lifecycle"],
        summary="Promote a version (move the champion alias): gated, approved, recorded",
        description="Moves the alias only if the version passed every gate, its lineage"
        " resolves, its git commit was clean and its model card exists, and only if the approver"
        " did not register it (separation of duties). Every promotion and refusal is a ledger"
        " event; the approver recorded is the person holding the API key (an `approver` field,"
        " if given, must name that person, else 403). A refusal answers 409 with the failed"
        " conditions.",
        status_code=201,
        responses=_responses(201, None, "The promotion", 400, 401, 403, 404, 409, 413, 415, 422),
        openapi_extra=_request_doc(s.PromotionRequest),
    )
    def promote_version(
        name: str,
        version: str,
        principal: Principal = Depends(require("approver")),
        raw: bytes = Depends(json_body),
    ) -> Response:
        from governance.lifecycle.promotion import (
            PromotionError,
            PromotionRefused,
            UnknownVersion,
            promote,
            same_person,
        )

        req = parse(raw, s.PromotionRequest)
        if req.approver is not None and not same_person(req.approver, principal.who):
            raise ApiError(
                403,
                f"approver {req.approver!r} is not the person holding this API key"
                f" ({principal.who!r}): the approver recorded is always the authenticated person",
            )
        try:
            result = promote(
                service.settings,
                service.ledger,
                name,
                version,
                approver=principal.who,
                reason=req.reason,
                alias=req.alias,
                on_move=lambda moved: service.aliases.forget(name, req.alias),
            )
        except PromotionRefused as exc:
            return json_response({"error": str(exc), "failures": list(exc.failures)}, 409)
        except PromotionError as exc:
            raise ApiError(404 if isinstance(exc, UnknownVersion) else 422, str(exc)) from None
        return json_response(result, 201)

    @app.get(
        "/v1/decisions",
        tags=["audit"],
        summary="Find decisions by subject, model version and time",
        responses=_responses(200, s.FindResponse, "Matching decisions", 401, 403, 422),
    )
    def find_decisions(
        principal: Principal = Depends(auditor),
        subject_id: str | None = Query(None, description="The applicant's identifier."),
        model: str | None = Query(None, description="Registered model name."),
        version: str | None = Query(None, description="Model version (needs model)."),
        since: str | None = Query(None, description="ISO 8601 with a zone, inclusive."),
        until: str | None = Query(None, description="ISO 8601 with a zone, exclusive."),
        limit: int = Query(100, ge=1, le=1000, description="Page size."),
        offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Decisions to skip."),
    ) -> Response:
        given = {"subject_id": subject_id, "model": model, "version": version}
        given |= {"since": since, "until": until}
        for name, value in given.items():
            if value is not None and not value.strip():
                raise ApiError(
                    422, f"query parameter {name} is empty; give a value or leave it out"
                )
        try:
            records = ledger.find(
                subject_id=subject_id,
                model=model,
                version=version,
                since=since,
                until=until,
                type="decision",
                limit=limit,
                offset=offset,
            )
        except LedgerError as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise ApiError(422, str(exc)) from None
        return json_response(
            {
                "count": len(records),
                "limit": limit,
                "offset": offset,
                "next_offset": offset + len(records) if len(records) == limit else None,
                "decisions": with_effective_outcomes(ledger, records),
            }
        )

    @app.get(
        "/v1/ledger/verify",
        tags=["ledger"],
        summary="Verify the whole ledger: hash chain, record hashes, signed checkpoints",
        description="Always 200; `ok` says whether it verified, else `first_bad` and `reason`"
        " say where and what.",
        responses=_responses(200, s.VerifyResponse, "The verification result", 401, 403),
    )
    def verify_ledger(principal: Principal = Depends(auditor)) -> Response:
        return json_response(ledger.verify().to_dict())

    @app.post(
        "/v1/ledger/checkpoints",
        tags=["ledger"],
        summary="Sign a checkpoint of the ledger (RFC 9162 tree head)",
        status_code=201,
        responses=_responses(201, s.CheckpointResponse, "The checkpoint", 401, 403, 409),
    )
    def make_checkpoint(principal: Principal = Depends(admin)) -> Response:
        return json_response(ledger.checkpoint().to_json(), 201)

    # -- operations ------------------------------------------------------------------------

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness: the ledger answers",
        responses=_responses(200, s.HealthResponse, "Healthy", 503),
    )
    def healthz() -> Response:
        try:
            size = ledger.size()
        except Exception as exc:
            return json_response({"error": f"the ledger does not answer: {exc}"}, 503)
        return json_response(
            {
                "status": "ok",
                "ledger_records": size,
                "model": default_model,
                "alias": default_alias,
            }
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (text exposition format 0.0.4)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    def prometheus() -> Response:
        return Response(metrics.render(ledger, witnesses=witnessing), media_type=CONTENT_TYPE)

    # -- OpenAPI: the request models this module parses itself -----------------------------

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=TAGS,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in s.REQUEST_MODELS:
            doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in doc.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = doc
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    from governance.service import ui  # the decision explorer under /ui (HTML pages)

    app.include_router(ui.router(service, keys))
    return app


# -- /invocations input --------------------------------------------------------------------


def _invocation_rows(raw: bytes) -> tuple[list[dict[str, Any]], list[str | None] | None, Any]:
    """Rows, subject ids and purpose from an MLflow JSON scoring request."""
    doc, nonfinite = parse_json(raw)
    if not isinstance(doc, dict):
        raise ApiError(
            422,
            f"the request body must be a JSON object with one of {', '.join(INVOCATION_FORMATS)},"
            f" not {_json_kind(doc)}",
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
        found = _find_nonfinite(params, ("params",))
        if found is not None:
            raise ApiError(422, _nonfinite_message(*found))
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


def _csv_rows(raw: bytes, numeric: Collection[str]) -> list[dict[str, Any]]:
    """Rows from a CSV body (header line first).

    CSV has no types: columns the model takes as numbers are read as numbers (integers where
    they are written as integers), everything else as strings; an empty field is null.
    """
    if not raw.strip():
        raise ApiError(400, "the request body is empty; expected CSV with a header line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text") from None
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


# -- running -------------------------------------------------------------------------------


def serve(
    settings: Settings,
    *,
    model: str | None,
    alias: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Run the service with uvicorn until interrupted (``governance serve``).

    The model (if given) is loaded before the server starts, so a wrong name or alias fails at
    once (:class:`~governance.decisions.service.DecisionError`) rather than on the first request.

    Parameters
    ----------
    settings
        Where the registry, ledger and API keys live.
    model, alias
        The served model (``/invocations``, and the default for ``/v1/decisions``).
    host, port
        Where to listen.
    max_body_bytes
        Largest request body accepted.
    log_level, access_log
        uvicorn logging (the access log costs throughput; off by default).
    """
    import uvicorn

    service = DecisionService.open(settings)
    try:
        if model is not None:
            service.model(model, alias=alias)
        keys = KeyStore.for_home(settings.home)
        if not keys.entries():
            log.warning("no API keys in %s: every request will be refused", keys.path)
        app = create_app(
            service,
            keys,
            default_model=model,
            default_alias=alias,
            max_body_bytes=max_body_bytes,
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
    finally:
        service.close()
