"""``/invocations``: MLflow's scoring protocol, every row a ledger decision, answered with
predictions, explanations and decision ids."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from governance.decisions.service import Decision, DecisionError, DecisionRequest
from governance.service import schemas as s
from governance.service.bodies import (
    CSV_MEDIA,
    JSON_MEDIA,
    WRITE_ERRORS,
    ApiError,
    csv_rows,
    invocation_rows,
    json_response,
    responses_for,
)
from governance.service.deps import (
    INVOCATIONS_SECURITY,
    Invocation,
    decision_error,
    invocation,
    observe,
)

router = APIRouter()


@router.post(
    "/invocations",
    tags=["mlflow"],
    summary="MLflow scoring protocol (every row is a ledger decision)",
    description="Accepts `dataframe_split`, `dataframe_records`, `instances` or `inputs`"
    " (JSON) or a CSV body (`text/csv`), with MLflow's optional `params`; ours are"
    " `params.subject_ids` (one per row) and `params.purpose`. Scores with the server's"
    " model and alias (`governance serve --model NAME --alias ALIAS`). All rows are"
    " recorded in one ledger transaction; one bad row refuses them all.",
    responses=responses_for(
        200, s.InvocationsResponse, "Predictions, explanations and decision ids", *WRITE_ERRORS
    ),
    openapi_extra={
        "security": INVOCATIONS_SECURITY,
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
        },
    },
)
async def invocations(call: Invocation = Depends(invocation)) -> Response:
    return await call.dispatcher.run(call, _invocations, body_bytes=len(call.body))


def _invocations(calls: list[Invocation]) -> list[Response | Exception]:
    """Answer each call: alone as :meth:`DecisionService.decide_many` decides it, or, when
    several waited together, all their rows in one ledger transaction
    (:meth:`DecisionService.decide_together`), each call still refused or answered alone.
    """
    out: list[Response | Exception | None] = [None] * len(calls)
    requests: list[tuple[int, DecisionRequest]] = []
    for k, call in enumerate(calls):
        try:
            rows, subject_ids, purpose = _rows(call)
        except Exception as exc:  # an ApiError (4xx), or a 500 for this call alone
            out[k] = exc
        else:
            requests.append((k, DecisionRequest(rows, subject_ids, call.principal.name, purpose)))
    service, served = calls[0].service, calls[0].served
    model = served.model
    if not requests or model is None:  # (no model: _rows refused every call)
        return _answered(out)
    started = time.perf_counter()
    try:
        if len(requests) == 1:
            r = requests[0][1]
            decided: list[list[Decision] | DecisionError] = [
                service.decide_many(
                    model,
                    r.rows,
                    subject_ids=r.subject_ids,
                    alias=served.alias,
                    caller=r.caller,
                    purpose=r.purpose,
                )
            ]
        else:
            decided = service.decide_together(model, [r for _, r in requests], alias=served.alias)
    except DecisionError as exc:
        decided = [exc] * len(requests)
    for (k, _), result in zip(requests, decided, strict=True):
        if isinstance(result, DecisionError):
            out[k] = decision_error(result, service, rows=True)
        else:
            observe(calls[k].metrics, "invocations", started, result)
            out[k] = _answer(result)
    return _answered(out)


def _answered(out: list[Response | Exception | None]) -> list[Response | Exception]:
    return [r if r is not None else RuntimeError("a request was left unanswered") for r in out]


def _rows(call: Invocation) -> tuple[list[dict[str, Any]], list[str | None] | None, str | None]:
    """A call's rows, subject ids and purpose (400, 404, 413, 415, 422 as :class:`ApiError`)."""
    if call.served.model is None:
        raise ApiError(
            404, "no model is being served: start the server with --model NAME [--alias]"
        )
    if call.media == CSV_MEDIA:
        try:
            loaded, _ = call.service.model(call.served.model, alias=call.served.alias)
        except DecisionError as exc:
            raise decision_error(exc, call.service) from None
        return csv_rows(call.body, loaded.scorecard.numeric), None, None
    return invocation_rows(call.body)


def _answer(decisions: list[Decision]) -> Response:
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
