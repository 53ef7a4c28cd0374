"""The explorer's routes under ``/ui``: module-level functions on one :data:`routes` router.

Each route gets the app's :class:`~governance.service.ui.explorer.Explorer` through
``Depends(explorer)`` (``app.state.explorer``). A page for signed-in users is a module-level
``*_page(x, request, ..., who)`` function that the route hands to :meth:`Explorer.guard`, which
checks the session first. :func:`router` builds the explorer for a decision service and returns
the router an app includes; it keeps the explorer in ``app.state.explorer`` on every request.
"""

from __future__ import annotations

import logging
from functools import partial
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from governance.decisions.service import DecisionError, DecisionService
from governance.ledger import LedgerError
from governance.service.auth import KeyStore, Principal
from governance.service.bodies import ApiError, read_body
from governance.service.ui import subjects
from governance.service.ui.charts import contribution_chart, score_gauge
from governance.service.ui.decision_search import BadRequest, SearchFilters, SearchResult, search
from governance.service.ui.explorer import (
    PREFIX,
    Explorer,
    base_of,
    explorer,
    redirect,
    same_origin,
)
from governance.service.ui.integrity import checkpoint_view, ledger_status, public_key_hex
from governance.service.ui.pages import (
    Step,
    UiConfig,
    event_rows,
    headline_fairness,
    lineage_steps,
    load_card,
    monitoring_report,
)
from governance.service.ui.render import SECURITY_HEADERS
from governance.service.ui.sessions import COOKIE, UI_ROLES, safe_next
from governance.subjects import notices as subject_notices

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 4096
PROOF_WAIT = 0.5  # seconds a decision page waits for the Merkle tree before showing it pending

routes = APIRouter(prefix=PREFIX, include_in_schema=False)


def router(
    service: DecisionService,
    keys: KeyStore,
    *,
    config: UiConfig | None = None,
    secret: bytes | None = None,
) -> APIRouter:
    """The explorer's routes under ``/ui``, reading ``service``'s ledger and registry.

    Parameters
    ----------
    service
        The decision service whose ledger, registry and model cache the pages read.
    keys
        The API key store: who may sign in, and in which role.
    config
        Link-out URLs and session lifetime; default from the environment
        (:meth:`UiConfig.from_env`).
    secret
        Session signing secret (at least 32 bytes); default ``<home>/keys/ui-session.key``.
    """
    x = Explorer(service, keys, config=config, secret=secret)
    r = APIRouter(include_in_schema=False, dependencies=[Depends(x.attach)])
    r.include_router(routes)
    return r


# -- signing in and out ----------------------------------------------------------------------


@routes.get("")
def root(request: Request) -> Response:
    """The explorer's root: its search page."""
    return redirect(f"{base_of(request)}/decisions")


@routes.get("/login")
def login_form(request: Request, x: Explorer = Depends(explorer)) -> Response:
    """The sign-in form (or straight on, for a valid session)."""
    base = base_of(request)
    target = safe_next(request.query_params.get("next", ""), base)
    who = x.sessions.check(request.cookies.get(COOKIE))
    if who is not None and who.role in UI_ROLES:
        return redirect(target)
    signed_out = request.query_params.get("signed_out") == "1"
    return x.render(request, "login.html", None, next=target, signed_out=signed_out)


@routes.post("/login")
async def login(request: Request, x: Explorer = Depends(explorer)) -> Response:
    """Check the API key once; answer with a signed session cookie."""
    base = base_of(request)
    if not same_origin(request):
        return x.error(request, None, 403, "Refused", "Cross-site sign-in is not accepted.")
    try:  # a chunked body has no Content-Length: read no more than the limit
        raw = await read_body(request, MAX_FORM_BYTES)
    except ApiError as exc:
        return x.error(request, None, exc.status, "Refused", f"The sign-in form: {exc.message}.")
    try:
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=8)
    except ValueError:  # more than 8 fields
        return x.error(request, None, 400, "Refused", "The sign-in form has too many fields.")
    key = (form.get("key") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0], base)
    found = x.keys.authenticate(key) if key else None
    if found is None:
        return x.render(
            request,
            "login.html",
            None,
            401,
            next=target,
            problem="That API key is not valid." if key else "Paste your API key.",
        )
    if found.role not in UI_ROLES:
        return x.forbidden(request, found)
    response = redirect(target)
    response.set_cookie(
        COOKIE,
        x.sessions.issue(found, key),
        max_age=x.config.session_seconds,
        path=base,
        httponly=True,
        samesite="strict",
        secure=x.secure(request),
    )
    log.info("explorer: %s (%s) signed in", found.name, found.role)
    x.warmer.start()
    return response


