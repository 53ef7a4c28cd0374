"""What caller-given text may hold: one-line fields and prose (``governance.core.text``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.core.text import TextRefused, refuse_control

# every character either rule refuses, whatever surrounds it
ALWAYS_REFUSED = [
    *(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"),
    "\x7f",
    *(chr(c) for c in range(0x80, 0xA0)),
    "\u2028",
    "\u2029",
    "\ud800",
    "\udfff",
]


@pytest.mark.parametrize("char", ALWAYS_REFUSED)
@pytest.mark.parametrize("prose", [False, True])
def test_a_control_character_or_surrogate_is_refused_and_named(char: str, prose: bool) -> None:
    with pytest.raises(TextRefused) as refused:
        refuse_control("reason", f"income verified{char}by phone", prose=prose, where="row 3: ")
    message = str(refused.value)
    assert message.startswith("row 3: reason contains ")
    assert f"U+{ord(char):04X}" in message and message.endswith("refused")
    assert ("unpaired surrogate" in message) == (0xD800 <= ord(char) <= 0xDFFF)


@pytest.mark.parametrize("text", ["two\nlines", "a\ttab", "windows\r\nline", "end\n"])
def test_prose_may_hold_newlines_and_tabs_a_line_may_not(text: str) -> None:
    refuse_control("reason", text, prose=True)
    with pytest.raises(TextRefused, match="control character"):
        refuse_control("purpose", text)


@pytest.mark.parametrize("text", ["over\rwritten", "ends with\r", "\r\r\n"])
def test_a_lone_carriage_return_is_refused_in_prose(text: str) -> None:
    with pytest.raises(TextRefused, match=r"\(U\+000D\)"):
        refuse_control("reason", text, prose=True)


class _Shown:
    """Not text, but shown as text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def test_none_passes_and_non_text_is_judged_as_text() -> None:
    refuse_control("subject_id", None)
    refuse_control("subject_id", 42)
    refuse_control("subject_id", _Shown("fine"))
    with pytest.raises(TextRefused, match=r"\(U\+000A\)"):
        refuse_control("subject_id", _Shown("a\nb"))


PRINTABLE = st.characters(
    blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85"
)


@given(st.text(PRINTABLE))
def test_text_without_controls_passes_both_rules(text: str) -> None:
    refuse_control("purpose", text)
    refuse_control("reason", text, prose=True)


@given(st.lists(st.text(PRINTABLE), min_size=1), st.sampled_from(["\n", "\t", "\r\n"]))
def test_prose_joined_by_newlines_and_tabs_passes(parts: list[str], sep: str) -> None:
    refuse_control("reason", sep.join(parts), prose=True)


@given(st.text(PRINTABLE), st.sampled_from(ALWAYS_REFUSED), st.text(PRINTABLE))
def test_one_refused_character_anywhere_is_found(before: str, char: str, after: str) -> None:
    for prose in (False, True):
        with pytest.raises(TextRefused, match=f"U\\+{ord(char):04X}"):
            refuse_control("reason", before + char + after, prose=prose)
