"""Operations, without an API key: liveness (``/healthz``) and Prometheus metrics (``/metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from governance.ledger import Ledger
from governance.service import schemas as s
from governance.service.bodies import json_response, responses_for
from governance.service.deps import (
    Served,
    get_dispatcher,
    get_ledger,
    get_metrics,
    get_served,
    get_witnessing,
)
from governance.service.dispatch import Dispatcher
from governance.service.metrics import CONTENT_TYPE, Metrics
from governance.transparency.status import WitnessMonitor

router = APIRouter()


@router.get(
    "/healthz",
    tags=["operations"],
    summary="Liveness: the ledger answers",
    responses=responses_for(200, s.HealthResponse, "Healthy", 503),
)
def healthz(ledger: Ledger = Depends(get_ledger), served: Served = Depends(get_served)) -> Response:
    try:
        size = ledger.size()
    except Exception as exc:
        return json_response({"error": f"the ledger does not answer: {exc}"}, 503)
    return json_response(
        {
            "status": "ok",
            "ledger_records": size,
            "model": served.model,
            "alias": served.alias,
        }
    )


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics (text exposition format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
def prometheus(
    ledger: Ledger = Depends(get_ledger),
    metrics: Metrics = Depends(get_metrics),
    witnessing: WitnessMonitor = Depends(get_witnessing),
    dispatcher: Dispatcher = Depends(get_dispatcher),
) -> Response:
    text = metrics.render(ledger, witnesses=witnessing, dispatched=dispatcher.counts())
    return Response(text, media_type=CONTENT_TYPE)