@routes.post("/logout")
def logout(request: Request, x: Explorer = Depends(explorer)) -> Response:
    """End the session (its cookie)."""
    base = base_of(request)
    response = redirect(f"{base}/login?signed_out=1")
    response.delete_cookie(
        COOKIE, path=base, httponly=True, samesite="strict", secure=x.secure(request)
    )
    return response


# -- search ----------------------------------------------------------------------------------


@routes.get("/decisions")
def decisions(request: Request, x: Explorer = Depends(explorer)) -> Response:
    """The search page."""
    return x.guard(request, partial(decisions_page, x, request))


def decisions_page(x: Explorer, request: Request, who: Principal) -> Response:
    """Search decisions; a known decision id goes straight to its page."""
    params = dict(request.query_params)
    try:
        f = SearchFilters.parse(params)
    except BadRequest as exc:
        return x.render(
            request,
            "search.html",
            who,
            422,
            f=SearchFilters(),
            result=SearchResult(),
            problem=str(exc),
            raw=params,
        )
    if f.decision_id:
        try:
            record = x.ledger.get(f.decision_id)
        except LedgerError:
            record = None
        if record is not None and record.type == "decision":
            return redirect(f"{base_of(request)}/decisions/{quote(record.id)}")
    try:
        result = search(x.ledger, f)
    except BadRequest as exc:
        return x.render(
            request,
            "search.html",
            who,
            422,
            f=f,
            result=SearchResult(),
            problem=str(exc),
            raw=params,
        )
    return x.render(request, "search.html", who, f=f, result=result, raw=params)


# -- one decision ----------------------------------------------------------------------------


@routes.get("/decisions/{decision_id}")
def decision(request: Request, decision_id: str, x: Explorer = Depends(explorer)) -> Response:
    """One decision's page."""
    return x.guard(request, partial(decision_page, x, request, decision_id))


def decision_page(x: Explorer, request: Request, decision_id: str, who: Principal) -> Response:
    """Inputs, outcome, score, reasons and chart, later events, lineage, ledger status."""
    try:
        shown = x.service.show(decision_id)
    except LookupError as exc:
        return x.error(request, who, 404, "No such decision", str(exc))
    body = shown["body"]
    m = body["model"]
    href = x.model_href(request, str(m["name"]), str(m["version"]))
    steps: list[Step] = []
    lineage_problem = None
    try:
        trace = x.service.trace(decision_id)
    except (DecisionError, LookupError, KeyError) as exc:
        lineage_problem = f"the lineage of this decision's model cannot be loaded: {exc}"
    else:
        exp = x.experiment_of(str(trace["training_run"]["mlflow_run_id"]))
        steps = lineage_steps(trace, x.config, href, exp)
    explanation = body.get("explanation") or {}
    chart = contribution_chart(
        explanation.get("contributions") or {},
        body.get("inputs") or {},
        float(explanation.get("base_value", 0.0)),
        float(explanation.get("logit", 0.0)),
    )
    events = event_rows(shown)
    overrides = [e for e in events if e["kind"] == "override"]
    return x.render(
        request,
        "decision.html",
        who,
        d=shown,
        body=body,
        model=m,
        model_href=href,
        chart=chart,
        gauge=score_gauge(float(body["score"]), float(body["threshold"])),
        events=events,
        last_override=overrides[-1] if overrides else None,
        steps=steps,
        lineage_problem=lineage_problem,
        ledger_state=ledger_status(x.ledger, decision_id, x.warmer.ready(PROOF_WAIT)),
        pii=body.get("pii"),
        recourse=subjects.recourse_view(body, shown.get("events", [])),
        notices=subjects.notice_views(shown.get("events", [])),
    )


# -- adverse-action notices ------------------------------------------------------------------


