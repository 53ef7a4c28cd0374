"""Markdown reports as self-contained HTML pages (no external assets, no raw HTML passed)."""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

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
