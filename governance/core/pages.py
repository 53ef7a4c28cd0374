"""Markdown reports as self-contained HTML pages (no external assets, no raw HTML passed)."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

_SYNTAX = re.compile(r"([\\`*\[\]<>|#]|(?<![^\W_])_|_(?![^\W_]))")
"""What starts Markdown syntax mid-line; ``_`` only where it could open or close emphasis (an
underscore inside a word, ``max_iter``, never does)."""
_BREAKS = re.compile("\r\n|[\r\n\u2028\u2029]")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}
th,td{{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}}
th{{background:#f3f3f3}} code{{background:#f5f5f5;padding:0 .2rem}}
</style></head><body>
{body}
</body></html>
"""


def markdown_page(title: str, markdown: str) -> str:
    """Render Markdown (tables enabled, raw HTML escaped) into a standalone page."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    return _PAGE.format(title=html.escape(title), body=md.render(markdown))


def inline(value: object) -> str:
    """``value`` as literal text on one Markdown line, for a template to interpolate.

    Line breaks become spaces (a value cannot start a heading or a list item of its own), and
    the characters that open a link or image (``[``, ``]``), an autolink (``<``), code, emphasis
    (``*``, ``_`` outside a word), a table cell (``|``), a heading or a quote are
    backslash-escaped. Ordinary words,
    numbers, hashes and dates are unchanged, so documents of plain values render byte for byte
    as before.
    """
    return _SYNTAX.sub(r"\\\1", _BREAKS.sub(" ", str(value)))
