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

Sessions
--------
The key is checked once, at sign-in; the browser then holds a signed session token in an
``HttpOnly``, ``SameSite=Strict`` cookie scoped to ``/ui`` (``Secure`` when served over HTTPS),
never the key. The token names the key (its name, role and a fingerprint of its hash) and
expires after :data:`SESSION_SECONDS`; every request re-checks it against the key store, so
revoking a key ends its sessions at once. The signing secret lives in
``<home>/keys/ui-session.key`` (0600), so sessions survive a restart and work across workers.
Only roles auditor, approver and admin may use the explorer: a scorer key gets a 403 page.

Every page is rendered on the server (Jinja, autoescaped) with inline CSS and no script, no
external asset and no network access; the contribution chart and the score gauge are inline
SVG drawn here. Pages are sent with a strict Content-Security-Policy and ``no-store``.

Links out go to the MLflow UI (``GOVERNANCE_MLFLOW_UI_URL``, default ``http://127.0.0.1:5000``)
and the Dagster UI (``GOVERNANCE_DAGSTER_UI_URL``, default ``http://127.0.0.1:3000``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from governance.decisions.reviews import effective_outcome, review_status
from governance.decisions.service import DecisionError, DecisionService
from governance.ledger import Checkpoint, IntegrityError, LedgerError, Record, verify_checkpoint
from governance.service import ui_subjects
from governance.service.auth import KeyStore, Principal
from governance.subjects import notices as subject_notices
from governance.transparency.status import WitnessMonitor

log = logging.getLogger(__name__)

PREFIX = "/ui"
UI_ROLES: tuple[str, ...] = ("auditor", "approver", "admin")
COOKIE = "governance_ui"
SESSION_SECONDS = 8 * 3600
SECRET_FILE = "ui-session.key"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STATUSES = ("decided", "contested", "reviewed", "overridden")  # review status (reviews.py)
SCAN_BUDGET = 5_000  # decisions examined per page when filtering on the effective outcome
MAX_TRAIL = 50  # earlier page offsets carried in the URL for "previous" (outcome filter)
MAX_FORM_BYTES = 4096
MLFLOW_UI_ENV = "GOVERNANCE_MLFLOW_UI_URL"
DAGSTER_UI_ENV = "GOVERNANCE_DAGSTER_UI_URL"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
DEFAULT_DAGSTER_UI = "http://127.0.0.1:3000"
DAGSTER_ASSET = "register"
CARD_CACHE = 32
PROOF_WAIT = 0.5  # seconds a decision page waits for the Merkle tree before showing it pending

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

TEMPLATES = Path(__file__).resolve().parent / "templates"


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class UiConfig:
    """Where the explorer links out to, and how long a session lasts.

    Attributes
    ----------
    mlflow_url
        Base URL of the MLflow UI (runs and model versions are linked under it).
    dagster_url
        Base URL of the Dagster UI (the ``register`` asset is linked under it).
    session_seconds
        Lifetime of a signed-in session.
    secure_cookie
        Mark the session cookie ``Secure``; ``None`` means: when the request came over HTTPS.
    """

    mlflow_url: str = DEFAULT_MLFLOW_UI
    dagster_url: str = DEFAULT_DAGSTER_UI
    session_seconds: int = SESSION_SECONDS
    secure_cookie: bool | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UiConfig:
        """Read ``GOVERNANCE_MLFLOW_UI_URL`` and ``GOVERNANCE_DAGSTER_UI_URL``."""
        env = os.environ if env is None else env
        return cls(
            mlflow_url=(env.get(MLFLOW_UI_ENV) or DEFAULT_MLFLOW_UI).rstrip("/"),
            dagster_url=(env.get(DAGSTER_UI_ENV) or DEFAULT_DAGSTER_UI).rstrip("/"),
        )

    def mlflow_run(self, experiment_id: str | None, run_id: str) -> str:
        """The MLflow UI page of a run."""
        if experiment_id is None:
            return f"{self.mlflow_url}/#/runs/{quote(run_id, safe='')}"
        return f"{self.mlflow_url}/#/experiments/{quote(experiment_id, safe='')}/runs/" + quote(
            run_id, safe=""
        )

    def mlflow_version(self, name: str, version: str) -> str:
        """The MLflow UI page of a registered model version."""
        return f"{self.mlflow_url}/#/models/{quote(name, safe='')}/versions/{quote(version)}"

    def dagster_asset(self, asset: str = DAGSTER_ASSET) -> str:
        """The Dagster UI page of an asset."""
        return f"{self.dagster_url}/assets/{quote(asset)}"


# -- sessions -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(token: str) -> str:
    """Part of the SHA-256 the key store holds for a key (never the key itself)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def load_secret(home: Path) -> bytes:
    """The session signing secret, ``<home>/keys/ui-session.key``, created (0600) if missing."""
    path = home / "keys" / SECRET_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            data = path.read_bytes()
            if len(data) >= 32:
                return data
            time.sleep(0.01)
        raise RuntimeError(f"{path} holds fewer than 32 bytes; remove it") from None
    try:
        secret = secrets.token_bytes(32)
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


class Sessions:
    """Signed, expiring session tokens tied to an API key that must still exist.

    A token is ``base64url(name \\n role \\n key fingerprint \\n expiry) . base64url(HMAC)``.
    """

    def __init__(self, keys: KeyStore, secret: bytes, lifetime: int = SESSION_SECONDS) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self.keys = keys
        self._secret = secret
        self.lifetime = lifetime

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, principal: Principal, token: str, now: float | None = None) -> str:
        """A session token for a key that has just authenticated as ``principal``."""
        expires = int((time.time() if now is None else now) + self.lifetime)
        payload = "\n".join(
            (principal.name, principal.role, key_fingerprint(token), str(expires))
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def check(self, value: str | None, now: float | None = None) -> Principal | None:
        """The principal of a valid, unexpired token whose key still exists; else ``None``."""
        if not value or len(value) > 1024 or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        try:
            payload, tag = _unb64(body), _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(tag, self._mac(payload)):
            return None
        try:
            name, role, fingerprint, expires = payload.decode().split("\n")
            expiry = int(expires)
        except ValueError:
            return None
        if expiry <= (time.time() if now is None else now):
            return None
        for key in self.keys.entries():
            if key.name == name:
                if key.role == role and hmac.compare_digest(key.sha256[:32], fingerprint):
                    return Principal(name, role)
                return None
        return None


# -- formatting ---------------------------------------------------------------------------


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def _when(ts: str | None) -> str:
    """A ledger timestamp as ``2026-01-02 10:11:12 UTC``."""
    if not ts:
        return "—"
    return ts.replace("T", " ")[:19] + " UTC"


def _ago(seconds: float | None) -> str:
    """An age in seconds as ``42 s``, ``5 min``, ``3.2 h`` or ``2.0 days``."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _short(text: Any, n: int = 12) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[:n] + "…"


def _value(v: Any) -> str:
    if v is None:
        return "null (missing)"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def environment() -> Environment:
    """The Jinja environment of the explorer's templates (autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["signed"] = _signed
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    env.filters["short"] = _short
    env.filters["value"] = _value
    return env


# -- charts (inline SVG, drawn here) ------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One feature's bar in the contribution chart (SVG user units)."""

    feature: str
    value: float
    shown: str
    y: float
    x: float
    width: float
    positive: bool
    text_x: float
    anchor: str


@dataclass(frozen=True)
class Chart:
    """The per-feature contribution chart: bars left (lower score) or right (higher)."""

    width: int
    height: int
    axis_x: float
    label_x: float
    top: float
    row: float
    bar_height: float
    bars: list[Bar]
    base_value: float
    logit: float


CHART_WIDTH = 720
CHART_LABEL_X = 196
CHART_AXIS_X = 460
CHART_HALF = 196
CHART_ROW = 24
CHART_BAR = 16
CHART_TOP = 30


def contribution_chart(
    contributions: Mapping[str, float],
    inputs: Mapping[str, Any],
    base_value: float,
    logit: float,
) -> Chart:
    """Lay out a horizontal bar chart of per-feature contributions (log-odds).

    Bars are sorted by contribution, largest push towards a higher score first; the axis is
    at zero and the scale is the largest absolute contribution.
    """
    items = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))
    scale = max((abs(v) for _, v in items), default=0.0) or 1.0
    bars = []
    for i, (feature, value) in enumerate(items):
        width = abs(value) / scale * CHART_HALF
        positive = value >= 0
        x = CHART_AXIS_X if positive else CHART_AXIS_X - width
        bars.append(
            Bar(
                feature=feature,
                value=float(value),
                shown=_value(inputs.get(feature)),
                y=CHART_TOP + i * CHART_ROW,
                x=x,
                width=max(width, 0.5),
                positive=positive,
                text_x=x + width + 4 if positive else x - 4,
                anchor="start" if positive else "end",
            )
        )
    return Chart(
        width=CHART_WIDTH,
        height=int(CHART_TOP + len(bars) * CHART_ROW + 8),
        axis_x=CHART_AXIS_X,
        label_x=CHART_LABEL_X,
        top=CHART_TOP,
        row=CHART_ROW,
        bar_height=CHART_BAR,
        bars=bars,
        base_value=base_value,
        logit=logit,
    )


