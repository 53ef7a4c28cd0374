"""The explorer's decision search: the form's filters, a page of results, and the paging links.

:class:`SearchFilters` reads and writes the query string (every field optional); :func:`search`
runs it on the ledger. A page is ``limit`` decisions from ``offset`` in ledger order, or after a
seq (``after``, keyset paging); a filter on the effective outcome or review status (what later
events decide) scans decisions under a budget and carries the earlier offsets in ``trail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from governance.decisions.reviews import effective_outcome, review_status
from governance.ledger import IntegrityError, LedgerError, Record
from governance.ledger.canonical import utc_text

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STATUSES = ("decided", "contested", "reviewed", "overridden")  # review status (reviews.py)
SCAN_BUDGET = 5_000  # decisions examined per page when filtering on the effective outcome
MAX_TRAIL = 50  # earlier page offsets carried in the URL for "previous" (outcome filter)


class BadRequest(ValueError):
    """A search parameter that cannot be used (the message says which and why)."""


def parse_time(text: str, name: str) -> str | None:
    """An ISO 8601 time, in UTC (``None`` for an empty field).

    One without a zone (an HTML ``datetime-local``) is taken as UTC.
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise BadRequest(f"{name}: {text!r} is not a date and time (ISO 8601)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return utc_text(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {text!r} {exc}") from None


def parse_int(text: str | None, name: str, default: int, lo: int, hi: int) -> int:
    """A whole number in ``lo..hi`` (``default`` for an empty field), else :class:`BadRequest`."""
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
                trail.append(parse_int(part, "trail", 0, 0, 2**62))
        f = cls(
            decision_id=text("decision_id"),
            subject_id=text("subject_id"),
            model=text("model"),
            version=text("version"),
            outcome=text("outcome"),
            status=text("status"),
            since=text("since"),
            until=text("until"),
            limit=parse_int(params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=parse_int(params.get("offset"), "offset", 0, 0, 2**62),
            trail=tuple(trail[-MAX_TRAIL:]),
            after=(parse_int(params.get("after"), "after", 0, 0, 2**62) if text("after") else None),
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
        """The row of a decision, given its effective outcome and review status."""
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
        "since": parse_time(f.since, "from"),
        "until": parse_time(f.until, "until"),
        "type": "decision",
    }
    try:
        return _scanned_page(ledger, f, query) if f.scans else _page(ledger, f, query)
    except LedgerError as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise BadRequest(str(exc)) from None


def _page(ledger: Any, f: SearchFilters, query: Mapping[str, Any]) -> SearchResult:
    """``limit`` decisions from ``offset`` (or after the seq ``after``) in ledger order."""
    result = SearchResult()
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


def _scanned_page(ledger: Any, f: SearchFilters, query: Mapping[str, Any]) -> SearchResult:
    """Decisions from ``offset`` whose effective outcome and status match, under a budget."""
    result = SearchResult()
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
    return result
