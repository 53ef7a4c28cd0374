"""``/invocations``: MLflow's scoring protocol, every row a ledger decision, answered with
predictions, explanations and decision ids."""

from __future__ import annotations

import time
from functools import partial

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from governance.decisions.service import DecisionError
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
    return await call.dispatcher.run(partial(_invocations, call), body_bytes=len(call.body))


def _invocations(call: Invocation) -> Response:
    service, principal, metrics = call.service, call.principal, call.metrics
    default_model, default_alias = call.served.model, call.served.alias
    if default_model is None:
        raise ApiError(
            404, "no model is being served: start the server with --model NAME [--alias]"
        )
    media, raw = call.media, call.body
    if media == CSV_MEDIA:
        try:
            loaded, _ = service.model(default_model, alias=default_alias)
        except DecisionError as exc:
            raise decision_error(exc, service) from None
        rows, subject_ids, purpose = csv_rows(raw, loaded.scorecard.numeric), None, None
    else:
        rows, subject_ids, purpose = invocation_rows(raw)
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
        raise decision_error(exc, service, rows=True) from None
    observe(metrics, "invocations", started, decisions)
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