@dataclass(frozen=True)
class Gauge:
    """The score against the threshold on a 0-1 scale."""

    width: int
    left: float
    right: float
    score: float
    threshold: float
    score_x: float
    threshold_x: float
    above: bool


def score_gauge(score: float, threshold: float, width: int = CHART_WIDTH) -> Gauge:
    """Place the score and the threshold on a 0-1 track."""
    left, right = 20.0, float(width - 20)

    def at(v: float) -> float:
        return left + min(max(v, 0.0), 1.0) * (right - left)

    return Gauge(width, left, right, score, threshold, at(score), at(threshold), score >= threshold)


# -- search -------------------------------------------------------------------------------


class BadRequest(ValueError):
    """A search parameter that cannot be used (the message says which and why)."""


def _parse_time(text: str, name: str) -> str | None:
    """An ISO 8601 time; one without a zone (an HTML ``datetime-local``) is taken as UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise BadRequest(f"{name}: {text!r} is not a date and time (ISO 8601)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _parse_int(text: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {text!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo:,} and {hi:,}, got {value:,}")
    return value


@dataclass(frozen=True)
class SearchFilters:
    """The search form: every field optional; paging by ``limit`` / ``offset``, or by ``after``.

    ``after`` (a seq) pages by key: the decisions after that one, as fast a million decisions
    into the ledger as at its start; a page reached that way links to the next by ``after``.
    """

    decision_id: str = ""
    subject_id: str = ""
    model: str = ""
    version: str = ""
    outcome: str = ""
    status: str = ""
    since: str = ""
    until: str = ""
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    trail: tuple[int, ...] = ()
    after: int | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> SearchFilters:
        """Read the query string (raises :class:`BadRequest`)."""

        def text(name: str) -> str:
            return (params.get(name) or "").strip()[:200]

        trail: list[int] = []
        for part in text("trail").split(","):
            if part.strip():
                trail.append(_parse_int(part, "trail", 0, 0, 2**62))
        f = cls(
            decision_id=text("decision_id"),
            subject_id=text("subject_id"),
            model=text("model"),
            version=text("version"),
            outcome=text("outcome"),
            status=text("status"),
            since=text("since"),
            until=text("until"),
            limit=_parse_int(params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=_parse_int(params.get("offset"), "offset", 0, 0, 2**62),
            trail=tuple(trail[-MAX_TRAIL:]),
            after=(
                _parse_int(params.get("after"), "after", 0, 0, 2**62) if text("after") else None
            ),
        )
        if f.version and not f.model:
            raise BadRequest("a model version needs the model name")
        if f.status and f.status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}, got {f.status!r}")
        if f.after is not None and (f.offset or f.outcome or f.status):
            raise BadRequest("after pages by key: use it without offset, outcome and status")
        return f

    @property
    def scans(self) -> bool:
        """Whether the search filters on what later events decide (effective outcome, status)."""
        return bool(self.outcome or self.status)

    @property
    def empty(self) -> bool:
        """Whether no filter is set (the search shows the newest decisions)."""
        return not any(
            (
                self.decision_id,
                self.subject_id,
                self.model,
                self.version,
                self.outcome,
                self.status,
                self.since,
                self.until,
            )
        )

    def query(self, **changes: Any) -> str:
        """The query string of these filters with ``changes`` (empty fields left out)."""
        values: dict[str, Any] = {
            "decision_id": self.decision_id,
            "subject_id": self.subject_id,
            "model": self.model,
            "version": self.version,
            "outcome": self.outcome,
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "limit": self.limit if self.limit != DEFAULT_LIMIT else "",
            "offset": self.offset or "",
            "trail": ",".join(map(str, self.trail)),
            "after": self.after,
        }
        values.update(changes)
        if isinstance(values["trail"], tuple | list):
            values["trail"] = ",".join(map(str, values["trail"]))
        if values["offset"] == 0:
            values["offset"] = ""
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


@dataclass(frozen=True)
class SearchRow:
    """One decision in the results."""

    id: str
    seq: int
    ts: str
    subject_key: str | None
    model: str
    version: str
    alias: str | None
    outcome: str
    effective_outcome: str
    score: float
    threshold: float
    purpose: str | None
    caller: str | None
    status: str = "decided"
    out_of_distribution: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: Record, effective: str, status: str = "decided") -> SearchRow:
        b = record.body
        m = b.get("model") or {}
        return cls(
            id=record.id,
            seq=record.seq,
            ts=record.ts,
            subject_key=b.get("subject_key"),
            model=str(m.get("name")),
            version=str(m.get("version")),
            alias=m.get("alias"),
            outcome=str(b.get("outcome")),
            effective_outcome=effective,
            score=float(b.get("score", float("nan"))),
            threshold=float(b.get("threshold", float("nan"))),
            purpose=b.get("purpose"),
            caller=b.get("caller"),
            status=status,
            out_of_distribution=tuple(str(x) for x in b.get("out_of_distribution") or ()),
        )

    @classmethod
    def read(cls, ledger: Any, record: Record) -> SearchRow:
        """The row of a decision, with what its later events make of it."""
        events = ledger.events_for(record.id)
        return cls.of(record, effective_outcome(record, events), review_status(events))


@dataclass
class SearchResult:
    """A page of results and where the neighbouring pages start."""

    rows: list[SearchRow] = field(default_factory=list)
    next_query: str | None = None
    prev_query: str | None = None
    first_query: str | None = None
    scanned: int = 0
    budget_hit: bool = False
    note: str | None = None


def search(ledger: Any, f: SearchFilters) -> SearchResult:
    """Run a search on the ledger (raises :class:`BadRequest` for unusable filters).

    Without an outcome or status filter a page is ``limit`` decisions from ``offset`` in ledger
    order. With one, decisions are examined from ``offset`` (their effective outcome and review
    status need their reviews) until the page is full or :data:`SCAN_BUDGET` decisions were
    examined; the next page continues where this one stopped, and the pages before are carried
    in ``trail``.
    """
    if f.decision_id:
        try:
            record = ledger.get(f.decision_id)
        except LedgerError:
            record = None
        if record is None or record.type != "decision":
            return SearchResult(note=f"no decision with id {f.decision_id}")
        return SearchResult(rows=[SearchRow.read(ledger, record)])
    query: dict[str, Any] = {
        "subject_id": f.subject_id or None,
        "model": f.model or None,
        "version": f.version or None,
        "since": _parse_time(f.since, "from"),
        "until": _parse_time(f.until, "until"),
        "type": "decision",
    }
    result = SearchResult()
    try:
        if not f.scans:
            records = ledger.find(**query, limit=f.limit + 1, offset=f.offset, after=f.after)
            more = len(records) > f.limit
            for r in records[: f.limit]:
                result.rows.append(SearchRow.read(ledger, r))
            result.scanned = len(result.rows)
            if more and f.after is not None:
                result.next_query = f.query(after=result.rows[-1].seq, trail="")
            elif more:
                result.next_query = f.query(offset=f.offset + f.limit, trail="")
            if f.after is not None:
                result.first_query = f.query(after=None, trail="")
            if f.offset > 0:
                result.prev_query = f.query(offset=max(0, f.offset - f.limit), trail="")
                result.first_query = f.query(offset=0, trail="")
            return result
        pos = f.offset
        chunk = max(2 * f.limit, 500)
        exhausted = False
        while len(result.rows) < f.limit and result.scanned < SCAN_BUDGET:
            start = pos
            batch = ledger.find(**query, limit=chunk, offset=pos)
            for r in batch:
                pos += 1
                result.scanned += 1
                row = SearchRow.read(ledger, r)
                if (not f.outcome or row.effective_outcome == f.outcome) and (
                    not f.status or row.status == f.status
                ):
                    result.rows.append(row)
                if len(result.rows) == f.limit or result.scanned >= SCAN_BUDGET:
                    break
            if len(batch) < chunk and pos - start == len(batch):
                exhausted = True
                break
        result.budget_hit = not exhausted and len(result.rows) < f.limit
        if not exhausted:
            result.next_query = f.query(offset=pos, trail=(*f.trail, f.offset)[-MAX_TRAIL:])
        if f.trail:
            result.prev_query = f.query(offset=f.trail[-1], trail=f.trail[:-1])
        if f.offset > 0:
            result.first_query = f.query(offset=0, trail="")
    except LedgerError as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise BadRequest(str(exc)) from None
    return result


# -- the decision page --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One link of the lineage chain shown on a decision page."""

    label: str
    text: str
    href: str | None = None
    external: tuple[tuple[str, str], ...] = ()
    details: tuple[str, ...] = ()
    ok: bool | None = None


