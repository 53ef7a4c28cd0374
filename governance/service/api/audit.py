"""Reading decisions and adding events to them: a decision, its trace, its inclusion proof, its
recorded recourse, its adverse-action notice, a subject's access report, outcomes and reviews."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from governance.decisions.service import DecisionService
from governance.ledger import Ledger
from governance.ledger.canonical import utc_text
from governance.service import schemas as s
from governance.service.auth import Principal
from governance.service.bodies import (
    WRITE_ERRORS,
    ApiError,
    json_response,
    parse,
    request_doc,
    responses_for,
)
from governance.service.deps import (
    auditor,
    case_reader,
    get_ledger,
    get_service,
    json_body,
    not_found,
    reviewer,
    scorer,
)
from governance.subjects import notices as subject_notices
from governance.subjects import report as subject_report
from governance.subjects.recourse import recourse_of

router = APIRouter()

decision_id_path = Path(description="A decision id (from the answer that created it).")


@router.get(
    "/v1/decisions/{decision_id}",
    tags=["audit"],
    summary="A decision, its later events and its effective outcome",
    responses=responses_for(200, s.ShowResponse, "The decision", 401, 403, 404, 409),
)
def show_decision(
    decision_id: str = decision_id_path,
    principal: Principal = Depends(case_reader),
    service: DecisionService = Depends(get_service),
) -> Response:
    try:
        return json_response(service.show(decision_id))
    except LookupError as exc:
        raise not_found(exc) from None


@router.get(
    "/v1/decisions/{decision_id}/trace",
    tags=["audit"],
    summary="A decision joined to its model version's full lineage",
    description="Model version and lineage id, training run, data md5s, validation,"
    " fairness report, model card and code commit, in one answer.",
    responses=responses_for(200, s.TraceResponse, "The trace", 401, 403, 404, 409, 422),
)
def trace_decision(
    decision_id: str = decision_id_path,
    principal: Principal = Depends(case_reader),
    service: DecisionService = Depends(get_service),
) -> Response:
    try:
        return json_response(service.trace(decision_id))
    except LookupError as exc:
        raise not_found(exc) from None


@router.get(
    "/v1/decisions/{decision_id}/proof",
    tags=["audit"],
    summary="RFC 9162 inclusion proof of a decision under a signed checkpoint",
    description="Uses the latest checkpoint covering the decision, signing a new one if none does.",
    responses=responses_for(200, s.ProofResponse, "The proof", 401, 403, 404, 409),
)
def prove_decision(
    decision_id: str = decision_id_path,
    principal: Principal = Depends(auditor),
    ledger: Ledger = Depends(get_ledger),
) -> Response:
    record = ledger.get(decision_id)
    if record is None or record.type != "decision":
        raise ApiError(404, f"no decision with id {decision_id}")
    return json_response(ledger.inclusion_proof(decision_id))


@router.get(
    "/v1/decisions/{decision_id}/recourse",
    tags=["audit"],
    summary="The exact recourse recorded with an adverse decision",
    description="Single-feature changes and the minimal-cost combined change that would have"
    " turned the denial into an approval, each re-scored by the scorer that decided, or"
    ' "no feasible recourse"; with the ledger position of the recourse event.',
    responses=responses_for(200, None, "The recorded recourse", 401, 403, 404),
)
def decision_recourse(
    decision_id: str = decision_id_path,
    principal: Principal = Depends(case_reader),
    ledger: Ledger = Depends(get_ledger),
) -> Response:
    try:
        return json_response(recourse_of(ledger, decision_id))
    except LookupError as exc:
        raise not_found(exc) from None


@router.get(
    "/v1/decisions/{decision_id}/notice",
    tags=["audit"],
    summary="Issue the adverse-action notice of a denial",
    description="Rendered from the ledger alone (the decision, its reviews, its recorded"
    " recourse; creditor details from params.yaml `notice`) and recorded as a `notice`"
    " event holding the document's SHA-256 (headers `X-Notice-SHA256`, `X-Notice-Event`);"
    " `governance notice verify FILE` proves it later.",
    responses=responses_for(200, None, "The notice document", 401, 403, 404, 422),
)
def decision_notice(
    decision_id: str = decision_id_path,
    fmt: str = Query("html", alias="format", pattern="^(html|md|pdf)$"),
    date: str | None = Query(
        None,
        description="Issue date YYYY-MM-DD (default: today, UTC): from the decision's day to"
        " today, a day either way for the creditor's time zone.",
    ),
    principal: Principal = Depends(case_reader),
    service: DecisionService = Depends(get_service),
) -> Response:
    ledger = service.ledger
    try:
        data, body = subject_notices.render_new(
            ledger, service.settings.project_dir, decision_id, fmt=fmt, issued=date
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


@router.get(
    "/v1/subjects/{subject_id}/report",
    tags=["audit"],
    summary="Subject access report (auditors only)",
    description="Every decision about a subject with inputs, outcome, logic, contributions,"
    " recourse, reviews, contests, overrides, outcomes, notices, legal holds and erasures;"
    " every record with its inclusion proof (GDPR art. 15, AI Act art. 86).",
    responses=responses_for(200, None, "The report (JSON or HTML)", 401, 403, 404),
)
def subject_access_report(
    subject_id: str = Path(description="The subject, as the caller knows them."),
    fmt: str = Query("json", alias="format", pattern="^(json|html)$"),
    principal: Principal = Depends(auditor),
    service: DecisionService = Depends(get_service),
) -> Response:
    ledger = service.ledger
    try:
        doc = subject_report.build(
            ledger, subject_id, cards=subject_report.registry_cards(service.settings)
        )
    except LookupError as exc:
        raise not_found(exc) from None
    if fmt == "html":
        return Response(subject_report.render_html(doc), media_type="text/html")
    return json_response(doc)


@router.post(
    "/v1/decisions/{decision_id}/outcome",
    tags=["audit"],
    summary="Record the observed outcome of a decision",
    description="The recorder is the authenticated caller (the person holding the API key);"
    " `source` is the client's own note of where the outcome came from. `observed_at` must"
    " lie between the decision's time and now. An outcome that contradicts an earlier one"
    " is recorded as its correction (`corrects`).",
    status_code=201,
    responses=responses_for(201, s.EventResponse, "The outcome event", *WRITE_ERRORS),
    openapi_extra=request_doc(s.OutcomeRequest),
)
def record_outcome(
    decision_id: str = decision_id_path,
    principal: Principal = Depends(scorer),
    raw: bytes = Depends(json_body),
    service: DecisionService = Depends(get_service),
) -> Response:
    req = parse(raw, s.OutcomeRequest)
    observed_at = None if req.observed_at is None else utc_text(req.observed_at)
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
            "ledger": receipt.ref(),
        },
        201,
    )


@router.post(
    "/v1/decisions/{decision_id}/reviews",
    tags=["audit"],
    summary="Record a human review, an override or a contest (GDPR art. 22(3))",
    description="`review` and `override` need role approver; `contest` role scorer or"
    " approver (the calling system files it for the applicant). The reviewer recorded is"
    " the person holding the API key (`recorded_by`: the key's name).",
    status_code=201,
    responses=responses_for(201, s.EventResponse, "The review event", *WRITE_ERRORS),
    openapi_extra=request_doc(s.ReviewRequest),
)
def add_review(
    decision_id: str = decision_id_path,
    principal: Principal = Depends(reviewer),
    raw: bytes = Depends(json_body),
    service: DecisionService = Depends(get_service),
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
            "ledger": receipt.ref(),
        },
        201,
    )
