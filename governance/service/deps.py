"""What the routers depend on (FastAPI ``Depends``): the app's state, the caller's role, bodies.

Everything comes from ``request.app.state``, set once by
:func:`governance.service.app.create_app`, so the routers hold no state of their own and a test
can build an app on any service.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from governance.decisions.service import (
    ContractRefused,
    Decision,
    DecisionError,
    DecisionService,
    UnknownModel,
    UntrustedModel,
)
from governance.ledger import Ledger
from governance.service import schemas as s
from governance.service.auth import KeyStore, Principal
from governance.service.bodies import CSV_MEDIA, JSON_MEDIA, ApiError, media_type, read_body
from governance.service.dispatch import Dispatcher
from governance.service.metrics import Metrics
from governance.transparency.status import WitnessMonitor

_APPLICATION_PREFIX = re.compile(r"^application (\d+): ")


# -- the app's state -----------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """The model ``governance serve --model NAME --alias ALIAS`` serves (both may be None)."""

    model: str | None
    alias: str | None


def _service(request: Request) -> DecisionService:
    service: DecisionService = request.app.state.service
    return service


# The dependencies are coroutines: FastAPI runs a plain-def one in its thread pool (a thread
# hop per request for a dictionary read).


async def get_service(request: Request) -> DecisionService:
    """The decision service the app was built on."""
    return _service(request)


async def get_ledger(request: Request) -> Ledger:
    """The ledger the decision service writes."""
    return _service(request).ledger


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_dispatcher(request: Request) -> Dispatcher:
    """Where the app's decisions run (the loop's thread or the pool)."""
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


async def get_witnessing(request: Request) -> WitnessMonitor:
    """The monitor of the ledger's witnesses (for ``/metrics``)."""
    witnessing: WitnessMonitor = request.app.state.witnessing
    return witnessing


async def get_served(request: Request) -> Served:
    """The served model and alias (``/invocations``, and the default of ``/v1/decisions``)."""
    return _served(request)


def _served(request: Request) -> Served:
    return Served(request.app.state.default_model, request.app.state.default_alias)


# -- the caller ----------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key made by `governance keys create`: `Authorization: Bearer gov_…`",
)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``, as :data:`bearer` reads it."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if not (scheme and token) or scheme.lower() != "bearer":
        return None
    return token


def _admission(roles: Sequence[str]) -> Callable[[Request, str | None], Principal]:
    """A check that authenticates a token and admits ``roles`` (and ``admin``).

    The check raises :class:`ApiError`: 401 (with ``WWW-Authenticate``) for a missing or
    unknown key, 403 for another role.
    """
    allowed = frozenset((*roles, "admin"))
    needed = " or ".join(sorted(allowed))

    def admit(request: Request, token: str | None) -> Principal:
        if token is None:
            raise ApiError(
                401,
                "missing API key: send the header 'Authorization: Bearer <key>'",
                {"WWW-Authenticate": "Bearer"},
            )
        keys: KeyStore = request.app.state.keys
        found = keys.authenticate(token)
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

    return admit


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the API key and admits ``roles`` (and ``admin``).

    Raises
    ------
    ApiError
        401 (with ``WWW-Authenticate``) for a missing or unknown key, 403 for another role.
    """
    admit = _admission(roles)

    async def principal(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),
    ) -> Principal:
        return admit(request, None if credentials is None else credentials.credentials)

    return principal


scorer = require("scorer")
auditor = require("auditor")
approver = require("approver")
case_reader = require("auditor", "approver")  # an approver reviews what it can read
reviewer = require("scorer", "approver")  # the kind decides further (see add_review)
admin = require()


# -- bodies --------------------------------------------------------------------------------


async def json_body(request: Request) -> bytes:
    """The request's JSON body, within the app's size limit (415 for another media type)."""
    media = media_type(request)
    if media != JSON_MEDIA and not media.endswith("+json"):
        got = f"got {media}" if media else "got none"
        raise ApiError(415, f"Content-Type must be {JSON_MEDIA} ({got})")
    return await read_body(request, request.app.state.max_body_bytes)


async def invocation_body(request: Request) -> tuple[str, bytes]:
    """``(media type, body)`` of an ``/invocations`` request: JSON or CSV."""
    media = media_type(request)
    if media != CSV_MEDIA and media != JSON_MEDIA and not media.endswith("+json"):
        got = f"got {media}" if media else "got none"
        raise ApiError(415, f"Content-Type must be {JSON_MEDIA} or {CSV_MEDIA} ({got})")
    return media, await read_body(request, request.app.state.max_body_bytes)


_admit_scorer = _admission(("scorer",))


@dataclass(frozen=True)
class Invocation:
    """What ``/invocations`` needs: the caller, the body and the app's state."""

    principal: Principal
    media: str
    body: bytes
    service: DecisionService
    served: Served
    metrics: Metrics
    dispatcher: Dispatcher


async def invocation(request: Request) -> Invocation:
    """``/invocations``' one dependency: the caller admitted as :data:`scorer` admits it (401,
    403), then the body read as :func:`invocation_body` reads it (415, 413), then the state.

    One dependency, not six: FastAPI's solving of each (and the model :data:`bearer` builds)
    cost more than their work, 0.05-0.09 ms of the server's 1.1 ms of CPU per request at 8
    connections (alternating A/B, 2026-12-03).
    The route declares the ``ApiKey`` security scheme itself (``INVOCATIONS_SECURITY``).
    """
    principal = _admit_scorer(request, bearer_token(request))
    media, body = await invocation_body(request)
    state = request.app.state
    return Invocation(
        principal, media, body, state.service, _served(request), state.metrics, state.dispatcher
    )


#: The OpenAPI security of ``/invocations``, which authenticates in :func:`invocation`.
INVOCATIONS_SECURITY: list[dict[str, list[str]]] = [{bearer.scheme_name: []}]


# -- shared by the routers -----------------------------------------------------------------


def target(req: s.Target, served: Served) -> tuple[str, str | None, str | None]:
    """``(model, version, alias)`` a request asks for, with the served model as default."""
    model = req.model or served.model
    if model is None:
        raise ApiError(422, 'missing required field "model" (this server has no default model)')
    version, alias = req.version, req.alias
    if version is None and alias is None and model == served.model:
        alias = served.alias
    return model, version, alias


def observe(metrics: Metrics, endpoint: str, started: float, decisions: Sequence[Decision]) -> None:
    """Count decisions and their latency for ``/metrics``."""
    metrics.observe(
        endpoint,
        time.perf_counter() - started,
        [(d.model["name"], d.model["version"], d.outcome) for d in decisions],
    )


def decision_error(exc: DecisionError, service: DecisionService, *, rows: bool = False) -> ApiError:
    """A decision error as an answer.

    409 for an untrusted model, 422 with the violations for an input contract's refusal, 404
    for an unknown model, version or alias, else 422. ``rows`` speaks of rows, not applications
    (``/invocations``).
    """
    message = str(exc).replace(f" in {service.settings.mlflow_uri}", "")
    if rows:
        message = _APPLICATION_PREFIX.sub(r"row \1: ", message)
    if isinstance(exc, UntrustedModel):
        return ApiError(409, message)
    if isinstance(exc, ContractRefused):
        return ApiError(422, message, violations=exc.violations)
    return ApiError(404 if isinstance(exc, UnknownModel) else 422, message)


def not_found(exc: LookupError) -> ApiError:
    """An unknown decision as a 404 (a ``KeyError`` / ``IndexError`` is a bug: re-raised)."""
    if isinstance(exc, KeyError | IndexError):
        raise exc
    return ApiError(404, str(exc))