@dataclass(frozen=True)
class LedgerStatus:
    """Where a record sits in the ledger and whether its inclusion proof verifies."""

    seq: int
    hash: str
    prev: str
    size: int
    checkpoint: dict[str, Any] | None = None
    proof_verified: bool | None = None
    proof_length: int = 0
    proof_pending: bool = False
    latest_checkpoint_size: int | None = None
    problem: str | None = None


def _checkpoint_view(cp: Checkpoint, ledger: Any) -> dict[str, Any]:
    return {
        "size": cp.size,
        "root": cp.root.hex(),
        "timestamp": cp.timestamp,
        "key_id": cp.key_id,
        "origin": cp.origin,
        "signature_ok": cp.origin == ledger.origin and verify_checkpoint(cp, ledger.public_key),
    }


def ledger_status(ledger: Any, record_id: str, tree_ready: bool = True) -> LedgerStatus:
    """A decision's ledger position, its covering checkpoint and a server-checked proof.

    A page view never signs a checkpoint: a decision that no checkpoint covers yet is shown
    as such (``governance audit checkpoint`` or ``POST /v1/ledger/checkpoints`` covers it).
    While the server is still building its Merkle tree (``tree_ready`` false, once after a
    start; see :class:`TreeWarmer`) the proof is shown as pending rather than waited for.
    """
    record = ledger.get(record_id)
    if record is None:
        raise LookupError(f"no record with id {record_id}")
    size = ledger.size()
    checkpoints = ledger.checkpoints()
    latest = checkpoints[-1].size if checkpoints else None
    base = {"seq": record.seq, "hash": record.hash, "prev": record.prev, "size": size}
    covering = [cp for cp in checkpoints if cp.size > record.seq]
    if not covering:
        return LedgerStatus(**base, latest_checkpoint_size=latest)
    if not tree_ready:
        return LedgerStatus(
            **base,
            checkpoint=_checkpoint_view(covering[-1], ledger),
            proof_pending=True,
            latest_checkpoint_size=latest,
        )
    try:
        proof = ledger.inclusion_proof(record_id)
    except IntegrityError as exc:
        return LedgerStatus(**base, latest_checkpoint_size=latest, problem=str(exc))
    used = Checkpoint.from_json(proof["checkpoint"]) if "checkpoint" in proof else covering[-1]
    return LedgerStatus(
        **base,
        checkpoint=_checkpoint_view(used, ledger),
        proof_verified=bool(proof["verified"]),
        proof_length=len(proof["proof"]),
        latest_checkpoint_size=latest,
    )


