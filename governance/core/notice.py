"""Adverse-action notices (ECOA / Regulation B, 12 CFR 1002.9) from a decision record alone.

A notice is rendered from what the ledger holds: the decision record (its id, time, position
and hash; the model name and version; the score and threshold; the principal reasons in the
dataset's wording, up to four), the recourse recorded for it (in plain words) and the
creditor's details from configuration (``notice`` in ``params.yaml``). Nothing is looked up in
the model registry, so a notice can be produced, and reproduced byte for byte, with MLflow
gone.

Templates are Jinja, one per dataset (``governance/templates/notice/<dataset>.md.j2``,
extending ``base.md.j2``); Markdown is the source, HTML renders it through the same
self-contained page as the model card, and PDF is drawn with fpdf2 (2.8.9, pinned): pure Python,
no network, no system libraries, and byte-for-byte reproducible once its creation date is set
(here: the issue date). Its core fonts cover Latin-1 only, so the PDF spells typographic quotes
and dashes in ASCII; the words are the same.

Issuing a notice records its SHA-256 in the ledger (a ``notice`` event), which is how
``governance notice verify`` later proves that a file is the one issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from fpdf import FPDF
from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound
from markdown_it import MarkdownIt

from governance.core.pages import inline, markdown_page
from governance.core.text import refuse_control

Format = Literal["md", "html", "pdf"]
FORMATS: Final[tuple[Format, ...]] = ("md", "html", "pdf")
MAX_REASONS: Final = 4  # Regulation B: more than four principal reasons are not meaningful
PLACEHOLDER: Final = "[to be configured: notice.{key} in params.yaml]"

ERR_FORMAT = "notice format must be one of {formats}, got {value!r}"
ERR_NOT_DECISION = "record {id} is a {type} event, not a decision"
ERR_NOT_ADVERSE = (
    "decision {id} is not adverse (outcome {outcome!r}): an adverse-action notice is only for "
    "a denial"
)
ERR_NO_REASONS = "decision {id} records no principal reasons; a notice must state them"
ERR_DATE = "issue date must be YYYY-MM-DD, got {value!r}"
ERR_CONFIG = "params.yaml {key}: {problem}"

_ASCII: Final = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\u2026": "...",
        "\u00d7": "x",
    }
)


@dataclass(frozen=True)
class NoticeConfig:
    """The creditor's details that every notice carries (``notice`` in ``params.yaml``).

    Attributes
    ----------
    creditor_name, creditor_address
        Who decided (Regulation B: the creditor's name and address).
    creditor_contact
        Where the applicant asks for a review, contests, or asks for the data used.
    agency_name, agency_address
        The federal agency that administers ECOA compliance for this creditor (Regulation B
        appendix A).
    product
        The credit applied for; empty: the dataset template's wording.
    """

    creditor_name: str = ""
    creditor_address: str = ""
    creditor_contact: str = ""
    agency_name: str = ""
    agency_address: str = ""
    product: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> NoticeConfig:
        """From the ``notice`` section of ``params.yaml`` (missing keys stay placeholders)."""
        p = _section("notice", params, ("product", "creditor", "agency"))
        creditor = _section("notice.creditor", p.get("creditor"), ("name", "address", "contact"))
        agency = _section("notice.agency", p.get("agency"), ("name", "address"))
        return cls(
            creditor_name=_line("notice.creditor.name", creditor.get("name")),
            creditor_address=_line("notice.creditor.address", creditor.get("address")),
            creditor_contact=_line("notice.creditor.contact", creditor.get("contact")),
            agency_name=_line("notice.agency.name", agency.get("name")),
            agency_address=_line("notice.agency.address", agency.get("address")),
            product=_line("notice.product", p.get("product")),
        )

    def to_dict(self) -> dict[str, str]:
        """The configuration as a JSON-ready document."""
        return {
            "creditor_name": self.creditor_name,
            "creditor_address": self.creditor_address,
            "creditor_contact": self.creditor_contact,
            "agency_name": self.agency_name,
            "agency_address": self.agency_address,
            "product": self.product,
        }


def _section(key: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
    """``params.yaml`` → ``key`` as a mapping of known settings (a typo would print the
    placeholder on every notice while the setting looked configured)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(ERR_CONFIG.format(key=key, problem=f"must hold {', '.join(known)}"))
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        problem = f"unknown setting(s) {unknown}; known: {', '.join(known)}"
        raise ValueError(ERR_CONFIG.format(key=key, problem=problem))
    return dict(value)


def _line(key: str, value: Any) -> str:
    """One line of text (empty: the placeholder is printed)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        problem = f"must be one line of text, got {type(value).__name__} {value!r}"
        raise ValueError(ERR_CONFIG.format(key=key, problem=problem))
    try:
        refuse_control(key, value)
    except ValueError as exc:
        raise ValueError(f"params.yaml {exc}") from None
    return value


def _or_placeholder(value: str, key: str) -> str:
    """The configured value as literal Markdown text, else the placeholder naming its key."""
    return inline(value) if value else PLACEHOLDER.format(key=key)


_ENV = Environment(
    loader=PackageLoader("governance", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # Markdown; the HTML rendering escapes (markdown-it, html=False)
)


def check_format(fmt: str) -> Format:
    """Return ``fmt`` if it is a notice format, else raise ``ValueError``."""
    if fmt not in FORMATS:
        raise ValueError(ERR_FORMAT.format(formats=list(FORMATS), value=fmt))
    return fmt


def issue_date(value: str) -> str:
    """``value`` as ``YYYY-MM-DD`` if it is a date, else :class:`ValueError` (:data:`ERR_DATE`)."""
    try:
        return dt.date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise ValueError(ERR_DATE.format(value=value)) from None


def context(
    record: Mapping[str, Any],
    *,
    adverse_outcome: str,
    outcome: str | None = None,
    recourse: Mapping[str, Any] | None,
    config: NoticeConfig,
    issued: str,
    override: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template's variables, from a decoded decision record and its recourse.

    A decision the model made favourably and a reviewer overrode to the adverse outcome is an
    adverse action too: its one principal reason is the reason the reviewer recorded
    (``override``, the body of the override review in force), and the notice says a person
    declined what the model would have approved.

    Parameters
    ----------
    record
        A decoded ledger record (``id``, ``seq``, ``ts``, ``hash``, ``type``, ``body``).
    adverse_outcome
        The outcome label that is adverse for this model (``deny``).
    outcome
        The effective outcome after reviews and overrides (default: the recorded one).
    recourse
        The recorded recourse document (:meth:`governance.core.recourse.Recourse.to_dict`),
        or None.
    config
        The creditor's details.
    issued
        The issue date, ``YYYY-MM-DD``.
    override
        The body of the override review in force, if any.

    Raises
    ------
    ValueError
        If the record is not an adverse decision with principal reasons (for an overridden
        one: with the reviewer's reason).
    """
    if record.get("type") != "decision":
        raise ValueError(ERR_NOT_DECISION.format(id=record.get("id"), type=record.get("type")))
    body = record["body"]
    effective = outcome if outcome is not None else body["outcome"]
    if effective != adverse_outcome:
        raise ValueError(ERR_NOT_ADVERSE.format(id=record["id"], outcome=effective))
    # The model's own outcome was favourable. Records from before reasons were given to adverse
    # outcomes only carry them anyway: their notices were issued from those, and still are.
    overridden = body["outcome"] != adverse_outcome and not body.get("reasons")
    if overridden:
        why = (override or {}).get("reason")
        reasons = [{"feature": None, "reason": why}] if isinstance(why, str) and why.strip() else []
    else:
        reasons = [r for r in body.get("reasons") or [] if r.get("reason")][:MAX_REASONS]
    if not reasons:
        raise ValueError(ERR_NO_REASONS.format(id=record["id"]))
    return {
        "issued": issue_date(issued),
        "decision": {
            "id": record["id"],
            "seq": record["seq"],
            "ts": record["ts"],
            "date": str(record["ts"])[:10],
            "hash": record["hash"],
        },
        "model": {
            "name": inline(body["model"]["name"]),
            "version": inline(body["model"]["version"]),
        },
        "score": f"{float(body['score']):.3f}",
        "threshold": f"{float(body['threshold']):g}",
        "reasons": [{"feature": r.get("feature"), "reason": inline(r["reason"])} for r in reasons],
        "recourse": [inline(line) for line in recourse.get("summary") or []] if recourse else [],
        "creditor": {
            "name": _or_placeholder(config.creditor_name, "creditor.name"),
            "address": _or_placeholder(config.creditor_address, "creditor.address"),
            "contact": _or_placeholder(config.creditor_contact, "creditor.contact"),
        },
        "agency": {
            "name": _or_placeholder(config.agency_name, "agency.name"),
            "address": _or_placeholder(config.agency_address, "agency.address"),
        },
        "product": inline(config.product),
        "overridden": overridden,
    }


def render_markdown(ctx: Mapping[str, Any], *, dataset: str) -> str:
    """The notice as Markdown, from the dataset's template (or the base one)."""
    try:
        template = _ENV.get_template(f"notice/{dataset}.md.j2")
    except TemplateNotFound:
        template = _ENV.get_template("notice/base.md.j2")
    return template.render(**ctx).strip() + "\n"


def render(ctx: Mapping[str, Any], *, dataset: str, fmt: str) -> bytes:
    """The notice's bytes in one format (``md``, ``html`` or ``pdf``); deterministic."""
    fmt = check_format(fmt)
    markdown = render_markdown(ctx, dataset=dataset)
    title = f"Notice of action taken: application {ctx['decision']['id']}"
    if fmt == "md":
        return markdown.encode()
    if fmt == "html":
        return markdown_page(title, markdown).encode()
    return _pdf(title, markdown, ctx["issued"])


def _pdf(title: str, markdown: str, issued: str) -> bytes:
    body = MarkdownIt("commonmark", {"html": False}).render(markdown.translate(_ASCII))
    pdf = FPDF(format="Letter")
    pdf.set_creation_date(dt.datetime.fromisoformat(issued).replace(tzinfo=dt.UTC))
    pdf.set_title(title.translate(_ASCII))
    pdf.set_author("governance")
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.write_html(body)
    return bytes(pdf.output())


def sha256(data: bytes) -> str:
    """The hex SHA-256 a ``notice`` event records."""
    return hashlib.sha256(data).hexdigest()


def notice_event(
    record: Mapping[str, Any],
    *,
    fmt: str,
    data: bytes,
    issued: str,
    dataset: str,
    config: NoticeConfig,
    recourse_id: str | None,
) -> dict[str, Any]:
    """The body of the ``notice`` ledger event for an issued notice."""
    body = record["body"]
    return {
        "decision_id": record["id"],
        "decision_hash": record["hash"],
        "subject_key": body.get("subject_key"),
        "model": {"name": body["model"]["name"], "version": body["model"]["version"]},
        "format": check_format(fmt),
        "sha256": sha256(data),
        "bytes": len(data),
        "issued": issue_date(issued),
        "dataset": dataset,
        "config": config.to_dict(),
        "recourse_id": recourse_id,
    }


def find_issued(events: Sequence[Mapping[str, Any]], digest: str) -> Mapping[str, Any] | None:
    """The notice event (decoded record) whose body records this SHA-256, if any."""
    for event in events:
        if event.get("type") == "notice" and event["body"].get("sha256") == digest:
            return event
    return None


__all__ = [
    "FORMATS",
    "MAX_REASONS",
    "Format",
    "NoticeConfig",
    "check_format",
    "context",
    "find_issued",
    "issue_date",
    "notice_event",
    "render",
    "render_markdown",
    "sha256",
]