@routes.get("/decisions/{decision_id}/notice")
def notice_preview(request: Request, decision_id: str, x: Explorer = Depends(explorer)) -> Response:
    """The notice a decision would get today (nothing recorded)."""
    return x.guard(request, partial(notice_preview_page, x, request, decision_id))


def notice_preview_page(
    x: Explorer, request: Request, decision_id: str, who: Principal
) -> Response:
    """Render the notice of a decision as it would be issued today."""
    try:
        preview = subjects.notice_preview(x.ledger, x.settings.project_dir, decision_id)
    except LookupError as exc:
        return x.error(request, who, 404, "No such decision", str(exc))
    except ValueError as exc:
        return x.error(request, who, 422, "No notice for this decision", str(exc))
    return x.render(
        request, "notice.html", who, decision_id=decision_id, preview=preview, issued=None
    )


@routes.post("/decisions/{decision_id}/notice")
def notice_issue(request: Request, decision_id: str, x: Explorer = Depends(explorer)) -> Response:
    """Issue a decision's notice (recorded in the ledger)."""
    return x.guard(request, partial(notice_issue_page, x, request, decision_id))


def notice_issue_page(x: Explorer, request: Request, decision_id: str, who: Principal) -> Response:
    """Render the notice as of today, append it to the ledger, go to the issued notice."""
    if not same_origin(request):
        return x.error(request, who, 403, "Refused", "Cross-site requests are refused.")
    try:
        _, body = subject_notices.render_new(
            x.ledger, x.settings.project_dir, decision_id, fmt="html"
        )
    except LookupError as exc:
        return x.error(request, who, 404, "No such decision", str(exc))
    except ValueError as exc:
        return x.error(request, who, 422, "No notice for this decision", str(exc))
    receipt = x.ledger.append("notice", body)
    return redirect(f"{base_of(request)}/notices/{quote(receipt.id)}")


@routes.get("/notices/{event_id}")
def notice_issued(request: Request, event_id: str, x: Explorer = Depends(explorer)) -> Response:
    """An issued notice's page."""
    return x.guard(request, partial(notice_issued_page, x, request, event_id))


def notice_issued_page(x: Explorer, request: Request, event_id: str, who: Principal) -> Response:
    """An issued notice, rendered again from the ledger, and whether it matches its record."""
    try:
        issued = subjects.issued_notice(x.ledger, x.settings.project_dir, event_id)
    except LookupError as exc:
        return x.error(request, who, 404, "No such notice", str(exc))
    return x.render(
        request,
        "notice.html",
        who,
        decision_id=issued["body"]["decision_id"],
        preview=issued["html"],
        issued=issued,
    )


@routes.get("/notices/{event_id}/file")
def notice_file(request: Request, event_id: str, x: Explorer = Depends(explorer)) -> Response:
    """An issued notice as a file to download."""
    return x.guard(request, partial(notice_file_page, x, request, event_id))


