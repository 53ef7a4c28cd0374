"""``/v1/decisions``: decide one application or a batch, each decision recorded in the ledger
before the answer is sent; find decisions by subject, model version and time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from governance.decisions.reviews import with_effective_outcomes
from governance.decisions.service import DecisionError, DecisionRequest, DecisionService
from governance.ledger import IntegrityError, Ledger, LedgerError
from governance.service import schemas as s
from governance.service.auth import Principal
from governance.service.bodies import (
    WRITE_ERRORS,
    ApiError,
    check_scalars,
    json_response,
    merge_pii,
    parse,
    request_doc,
    responses_for,
)
from governance.service.deps import (
    Served,
    auditor,
    decision_error,
    get_dispatcher,
    get_ledger,
    get_metrics,
    get_served,
    get_service,
    json_body,
    observe,
    scorer,
    target,
)
from governance.service.dispatch import Dispatcher
from governance.service.metrics import Metrics

MAX_OFFSET = 2**62  # past any ledger, within SQLite's and PostgreSQL's 64-bit integers

router = APIRouter()


@router.post(
    "/v1/decisions",
    tags=["decisions"],
    summary="Decide one application",
    description="Scores the application with the resolved model version and appends the"
    " decision to the ledger before answering. The caller recorded is the API key's name."
    " Sensitive attributes are stored encrypted with the PII and never given to the"
    " model.",
    status_code=201,
    responses=responses_for(201, s.DecisionResponse, "The decision", *WRITE_ERRORS),
    openapi_extra=request_doc(s.DecisionRequest),
)
async def create_decision(
    principal: Principal = Depends(scorer),
    raw: bytes = Depends(json_body),
    service: DecisionService = Depends(get_service),
    served: Served = Depends(get_served),
    metrics: Metrics = Depends(get_metrics),
    dispatcher: Dispatcher = Depends(get_dispatcher),
) -> Response:
    call = _Single(principal, raw, service, served, metrics)
    return await dispatcher.run(call, _create_decisions, body_bytes=len(raw))


@dataclass(frozen=True)
class _Single:
    """One ``POST /v1/decisions`` call, as it waits for its turn."""

    principal: Principal
    raw: bytes
    service: DecisionService
    served: Served
    metrics: Metrics


def _create_decisions(calls: list[_Single]) -> list[Response | Exception]:
    """Answer each call: alone as :meth:`DecisionService.decide` decides it, or, when several
    waited together, those naming the same model, version and alias in one ledger transaction
    (:meth:`DecisionService.decide_together`), each still refused or answered alone.
    """
    out: list[Response | Exception | None] = [None] * len(calls)
    groups: dict[tuple[str, str | None, str | None], list[tuple[int, DecisionRequest]]] = {}
    for k, call in enumerate(calls):
        try:
            model, version, alias, request = _request(call)
        except Exception as exc:  # an ApiError (4xx), or a 500 for this call alone
            out[k] = exc
        else:
            groups.setdefault((model, version, alias), []).append((k, request))
    service, metrics = calls[0].service, calls[0].metrics
    for (model, version, alias), requests in groups.items():
        started = time.perf_counter()
        try:
            decided = service.decide_together(
                model, [r for _, r in requests], version=version, alias=alias
            )
        except DecisionError as exc:
            decided = [exc] * len(requests)
        for (k, _), result in zip(requests, decided, strict=True):
            if isinstance(result, DecisionError):
                out[k] = decision_error(result, service)
                continue
            decision = result[0]
            observe(metrics, "decisions", started, [decision])
            out[k] = json_response(
                decision.to_dict(), 201, {"Location": f"/v1/decisions/{decision.decision_id}"}
            )
    return [r if r is not None else RuntimeError("a request was left unanswered") for r in out]


def _request(call: _Single) -> tuple[str, str | None, str | None, DecisionRequest]:
    """A call's target (model, version, alias) and its one application (4xx as ApiError)."""
    req = parse(call.raw, s.DecisionRequest)
    check_scalars(req.features)
    model, version, alias = target(req, call.served)
    pii = merge_pii(req.pii, req.sensitive)
    return (
        model,
        version,
        alias,
        DecisionRequest(
            [req.features],
            [req.subject_id],
            call.principal.name,
            req.purpose,
            [pii] if pii else None,
        ),
    )


@router.post(
    "/v1/decisions:batch",
    tags=["decisions"],
    summary="Decide up to 1,000 applications, all-or-nothing",
    description="Every application is checked before anything is written; the decisions"
    " are recorded in one ledger transaction. One bad application refuses the batch and"
    " the error names it (`application N: ...`).",
    status_code=201,
    responses=responses_for(201, s.BatchResponse, "The decisions, in request order", *WRITE_ERRORS),
    openapi_extra=request_doc(s.BatchRequest),
)
def create_batch(
    principal: Principal = Depends(scorer),
    raw: bytes = Depends(json_body),
    service: DecisionService = Depends(get_service),
    served: Served = Depends(get_served),
    metrics: Metrics = Depends(get_metrics),
) -> Response:
    req = parse(raw, s.BatchRequest)
    model, version, alias = target(req, served)
    rows: list[dict[str, Any]] = []
    subject_ids: list[str | None] = []
    pii: list[Mapping[str, Any] | None] = []
    for i, application in enumerate(req.applications):
        where = f"application {i}: "
        check_scalars(application.features, where)
        rows.append(application.features)
        subject_ids.append(application.subject_id)
        pii.append(merge_pii(application.pii, application.sensitive, where))
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
        raise decision_error(exc, service) from None
    observe(metrics, "batch", started, decisions)
    return json_response(
        {"count": len(decisions), "decisions": [d.to_dict() for d in decisions]}, 201
    )


@router.get(
    "/v1/decisions",
    tags=["audit"],
    summary="Find decisions by subject, model version and time",
    responses=responses_for(200, s.FindResponse, "Matching decisions", 401, 403, 422),
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
    ledger: Ledger = Depends(get_ledger),
) -> Response:
    given = {"subject_id": subject_id, "model": model, "version": version}
    given |= {"since": since, "until": until}
    for name, value in given.items():
        if value is not None and not value.strip():
            raise ApiError(422, f"query parameter {name} is empty; give a value or leave it out")
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
