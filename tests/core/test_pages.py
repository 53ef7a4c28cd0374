"""Values interpolated into Markdown documents (notices, model cards, subject reports) are
literal text: whatever a setting, a spec or a caller wrote, it cannot become a link, an image,
emphasis, code, a table cell, a heading or a new line of the document."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from governance.core.pages import inline

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80))
@example("_APPROVED_")
@example("__APPROVED__ a_b_ _c")
@example("[call us](https://evil.example)")
@example("![t](/etc/passwd)")
@example("<https://evil.example>")
@example("`code` a|b *x* \\*y*")
@example("ok\n\n## Your rights\n1. none")
def test_an_inline_value_is_one_paragraph_of_text(value: str) -> None:
    tokens = _MD.parse(f"Creditor: {inline(value)}\n")
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert {t.type for t in tokens[1].children or []} <= {"text"}


def test_plain_words_numbers_and_hashes_are_unchanged() -> None:
    for plain in (
        "Loan amount too high relative to the property's value",
        "loan-to-value ratio from 1.47826 to 0.42 (step 0.01)…",
        "max_iter=1000, reason_count=4",
        "7c5ef32435d8291604ff513d3c59e840",
        "2026-11-30T09:00:00Z",
    ):
        assert inline(plain) == plain


def test_markdown_syntax_is_escaped_and_lines_joined() -> None:
    assert inline("![t](https://e/p.png)") == r"!\[t\](https://e/p.png)"
    assert (
        inline("<https://e> *b* a|b # c > d `e` \\")
        == r"\<https://e\> \*b\* a\|b \# c \> d \`e\` \\"
    )
    assert inline("a\nb\r\nc\rd\u2028e") == "a b c d e"
