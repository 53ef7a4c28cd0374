"""The HTTP service: decisions through the ledger, MLflow's ``/invocations``, audit reads.

Build the app with :func:`create_app` (tests, embedding) or run it with :func:`serve`
(``governance serve --model NAME --alias ALIAS``).

Endpoints
---------
=======  ===================================  ===============================  =================
method   path                                 what                             role
=======  ===================================  ===============================  =================
POST     /v1/decisions                        decide one application           scorer
POST     /v1/decisions:batch                  decide 1-1,000, all-or-nothing   scorer
POST     /invocations                         MLflow scoring protocol          scorer
GET      /v1/decisions/{id}                   a decision, events, effective    auditor, approver
GET      /v1/decisions/{id}/trace             decision + full lineage          auditor, approver
GET      /v1/decisions/{id}/proof             RFC 9162 inclusion proof         auditor
GET      /v1/decisions/{id}/recourse          the recorded recourse            auditor, approver
GET      /v1/decisions/{id}/notice            issue adverse-action notice      auditor, approver
GET      /v1/subjects/{id}/report             subject access report            auditor
POST     /v1/decisions/{id}/outcome           ground truth, later              scorer
POST     /v1/decisions/{id}/reviews           review / override                approver
                                              contest                          scorer, approver
POST     /v1/models/{m}/versions/{v}/promote  promote a version (gated)        approver
GET      /v1/decisions                        find (subject, model, time)      auditor
GET      /v1/ledger/verify                    verify the whole ledger          auditor
POST     /v1/ledger/checkpoints               sign a checkpoint                admin
GET      /healthz                             the ledger answers               (none)
GET      /metrics                             Prometheus text                  (none)
=======  ===================================  ===============================  =================

The routes live in :mod:`governance.service.api`, one router per resource: ``decisions``
(``/v1/decisions``, ``:batch``, find), ``invocations``, ``audit`` (one decision's reads and
events, the subject report), ``models`` (promotion), ``ledger`` and ``ops`` (health, metrics);
this module assembles them on one app.

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

Request bodies are read and parsed by :mod:`governance.service.bodies`, not by FastAPI, so
that the size limit holds while reading, ``NaN`` / ``Infinity`` (which Python's ``json``
accepts) are refused naming the feature, and every error has the same shape. A decision is
durably in the ledger before its answer is sent (the endpoint returns only after
:class:`~governance.decisions.service.DecisionService` committed).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from governance.decisions.service import DecisionError, DecisionService
from governance.ledger import IntegrityError, PiiError
from governance.service import schemas as s
from governance.service import ui
from governance.service.api import audit, decisions, invocations, ledger, models, ops
from governance.service.auth import KeyStore, KeyStoreError
from governance.service.bodies import ApiError, error_response, json_response, pydantic_message
from governance.service.deps import decision_error
from governance.service.dispatch import INLINE_BELOW, Dispatcher
from governance.service.metrics import Metrics
from governance.settings import Settings
from governance.transparency.status import WitnessMonitor

__all__ = ["DEFAULT_MAX_BODY", "ApiError", "create_app", "serve"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1_048_576

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


# -- errors --------------------------------------------------------------------------------


async def on_api_error(request: Request, exc: Exception) -> Response:
    """An :class:`ApiError` as its JSON answer."""
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's parameter validation error as one sentence naming the first problem (422)."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0]
    where = first["loc"][0] if first["loc"] else "body"
    prefix = f"{where} parameter" if where in ("query", "path", "header") else "field"
    first = {**first, "loc": first["loc"][1:] if prefix != "field" else first["loc"]}
    return error_response(ApiError(422, pydantic_message([first, *errors[1:]], prefix)))


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (unknown endpoint, wrong method, ...) in the error shape."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(ApiError(exc.status_code, message, exc.headers))


async def on_decision_error(request: Request, exc: Exception) -> Response:
    """A decision error no route caught (404 unknown model, 409 untrusted, else 422)."""
    assert isinstance(exc, DecisionError)
    return error_response(decision_error(exc, request.app.state.service))


async def on_integrity_error(request: Request, exc: Exception) -> Response:
    """The ledger does not verify (409)."""
    return error_response(ApiError(409, f"the ledger does not verify: {exc}"))


async def on_key_store_error(request: Request, exc: Exception) -> Response:
    """The API key store cannot be read (500, logged)."""
    log.error("%s", exc)
    return json_response({"error": str(exc)}, 500)


async def on_pii_error(request: Request, exc: Exception) -> Response:
    """Stored personal data does not decrypt (500, logged)."""
    log.error("PII does not decrypt: %s", exc)
    return json_response({"error": f"stored personal data does not decrypt: {exc}"}, 500)


async def on_server_error(request: Request, exc: Exception) -> Response:
    """Any other exception: a 500 that says to look at the server log."""
    return json_response({"error": "internal server error; see the server log"}, 500)


ERROR_HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (ApiError, on_api_error),
    (RequestValidationError, on_validation_error),
    (StarletteHTTPException, on_http_error),
    (DecisionError, on_decision_error),
    (IntegrityError, on_integrity_error),
    (KeyStoreError, on_key_store_error),
    (PiiError, on_pii_error),
    (Exception, on_server_error),
)


# -- OpenAPI: the request models the routers parse themselves ------------------------------


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with the request models parsed outside FastAPI (cached)."""
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


# -- the app -------------------------------------------------------------------------------

# in this order, the OpenAPI document lists the paths as it always has
ROUTERS = (decisions, invocations, audit, models, ledger, ops)


def create_app(
    service: DecisionService,
    keys: KeyStore,
    *,
    default_model: str | None = None,
    default_alias: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    inline_below: float = INLINE_BELOW,
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
    inline_below
        Seconds: a single decision runs on the event loop's thread, skipping the hand-off to
        the thread pool, while no other is running and decisions' averaged wall time is below
        this (:mod:`governance.service.dispatch`); ``0`` always uses the pool.

    Returns
    -------
    FastAPI
        The app; ``app.state`` holds ``service``, ``keys``, ``metrics``, ``dispatcher``,
        ``witnessing``, ``default_model``, ``default_alias`` and ``max_body_bytes`` (what the
        routers use).
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
    app.state.service = service
    app.state.keys = keys
    app.state.metrics = Metrics()
    app.state.dispatcher = Dispatcher(inline_below)
    app.state.witnessing = WitnessMonitor.for_ledger(service.ledger)
    app.state.default_model = default_model
    app.state.default_alias = default_alias
    app.state.max_body_bytes = max_body_bytes
    for exc_class, handler in ERROR_HANDLERS:
        app.add_exception_handler(exc_class, handler)
    for module in ROUTERS:
        app.include_router(module.router)
    app.openapi = partial(openapi_schema, app)  # type: ignore[method-assign]

    app.include_router(ui.router(service, keys))  # the decision explorer under /ui (HTML pages)
    return app


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
    inline_below: float = INLINE_BELOW,
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
    inline_below
        See :func:`create_app`.
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
            inline_below=inline_below,
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
    finally:
        service.close()
