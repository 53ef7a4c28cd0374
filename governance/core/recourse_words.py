"""A recorded recourse in plain words: the sentences a notice and the explorer show.

Pure functions of the recourse document (:meth:`governance.core.recourse.Recourse.to_dict`),
so a notice can say them from the ledger record alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def format_value(value: Any) -> str:
    """A value for a sentence: numbers without float noise, categories quoted."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"\u201c{value}\u201d"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def change_words(change: Mapping[str, Any]) -> str:
    """``lowering the loan-to-value ratio from 0.920398 to 0.81``."""
    before, after = change["before"], change["after"]
    if isinstance(before, int | float) and not isinstance(before, bool):
        verb = "lowering" if after < before else "raising"
    else:
        verb = "changing"
    return f"{verb} the {change['label']} from {format_value(before)} to {format_value(after)}"


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def sentences(doc: Mapping[str, Any]) -> list[str]:
    """The recourse document (:meth:`~governance.core.recourse.Recourse.to_dict`) in plain
    words, one sentence per line of a notice."""
    favorable = doc["favorable"]
    labels = doc.get("labels", {})
    if not doc["feasible"]:
        acted = [labels.get(f, f) for f in doc["actionable"]]
        if not acted:
            return [
                "None of the factors in this decision is one you can change by acting now, so "
                f"no change would have led to the outcome \u201c{favorable}\u201d."
            ]
        return [
            f"No change to the factors you can act on ({_join(acted)}) within their feasible "
            f"ranges would have led to the outcome \u201c{favorable}\u201d."
        ]
    out = []
    for single in doc["singles"]:
        (change,) = single["changes"]
        words = change_words(change)
        out.append(
            f"{words[0].upper()}{words[1:]} alone would have led to the outcome "
            f"\u201c{favorable}\u201d."
        )
    combined = doc["combined"]
    parts = [change_words(c) for c in combined["changes"]]
    if len(parts) > 1 or not doc["singles"]:
        out.append(
            f"The smallest combined change that would have led to the outcome "
            f"\u201c{favorable}\u201d: {_join(parts)}."
        )
    return out


__all__ = ["change_words", "format_value", "sentences"]
