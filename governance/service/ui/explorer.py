"""The explorer's state: one :class:`Explorer` per app, kept in ``app.state.explorer``.

It holds what every page shares (the decision service and its ledger, the key store, sessions,
the Jinja environment, link-out configuration, the Merkle-tree warmer, the verifier, the
witness monitor and two small caches) and the answers every page gives: a rendered template, an
error page, the sign-in redirect, the 403 for a role that may not use the explorer.
:meth:`Explorer.guard` runs a page for a signed-in user and turns its failures into pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from governance.decisions.service import DecisionService
from governance.ledger import IntegrityError
from governance.service.auth import KeyStore, Principal
from governance.service.ui.integrity import TreeWarmer, Verifier
from governance.service.ui.pages import Cache, UiConfig, experiment_of
from governance.service.ui.render import SECURITY_HEADERS, environment
from governance.service.ui.sessions import COOKIE, UI_ROLES, Sessions, load_secret
from governance.transparency.status import WitnessMonitor

log = logging.getLogger(__name__)

PREFIX = "/ui"


def base_of(request: Request) -> str:
    """The explorer's base path for a request (``/ui`` under the app's ``root_path``)."""
    return str(request.scope.get("root_path", "")).rstrip("/") + PREFIX


def redirect(url: str) -> Response:
    """A 303 to ``url`` with the explorer's security headers."""
    return RedirectResponse(url, 303, headers=SECURITY_HEADERS)


def same_origin(request: Request) -> bool:
    """Refuse cross-site form posts (SameSite=Strict is the first line; this the second)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # browsers send it; it cannot be set by a page's script
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:  # not a browser form post (curl, tests)
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


class Explorer:
    """Everything the explorer's pages share.

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

    def __init__(
        self,
        service: DecisionService,
        keys: KeyStore,
        *,
        config: UiConfig | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.service = service
        self.keys = keys
        self.config = config or UiConfig.from_env()
        self.sessions = Sessions(
            keys, secret or load_secret(service.settings.home), self.config.session_seconds
        )
        self.env = environment()
        self.ledger = service.ledger
        self.settings = service.settings
        self.verifier = Verifier(self.ledger)
        self.witnessing = WitnessMonitor.for_ledger(self.ledger)
        self.warmer = TreeWarmer(self.ledger)
        self.cards = Cache()
        self.experiments = Cache(1024)

    async def attach(self, request: Request) -> None:
        """Keep this explorer in ``app.state.explorer`` (a dependency of every explorer route)."""
        state = request.app.state
        if getattr(state, "explorer", None) is not self:
            state.explorer = self

    # -- answers ---------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        who: Principal | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page from its template, sent with the security headers."""
        text = self.env.get_template(template).render(
            base=base_of(request), who=who, config=self.config, path=request.url.path, **context
        )
        return HTMLResponse(text, status, headers=SECURITY_HEADERS)

    def error(
        self, request: Request, who: Principal | None, status: int, title: str, message: str
    ) -> HTMLResponse:
        """An error page."""
        return self.render(request, "error.html", who, status, title=title, message=message)

    def to_login(self, request: Request) -> Response:
        """The redirect to the sign-in page, which comes back here afterwards."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"{base_of(request)}/login?" + urlencode({"next": target}))

    def forbidden(self, request: Request, who: Principal) -> HTMLResponse:
        """The 403 page for a key whose role may not use the explorer."""
        return self.error(
            request,
            None,
            403,
            "Not allowed",
            f"The API key {who.name!r} has role {who.role}; the decision explorer is for"
            f" roles {', '.join(UI_ROLES)}.",
        )

    def guard(self, request: Request, build: Callable[[Principal], Response]) -> Response:
        """``build(who)`` for a signed-in explorer user; else the sign-in redirect or a 403.

        A ledger that does not verify gives a 409 page, any other failure a 500 page (logged).
        """
        who = self.sessions.check(request.cookies.get(COOKIE))
        if who is None:
            return self.to_login(request)
        if who.role not in UI_ROLES:
            return self.forbidden(request, who)
        self.warmer.start()
        try:
            return build(who)
        except IntegrityError as exc:
            log.error("explorer page %s: the ledger does not verify: %s", request.url.path, exc)
            return self.error(request, who, 409, "The ledger does not verify", str(exc))
        except Exception:
            log.exception("explorer page %s failed", request.url.path)
            return self.error(
                request, who, 500, "Something went wrong", "The page failed; see the server log."
            )

    def secure(self, request: Request) -> bool:
        """Whether the session cookie is marked ``Secure``."""
        if self.config.secure_cookie is not None:
            return self.config.secure_cookie
        return request.url.scheme == "https"

    def experiment_of(self, run_id: str) -> str | None:
        """The MLflow experiment of a run (for links), remembered; ``None`` if unknown."""
        found: str | None = self.experiments.get(
            run_id, partial(experiment_of, self.settings, run_id)
        )
        return found

    def model_href(self, request: Request, name: str, version: str) -> str:
        """The explorer's page of a model version."""
        return f"{base_of(request)}/models/{quote(name, safe='')}/versions/{quote(version)}"


async def explorer(request: Request) -> Explorer:
    """The app's explorer, ``app.state.explorer`` (a FastAPI dependency)."""
    found: Explorer = request.app.state.explorer
    return found
