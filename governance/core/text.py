"""What caller-given text may hold before it is recorded: it is shown later on terminals, pages
and audit reports, and a control character could forge a line there or hide what it says.

Two rules:

* a **line** (a subject id, a purpose, a name, an approver) holds no control character at all:
  no C0 or C1 control, no DEL, no U+2028 / U+2029 line or paragraph separator;
* **prose** (the reason of a review, a legal hold, an erasure or a promotion) may also hold
  newlines and tabs, a newline written ``\\r\\n`` included (a browser's form sends that), but
  no other control character (NUL, ESC, a lone ``\\r`` that would overwrite a shown line).

Neither may hold an unpaired surrogate (``"\\ud800"`` in JSON): it is not text and cannot be
encoded as UTF-8.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL_CHARS", "TextRefused", "refuse_control"]

_SURROGATES = "\ud800-\udfff"
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""The control characters alone: a search Arrow-backed strings can run (they hold no surrogate)."""
_LINE_REFUSED = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_SURROGATES}]")
_PROSE_REFUSED = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029{_SURROGATES}]|\r(?!\n)"
)

ERR_CONTROL = "{where}{field} contains a control character ({char}); refused"
ERR_SURROGATE = "{where}{field} contains an unpaired surrogate ({char}), which is not text; refused"


class TextRefused(ValueError):
    """Caller-given text holds a character it may not (the message names field and character)."""


def refuse_control(field: str, value: object, *, prose: bool = False, where: str = "") -> None:
    """Raise :class:`TextRefused` if ``value`` (any object, as ``str``) breaks its rule.

    ``prose`` allows newlines and tabs; ``where`` prefixes the message (``"row 3: "``).
    ``None`` passes.
    """
    if value is None:
        return
    found = (_PROSE_REFUSED if prose else _LINE_REFUSED).search(str(value))
    if found is None:
        return
    code = ord(found.group()[0])
    template = ERR_SURROGATE if 0xD800 <= code <= 0xDFFF else ERR_CONTROL
    raise TextRefused(template.format(where=where, field=field, char=f"U+{code:04X}"))