class TreeWarmer:
    """Builds the ledger's Merkle tree once, in the background, when the explorer is first used.

    The first inclusion proof after a start walks and checks every record to build the tree
    (about 6 s at 1,000,000 records here); later proofs only extend it. Starting that walk at
    sign-in (or at the first page of a session) means decision pages need not wait for it;
    a server whose explorer nobody opens never does the work.
    """

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.done = threading.Event()
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Start the walk (once per process)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="ui-merkle-tree", daemon=True).start()

    def _run(self) -> None:
        try:
            if self.ledger.size() > 0:
                self.ledger.consistency_proof(1)  # builds (and checks) the tree, cheaply
        except Exception as exc:  # reported by the proof itself on the decision page
            self.problem = str(exc)
            log.warning("explorer: building the Merkle tree failed: %s", exc)
        finally:
            self.done.set()

    def ready(self, wait: float = 0.0) -> bool:
        """Whether the tree is built (or failed), waiting up to ``wait`` seconds."""
        self.start()
        return self.done.wait(wait)


def lineage_steps(
    trace: Mapping[str, Any],
    config: UiConfig,
    model_href: str,
    experiment_id: str | None,
) -> list[Step]:
    """The chain model version → run → data → validation → fairness → card → commit."""
    m = trace["model"]
    run_id = str(trace["training_run"]["mlflow_run_id"])
    run = trace["training_run"].get("run") or {}
    validation = trace["validation"] or {}
    stats = validation.get("statistics") or {}
    fairness = trace["fairness"] or {}
    code = trace["code"] or {}
    source = str(run.get("source") or "unknown")
    run_details = [f"produced by: {source}" + (f" run {run['id']}" if run.get("id") else "")]
    data_lines = tuple(
        f"{d['name']}: {d['path']} · md5 {d['md5']} · {_num(d.get('rows'))} rows"
        for d in trace["data"]
    )
    passed_expectations = stats.get("successful_expectations")
    evaluated = stats.get("evaluated_expectations")
    commit = str(code.get("git_commit") or "unknown")
    return [
        Step(
            "Model version",
            f"{m['name']} version {m['version']}"
            + (f" (decided through alias {m['alias']})" if m.get("alias") else ""),
            href=model_href,
            external=(("MLflow model version", config.mlflow_version(m["name"], m["version"])),),
            details=(
                f"lineage id {m['lineage_id']}",
                "matches the registered version's lineage"
                if m.get("lineage_id_matches")
                else "DOES NOT match the registered version's lineage",
            ),
            ok=bool(m.get("lineage_id_matches")),
        ),
        Step(
            "Training run",
            f"MLflow run {run_id}",
            external=(
                ("MLflow run", config.mlflow_run(experiment_id, run_id)),
                ("Dagster asset", config.dagster_asset()),
            ),
            details=tuple(run_details),
        ),
        Step(
            "Training data",
            f"{len(trace['data'])} dataset(s), content-addressed by DVC md5",
            href=f"{model_href}#lineage-data",
            details=data_lines,
        ),
        Step(
            "Data validation",
            ("passed" if validation.get("success") else "FAILED")
            + (
                f": {passed_expectations}/{evaluated} expectations of suite"
                f" {validation.get('suite')}"
                if evaluated is not None
                else ""
            ),
            href=f"{model_href}#lineage-validation",
            details=tuple(
                f"{k}: {validation[k]}" for k in ("data_md5", "result") if validation.get(k)
            ),
            ok=bool(validation.get("success")),
        ),
        Step(
            "Fairness report",
            str(fairness.get("message") or ("passed" if fairness.get("passed") else "failed")),
            href=f"{model_href}#lineage-fairness",
            details=tuple(_headline_fairness(fairness.get("metrics") or {})),
            ok=bool(fairness.get("passed")),
        ),
        Step(
            "Model card",
            str((trace.get("model_card") or {}).get("path") or "model card"),
            href=f"{model_href}#card",
            details=(
                "MLflow artifact " + str((trace.get("model_card") or {}).get("mlflow_artifact")),
            ),
        ),
        Step(
            "Code commit",
            commit,
            href=f"{model_href}#lineage-code",
            details=(
                "clean working tree" if not code.get("git_dirty") else "UNCOMMITTED changes",
                f"governance {code.get('package_version')}",
                f"params sha256 {trace.get('params_hash')}",
            ),
            ok=not code.get("git_dirty"),
        ),
    ]


