"""The decision explorer: server-rendered pages for auditors under ``/ui``.

An auditor (or approver, or admin) signs in with an API key and can then, in a browser:

=======  =============================================  ====================================
method   path                                           page
=======  =============================================  ====================================
GET      /ui/login, POST /ui/login, POST /ui/logout     sign in with an API key; sign out
GET      /ui/decisions                                  search: decision id, subject, model
                                                        and version, effective outcome, time
                                                        range; paged
GET      /ui/decisions/{id}                             one decision: inputs, outcome and
                                                        score against threshold, principal
                                                        reasons, contribution chart, reviews
                                                        and outcomes, lineage chain, ledger
                                                        status (inclusion proof, checked here)
GET      /ui/models/{name}/versions/{version}           model card, alias history,
                                                        production monitoring figures
GET      /ui/models/{name}/versions/{version}/monitoring  the full monitoring report
GET      /ui/integrity, POST /ui/integrity/verify       latest signed checkpoint, witnesses
                                                        (newest witnessed checkpoint, its
                                                        age, who answered), verify()
=======  =============================================  ====================================

Modules: :mod:`~governance.service.ui.routes` (the routes and :func:`router`),
:mod:`~governance.service.ui.explorer` (the :class:`Explorer` state the routes share, kept in
``app.state.explorer``), :mod:`~governance.service.ui.sessions`,
:mod:`~governance.service.ui.decision_search`, :mod:`~governance.service.ui.charts`,
:mod:`~governance.service.ui.pages` (what the decision and model pages show),
:mod:`~governance.service.ui.integrity` (ledger status, checkpoints, verify),
:mod:`~governance.service.ui.subjects` (recourse and notices) and
:mod:`~governance.service.ui.render` (templates, filters, security headers).

Sessions
--------
The key is checked once, at sign-in; the browser then holds a signed session token in an
``HttpOnly``, ``SameSite=Strict`` cookie scoped to ``/ui`` (``Secure`` when served over HTTPS),
never the key. The token names the key (its name, role and a fingerprint of its hash) and
expires after :data:`~governance.service.ui.sessions.SESSION_SECONDS`; every request re-checks
it against the key store, so revoking a key ends its sessions at once. The signing secret lives
in ``<home>/keys/ui-session.key`` (0600), so sessions survive a restart and work across
workers. Only roles auditor, approver and admin may use the explorer: a scorer key gets a 403
page.

Every page is rendered on the server (Jinja, autoescaped) with inline CSS and no script, no
external asset and no network access; the contribution chart and the score gauge are inline
SVG drawn here. Pages are sent with a strict Content-Security-Policy and ``no-store``.

Links out go to the MLflow UI (``GOVERNANCE_MLFLOW_UI_URL``, default ``http://127.0.0.1:5000``)
and the Dagster UI (``GOVERNANCE_DAGSTER_UI_URL``, default ``http://127.0.0.1:3000``).
"""

from governance.service.ui.charts import Chart, contribution_chart, score_gauge
from governance.service.ui.decision_search import BadRequest, SearchFilters, search
from governance.service.ui.explorer import Explorer
from governance.service.ui.integrity import TreeWarmer, ledger_status
from governance.service.ui.pages import UiConfig
from governance.service.ui.routes import router
from governance.service.ui.sessions import COOKIE, UI_ROLES, Sessions

__all__ = [
    "COOKIE",
    "UI_ROLES",
    "BadRequest",
    "Chart",
    "Explorer",
    "SearchFilters",
    "Sessions",
    "TreeWarmer",
    "UiConfig",
    "contribution_chart",
    "ledger_status",
    "router",
    "score_gauge",
    "search",
]
