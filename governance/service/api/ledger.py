"""``/v1/ledger/...``: verify the whole ledger, sign checkpoints."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from governance.ledger import Ledger
from governance.service import schemas as s
from governance.service.auth import Principal
from governance.service.bodies import json_response, responses_for
from governance.service.deps import admin, auditor, get_ledger

router = APIRouter()


@router.get(
    "/v1/ledger/verify",
    tags=["ledger"],
    summary="Verify the whole ledger: hash chain, record hashes, signed checkpoints",
    description="Always 200; `ok` says whether it verified, else `first_bad` and `reason`"
    " say where and what.",
    responses=responses_for(200, s.VerifyResponse, "The verification result", 401, 403),
)
def verify_ledger(
    principal: Principal = Depends(auditor), ledger: Ledger = Depends(get_ledger)
) -> Response:
    return json_response(ledger.verify().to_dict())


@router.post(
    "/v1/ledger/checkpoints",
    tags=["ledger"],
    summary="Sign a checkpoint of the ledger (RFC 9162 tree head)",
    status_code=201,
    responses=responses_for(201, s.CheckpointResponse, "The checkpoint", 401, 403, 409),
)
def make_checkpoint(
    principal: Principal = Depends(admin), ledger: Ledger = Depends(get_ledger)
) -> Response:
    return json_response(ledger.checkpoint().to_json(), 201)