_HEADLINE = ("approval_ratio", "demographic_parity_difference", "equalized_odds_difference")


def _headline_fairness(metrics: Mapping[str, Any]) -> list[str]:
    """``group: approval ratio 0.934 · …`` for each grouping, from the flat metric names."""
    groups: dict[str, list[str]] = {}
    for key, value in metrics.items():
        group, _, metric = key.rpartition(".")
        if metric in _HEADLINE and group and "." not in group:
            groups.setdefault(group, []).append(f"{metric.replace('_', ' ')} {_num(value)}")
    return [f"{g}: " + " · ".join(parts) for g, parts in sorted(groups.items())]


def _events(shown: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for event in shown.get("events", []):
        if event["type"] in ("recourse", "notice"):  # their own sections of the page
            continue
        body = event.get("body") or {}
        kind = body.get("kind") if event["type"] == "review" else event["type"]
        who = (
            body.get("reviewer")
            or body.get("recorded_by")
            or body.get("source")
            or body.get("approver")
        )
        if event["type"] == "outcome" and body.get("recorded_by") and body.get("source"):
            who = f"{body['recorded_by']} (source {body['source']})"
        outcome = body.get("outcome") if event["type"] == "review" else body.get("observed")
        out.append(
            {
                "id": event["id"],
                "seq": event["seq"],
                "ts": event["ts"],
                "type": event["type"],
                "kind": kind,
                "who": who,
                "reason": body.get("reason"),
                "outcome": outcome,
                "observed_at": body.get("observed_at"),
                "corrects": body.get("corrects"),
            }
        )
    return out


# -- the model page -----------------------------------------------------------------------


def card_html(card: Mapping[str, Any]) -> Markup:
    """The model card as an HTML fragment (raw HTML in the Markdown escaped; the frontier plot,
    SVG drawn by our own code from numbers, inlined)."""
    from governance.core.model_card import render_fragment

    return Markup(render_fragment(dict(card)))


def monitoring_report(project_dir: Path, model: str, version: str) -> dict[str, Any] | None:
    """The latest production monitoring report of a version, if one was written."""
    from governance.lifecycle.monitoring import report_dir

    path = report_dir(project_dir, model, version) / "report.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    drift = (doc.get("drift") or {}).get("features") or []
    doc["_top_drift"] = sorted(drift, key=lambda d: -(d.get("psi") or 0.0))[:5]
    return doc


# -- the router ---------------------------------------------------------------------------


class _Verifier:
    """Runs ``Ledger.verify()`` one at a time and keeps the latest result."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.lock = threading.Lock()
        self.last: dict[str, Any] | None = None

    def run(self, by: str) -> dict[str, Any]:
        with self.lock:
            started = time.perf_counter()
            result = self.ledger.verify()
            elapsed = time.perf_counter() - started
            self.last = {
                **result.to_dict(),
                "seconds": elapsed,
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "by": by,
            }
            return self.last


class _Cache:
    """A small thread-safe memo for immutable registry artifacts (model cards, run ids)."""

    def __init__(self, size: int = CARD_CACHE) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.items: dict[Any, Any] = {}

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                return self.items[key]
        value = make()
        with self.lock:
            if len(self.items) >= self.size:
                self.items.pop(next(iter(self.items)))
            self.items[key] = value
        return value


def _safe_next(value: str, base: str) -> str:
    """A redirect target after sign-in: a path inside the explorer, else its search page."""
    default = f"{base}/decisions"
    if (
        not value
        or not value.startswith(base)
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 32 for c in value)
    ):
        return default
    rest = value[len(base) :]
    if rest and rest[0] not in "/?":
        return default
    return value


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
    config = config or UiConfig.from_env()
    sessions = Sessions(keys, secret or load_secret(service.settings.home), config.session_seconds)
    env = environment()
    ledger = service.ledger
    settings = service.settings
    verifier = _Verifier(ledger)
    witnessing = WitnessMonitor.for_ledger(ledger)
    warmer = TreeWarmer(ledger)
    cards = _Cache()
    experiments = _Cache(1024)
    r = APIRouter(prefix=PREFIX, include_in_schema=False)

    def base_of(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/") + PREFIX

    def render(
        request: Request,
        template: str,
        who: Principal | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        base = base_of(request)
        text = env.get_template(template).render(
            base=base, who=who, config=config, path=request.url.path, **context
        )
        return HTMLResponse(text, status, headers=SECURITY_HEADERS)

    def error(
        request: Request, who: Principal | None, status: int, title: str, message: str
    ) -> HTMLResponse:
        return render(request, "error.html", who, status, title=title, message=message)

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"{base_of(request)}/login?" + urlencode({"next": target})
        return RedirectResponse(url, 303, headers=SECURITY_HEADERS)

    def forbidden(request: Request, who: Principal) -> HTMLResponse:
        return error(
            request,
            None,
            403,
            "Not allowed",
            f"The API key {who.name!r} has role {who.role}; the decision explorer is for"
            f" roles {', '.join(UI_ROLES)}.",
        )

    def guard(request: Request, build: Callable[[Principal], Response]) -> Response:
        who = sessions.check(request.cookies.get(COOKIE))
        if who is None:
            return to_login(request)
        if who.role not in UI_ROLES:
            return forbidden(request, who)
        warmer.start()
        try:
            return build(who)
        except IntegrityError as exc:
            log.error("explorer page %s: the ledger does not verify: %s", request.url.path, exc)
            return error(request, who, 409, "The ledger does not verify", str(exc))
        except Exception:
            log.exception("explorer page %s failed", request.url.path)
            return error(
                request, who, 500, "Something went wrong", "The page failed; see the server log."
            )

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

    def secure(request: Request) -> bool:
        if config.secure_cookie is not None:
            return config.secure_cookie
        return request.url.scheme == "https"

    def experiment_of(run_id: str) -> str | None:
        def lookup() -> str | None:
            from governance.registry.mlflow import tracking

            try:
                with tracking(settings) as client:
                    return str(client.get_run(run_id).info.experiment_id)
            except Exception:
                return None

        found: str | None = experiments.get(run_id, lookup)
        return found

    def model_href(request: Request, name: str, version: str) -> str:
        return f"{base_of(request)}/models/{quote(name, safe='')}/versions/{quote(version)}"

    # -- signing in and out ----------------------------------------------------------------

    @r.get("")
    def root(request: Request) -> Response:
        return RedirectResponse(f"{base_of(request)}/decisions", 303, headers=SECURITY_HEADERS)

    @r.get("/login")
    def login_form(request: Request) -> Response:
        base = base_of(request)
        target = _safe_next(request.query_params.get("next", ""), base)
        who = sessions.check(request.cookies.get(COOKIE))
        if who is not None and who.role in UI_ROLES:
            return RedirectResponse(target, 303, headers=SECURITY_HEADERS)
        signed_out = request.query_params.get("signed_out") == "1"
        return render(request, "login.html", None, next=target, signed_out=signed_out)

    @r.post("/login")
    async def login(request: Request) -> Response:
        base = base_of(request)
        if not same_origin(request):
            return error(request, None, 403, "Refused", "Cross-site sign-in is not accepted.")
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
            return error(request, None, 413, "Refused", "The sign-in form is too large.")
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return error(request, None, 413, "Refused", "The sign-in form is too large.")
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=8)
        key = (form.get("key") or [""])[0].strip()
        target = _safe_next((form.get("next") or [""])[0], base)
        found = keys.authenticate(key) if key else None
        if found is None:
            return render(
                request,
                "login.html",
                None,
                401,
                next=target,
                problem="That API key is not valid." if key else "Paste your API key.",
            )
        if found.role not in UI_ROLES:
            return forbidden(request, found)
        response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            sessions.issue(found, key),
            max_age=config.session_seconds,
            path=base,
            httponly=True,
            samesite="strict",
            secure=secure(request),
        )
        log.info("explorer: %s (%s) signed in", found.name, found.role)
        warmer.start()
        return response

    @r.post("/logout")
    def logout(request: Request) -> Response:
        base = base_of(request)
        response = RedirectResponse(f"{base}/login?signed_out=1", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(
            COOKIE, path=base, httponly=True, samesite="strict", secure=secure(request)
        )
        return response

    # -- search ----------------------------------------------------------------------------

    @r.get("/decisions")
    def decisions(request: Request) -> Response:
        def build(who: Principal) -> Response:
            params = dict(request.query_params)
            try:
                f = SearchFilters.parse(params)
            except BadRequest as exc:
                return render(
                    request,
                    "search.html",
                    who,
                    422,
                    f=SearchFilters(),
                    result=SearchResult(),
                    problem=str(exc),
                    raw=params,
                )
            if f.decision_id:  # a known decision id goes straight to its page
                try:
                    record = ledger.get(f.decision_id)
                except LedgerError:
                    record = None
                if record is not None and record.type == "decision":
                    url = f"{base_of(request)}/decisions/{quote(record.id)}"
                    return RedirectResponse(url, 303, headers=SECURITY_HEADERS)
            try:
                result = search(ledger, f)
            except BadRequest as exc:
                return render(
                    request,
                    "search.html",
                    who,
                    422,
                    f=f,
                    result=SearchResult(),
                    problem=str(exc),
                    raw=params,
                )
            return render(request, "search.html", who, f=f, result=result, raw=params)

        return guard(request, build)

    # -- one decision ----------------------------------------------------------------------

    @r.get("/decisions/{decision_id}")
    def decision(request: Request, decision_id: str) -> Response:
        def build(who: Principal) -> Response:
            try:
                shown = service.show(decision_id)
            except LookupError as exc:
                return error(request, who, 404, "No such decision", str(exc))
            body = shown["body"]
            m = body["model"]
            href = model_href(request, str(m["name"]), str(m["version"]))
            steps: list[Step] = []
            lineage_problem = None
            try:
                trace = service.trace(decision_id)
            except (DecisionError, LookupError, KeyError) as exc:
                lineage_problem = f"the lineage of this decision's model cannot be loaded: {exc}"
            else:
                exp = experiment_of(str(trace["training_run"]["mlflow_run_id"]))
                steps = lineage_steps(trace, config, href, exp)
            explanation = body.get("explanation") or {}
            chart = contribution_chart(
                explanation.get("contributions") or {},
                body.get("inputs") or {},
                float(explanation.get("base_value", 0.0)),
                float(explanation.get("logit", 0.0)),
            )
            events = _events(shown)
            overrides = [e for e in events if e["kind"] == "override"]
            return render(
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
                ledger_state=ledger_status(ledger, decision_id, warmer.ready(PROOF_WAIT)),
                pii=body.get("pii"),
                recourse=ui_subjects.recourse_view(body, shown.get("events", [])),
                notices=ui_subjects.notice_views(shown.get("events", [])),
            )

        return guard(request, build)

    # -- adverse-action notices ------------------------------------------------------------

    @r.get("/decisions/{decision_id}/notice")
    def notice_preview(request: Request, decision_id: str) -> Response:
        def build(who: Principal) -> Response:
            try:
                preview = ui_subjects.notice_preview(ledger, settings.project_dir, decision_id)
            except LookupError as exc:
                return error(request, who, 404, "No such decision", str(exc))
            except ValueError as exc:
                return error(request, who, 422, "No notice for this decision", str(exc))
            return render(
                request, "notice.html", who, decision_id=decision_id, preview=preview, issued=None
            )

        return guard(request, build)

    @r.post("/decisions/{decision_id}/notice")
    def notice_issue(request: Request, decision_id: str) -> Response:
        def build(who: Principal) -> Response:
            if not same_origin(request):
                return error(request, who, 403, "Refused", "Cross-site requests are refused.")
            today = datetime.now(UTC).date().isoformat()
            try:
                _, body = subject_notices.render_for(
                    ledger, settings.project_dir, decision_id, fmt="html", issued=today
                )
            except LookupError as exc:
                return error(request, who, 404, "No such decision", str(exc))
            except ValueError as exc:
                return error(request, who, 422, "No notice for this decision", str(exc))
            receipt = ledger.append("notice", body)
            url = f"{base_of(request)}/notices/{quote(receipt.id)}"
            return RedirectResponse(url, 303, headers=SECURITY_HEADERS)

        return guard(request, build)

    @r.get("/notices/{event_id}")
    def notice_issued(request: Request, event_id: str) -> Response:
        def build(who: Principal) -> Response:
            try:
                issued = ui_subjects.issued_notice(ledger, settings.project_dir, event_id)
            except LookupError as exc:
                return error(request, who, 404, "No such notice", str(exc))
            return render(
                request,
                "notice.html",
                who,
                decision_id=issued["body"]["decision_id"],
                preview=issued["html"],
                issued=issued,
            )

        return guard(request, build)

    @r.get("/notices/{event_id}/file")
    def notice_file(request: Request, event_id: str) -> Response:
        def build(who: Principal) -> Response:
            try:
                issued = ui_subjects.issued_notice(ledger, settings.project_dir, event_id)
            except LookupError as exc:
                return error(request, who, 404, "No such notice", str(exc))
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

        return guard(request, build)

    # -- one model version -----------------------------------------------------------------

    @r.get("/models/{name}/versions/{version}")
    def model_page(request: Request, name: str, version: str) -> Response:
        def build(who: Principal) -> Response:
            from governance.lifecycle.promotion import events as promotion_events
            from governance.registry import mlflow as registry

            try:
                lineage = registry.resolve(settings, name, version)
            except LookupError as exc:
                return error(request, who, 404, "No such model version", str(exc))

            def load_card() -> tuple[dict[str, Any] | None, Markup | None, str | None]:
                try:
                    card = registry.model_card(settings, name, version)
                except LookupError as exc:
                    return None, None, str(exc)
                return card, card_html(card), None

            card, html, card_problem = cards.get((name, version), load_card)
            if card is None:  # do not keep a failure: the card may be logged later
                with cards.lock:
                    cards.items.pop((name, version), None)
            history = promotion_events(ledger, name, alias=None)
            registration = (card or {}).get("registration") or {}
            exp = registration.get("experiment_id") or experiment_of(str(lineage["mlflow_run_id"]))
            return render(
                request,
                "model.html",
                who,
                name=name,
                version=version,
                lineage=lineage,
                fairness_lines=_headline_fairness(
                    (lineage.get("fairness") or {}).get("metrics") or {}
                ),
                card_html=html,
                card_problem=card_problem,
                history=history,
                monitoring=monitoring_report(settings.project_dir, name, version),
                mlflow_version=config.mlflow_version(name, version),
                mlflow_run=config.mlflow_run(exp, str(lineage["mlflow_run_id"])),
                dagster_asset=config.dagster_asset(),
                href=model_href(request, name, version),
            )

        return guard(request, build)

    @r.get("/models/{name}/versions/{version}/monitoring")
    def monitoring_page(request: Request, name: str, version: str) -> Response:
        def build(who: Principal) -> Response:
            from governance.lifecycle.monitoring import report_dir

            path = report_dir(settings.project_dir, name, version) / "report.html"
            try:
                text = path.read_text()
            except OSError:
                return error(
                    request,
                    who,
                    404,
                    "No monitoring report",
                    f"No production monitoring report for {name} version {version} yet.",
                )
            return HTMLResponse(text, headers=SECURITY_HEADERS)

        return guard(request, build)

    # -- integrity -------------------------------------------------------------------------

    @r.get("/integrity")
    def integrity(request: Request) -> Response:
        def build(who: Principal) -> Response:
            result = verifier.last or verifier.run(who.name)
            checkpoints = ledger.checkpoints()
            latest = _checkpoint_view(checkpoints[-1], ledger) if checkpoints else None
            head = ledger.head()
            try:
                newest = max(checkpoints, key=lambda cp: cp.size, default=None)
                witnesses = witnessing.status(newest)
                witness_error = None
            except (OSError, ValueError) as exc:
                witnesses, witness_error = None, str(exc)
            return render(
                request,
                "integrity.html",
                who,
                result=result,
                latest=latest,
                checkpoints=len(checkpoints),
                head=head,
                ledger_id=ledger.ledger_id,
                public_key=_public_key_hex(ledger),
                export_dir=str(ledger.checkpoint_dir.path),
                store=str(ledger.store.location),
                witnesses=witnesses,
                witnessed_age=None if witnesses is None else witnesses.age_seconds(),
                witness_error=witness_error,
            )

        return guard(request, build)

    @r.post("/integrity/verify")
    def verify_now(request: Request) -> Response:
        def build(who: Principal) -> Response:
            if not same_origin(request):
                return error(request, who, 403, "Refused", "Cross-site requests are refused.")
            verifier.run(who.name)
            return RedirectResponse(f"{base_of(request)}/integrity", 303, headers=SECURITY_HEADERS)

        return guard(request, build)

    @r.get("/{rest:path}")
    def not_found(request: Request, rest: str) -> Response:
        if not rest:
            return RedirectResponse(f"{base_of(request)}/decisions", 303, headers=SECURITY_HEADERS)
        who = sessions.check(request.cookies.get(COOKIE))
        return error(request, who, 404, "Not found", f"There is no page at {request.url.path}.")

    return r


def _public_key_hex(ledger: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return str(ledger.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex())


__all__ = [
    "COOKIE",
    "UI_ROLES",
    "BadRequest",
    "Chart",
    "SearchFilters",
    "Sessions",
    "TreeWarmer",
    "UiConfig",
    "contribution_chart",
    "router",
    "score_gauge",
    "search",
]