def notice_file_page(x: Explorer, request: Request, event_id: str, who: Principal) -> Response:
    """The issued notice's bytes, as an attachment in its format."""
    try:
        issued = subjects.issued_notice(x.ledger, x.settings.project_dir, event_id)
    except LookupError as exc:
        return x.error(request, who, 404, "No such notice", str(exc))
    body = issued["body"]
    name = f"notice-{body['decision_id']}.{body['format']}"
    return Response(
        issued["data"],
        media_type=subject_notices.MEDIA_TYPES[body["format"]],
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


# -- one model version -----------------------------------------------------------------------


@routes.get("/models/{name}/versions/{version}")
def model_page(
    request: Request, name: str, version: str, x: Explorer = Depends(explorer)
) -> Response:
    """A model version's page."""
    return x.guard(request, partial(model_version_page, x, request, name, version))


def model_version_page(
    x: Explorer, request: Request, name: str, version: str, who: Principal
) -> Response:
    """Lineage, model card, alias history and monitoring figures of a model version."""
    from governance.lifecycle.promotion import events as promotion_events
    from governance.registry import mlflow as registry

    try:
        lineage = registry.resolve(x.settings, name, version)
    except LookupError as exc:
        return x.error(request, who, 404, "No such model version", str(exc))
    card, html, card_problem = x.cards.get(
        (name, version), partial(load_card, x.settings, name, version)
    )
    if card is None:  # do not keep a failure: the card may be logged later
        with x.cards.lock:
            x.cards.items.pop((name, version), None)
    history = promotion_events(x.ledger, name, alias=None)
    registration = (card or {}).get("registration") or {}
    exp = registration.get("experiment_id") or x.experiment_of(str(lineage["mlflow_run_id"]))
    return x.render(
        request,
        "model.html",
        who,
        name=name,
        version=version,
        lineage=lineage,
        fairness_lines=headline_fairness((lineage.get("fairness") or {}).get("metrics") or {}),
        card_html=html,
        card_problem=card_problem,
        history=history,
        monitoring=monitoring_report(x.settings.project_dir, name, version),
        mlflow_version=x.config.mlflow_version(name, version),
        mlflow_run=x.config.mlflow_run(exp, str(lineage["mlflow_run_id"])),
        dagster_asset=x.config.dagster_asset(),
        href=x.model_href(request, name, version),
    )


@routes.get("/models/{name}/versions/{version}/monitoring")
def monitoring_page(
    request: Request, name: str, version: str, x: Explorer = Depends(explorer)
) -> Response:
    """A model version's full production monitoring report."""
    return x.guard(request, partial(monitoring_report_page, x, request, name, version))


def monitoring_report_page(
    x: Explorer, request: Request, name: str, version: str, who: Principal
) -> Response:
    """The monitoring report's own HTML, or a 404 page if none was written yet."""
    from governance.lifecycle.monitoring import report_dir

    path = report_dir(x.settings.project_dir, name, version) / "report.html"
    try:
        text = path.read_text()
    except OSError:
        return x.error(
            request,
            who,
            404,
            "No monitoring report",
            f"No production monitoring report for {name} version {version} yet.",
        )
    return HTMLResponse(text, headers=SECURITY_HEADERS)


# -- integrity -------------------------------------------------------------------------------


@routes.get("/integrity")
def integrity(request: Request, x: Explorer = Depends(explorer)) -> Response:
    """The integrity page."""
    return x.guard(request, partial(integrity_page, x, request))


def integrity_page(x: Explorer, request: Request, who: Principal) -> Response:
    """The last verification, the latest signed checkpoint and its witnesses."""
    result = x.verifier.last or x.verifier.run(who.name)
    ledger = x.ledger
    checkpoints = ledger.checkpoints()
    latest = checkpoint_view(checkpoints[-1], ledger) if checkpoints else None
    head = ledger.head()
    try:
        newest = max(checkpoints, key=lambda cp: cp.size, default=None)
        witnesses = x.witnessing.status(newest)
        witness_error = None
    except (OSError, ValueError) as exc:
        witnesses, witness_error = None, str(exc)
    return x.render(
        request,
        "integrity.html",
        who,
        result=result,
        latest=latest,
        checkpoints=len(checkpoints),
        head=head,
        ledger_id=ledger.ledger_id,
        public_key=public_key_hex(ledger),
        export_dir=str(ledger.checkpoint_dir.path),
        store=str(ledger.store.location),
        witnesses=witnesses,
        witnessed_age=None if witnesses is None else witnesses.age_seconds(),
        witness_error=witness_error,
    )


@routes.post("/integrity/verify")
def verify_now(request: Request, x: Explorer = Depends(explorer)) -> Response:
    """Verify the whole ledger now."""
    return x.guard(request, partial(verify_page, x, request))


def verify_page(x: Explorer, request: Request, who: Principal) -> Response:
    """Run ``verify()`` (same-origin posts only) and go back to the integrity page."""
    if not same_origin(request):
        return x.error(request, who, 403, "Refused", "Cross-site requests are refused.")
    x.verifier.run(who.name)
    return redirect(f"{base_of(request)}/integrity")


@routes.get("/{rest:path}")
def not_found(request: Request, rest: str, x: Explorer = Depends(explorer)) -> Response:
    """Any other path: the search page for ``/ui/``, else a 404 page."""
    if not rest:
        return redirect(f"{base_of(request)}/decisions")
    who = x.sessions.check(request.cookies.get(COOKIE))
    return x.error(request, who, 404, "Not found", f"There is no page at {request.url.path}.")
