"""The explorer's page rendering: Jinja templates (autoescaped), their filters, the headers.

Every page is rendered on the server with inline CSS and no script, no external asset and no
network access, and sent with a strict Content-Security-Policy and ``no-store``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

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

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def num_text(value: Any, digits: int = 3) -> str:
    """A number for a page: thousands separated, ``digits`` decimals, ``n/a`` for NaN."""
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


def signed_text(value: float, digits: int = 3) -> str:
    """A number with its sign and ``digits`` decimals."""
    return f"{value:+.{digits}f}"


def when_text(ts: str | None) -> str:
    """A ledger timestamp as ``2026-01-02 10:11:12 UTC``."""
    if not ts:
        return "—"
    return ts.replace("T", " ")[:19] + " UTC"


def ago_text(seconds: float | None) -> str:
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


def short_text(text: Any, n: int = 12) -> str:
    """At most ``n`` characters of ``text``, with an ellipsis when cut."""
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[:n] + "…"


def value_text(v: Any) -> str:
    """A feature value as recorded (``null (missing)`` for None)."""
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
    env.filters["num"] = num_text
    env.filters["signed"] = signed_text
    env.filters["when"] = when_text
    env.filters["ago"] = ago_text
    env.filters["short"] = short_text
    env.filters["value"] = value_text
    return env
