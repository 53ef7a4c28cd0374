"""``/v1/models/...``: the model lifecycle over HTTP (promotion: gated, approved, recorded)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from governance.decisions.service import DecisionService
from governance.service import schemas as s
from governance.service.auth import Principal
from governance.service.bodies import ApiError, json_response, parse, request_doc, responses_for
from governance.service.deps import approver, get_service, json_body

router = APIRouter()


@router.post(
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
    responses=responses_for(201, None, "The promotion", 400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra=request_doc(s.PromotionRequest),
)
def promote_version(
    name: str,
    version: str,
    principal: Principal = Depends(approver),
    raw: bytes = Depends(json_body),
    service: DecisionService = Depends(get_service),
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
