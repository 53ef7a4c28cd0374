"""Decision records of a whole frame, built column by column, byte for byte as one at a time.

Batch scoring used to build a Python dict per decision (inputs, contributions, reasons) and
encode it: about 80 µs a record, most of it Python objects and float formatting. Here each
column is formatted once, with the ledger's own canonical encoder applied to the whole column
(``encode([...])`` writes every float as it writes it alone), and each record is assembled by
joining bytes into a template taken from the single-decision path itself:
:func:`body_template` encodes :func:`~governance.decisions.service.decision_body` with
placeholders in the slots that vary per row, so the constant members, their order and their
encoding come from the same code and the same encoder as ``DecisionService.decide``.

The property test in ``tests/decisions/test_batch.py`` compares every record with the one the
single-decision path writes, so a replay of a batch decision is exact.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from governance.core.scorecard import GIVEN, Scorecard, ScoredFrame

__all__ = [
    "SLOTS",
    "BodyTemplate",
    "body_template",
    "collector_paused",
    "decision_bodies",
    "json_column",
]

Encode = Callable[[object], bytes]

SLOTS = (
    "inputs",
    "contributions",
    "logit",
    "outcome",
    "reasons",
    "main_factors",
    "score",
    "subject_key",
    "out_of_distribution",
)
"""The members of a decision body that vary per row (the others are the same for a batch)."""

OPTIONAL = ("subject_key", "out_of_distribution")
"""Slots only some bodies hold: the subject key (with a subject id), the flagged features
(only when a feature is out of distribution)."""


def placeholder(slot: str) -> Any:
    """The value put in ``slot`` to find where it lands in the encoded body."""
    key = f"\x00slot:{slot}\x00"
    if slot in ("inputs", "contributions"):
        return {key: 0}
    if slot in ("reasons", "main_factors"):
        return [{key: 0}]
    if slot == "out_of_distribution":
        return [key]
    return key


_pause_lock = threading.Lock()
_pauses = 0  # pauses running now, in any thread
_resume = False  # whether the collector was on when the first of them began


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a chunk's records are built and written.

    A chunk's records, receipts and recourse documents are containers that all live until its
    transaction ends, so the collector's thresholds trip again and again, and each full
    collection walks the whole heap: 22% of ``score_frame``'s time in
    ``python -m bench --quick --only batch``. They are freed by reference counting as before;
    whatever sits in a reference cycle waits for the collector's next run. Pauses in several
    threads at once (or nested) count: the collector comes back, if it was on, when the last
    one ends, whatever happened inside.
    """
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


def _literal(text: bytes) -> bytes:
    """``text`` as a ``bytes %`` format that writes it unchanged (a ``%`` doubled)."""
    return text.replace(b"%", b"%%")


@dataclass(frozen=True)
class BodyTemplate:
    """An encoded body cut at its slots: ``parts[0] slot[0] parts[1] ... slot[-1] parts[-1]``."""

    parts: tuple[bytes, ...]
    slots: tuple[str, ...]

    @functools.cached_property
    def format(self) -> bytes:
        """``parts`` joined by ``%b``, for ``bytes %`` (one C call per row)."""
        return b"%b".join(map(_literal, self.parts))

    @classmethod
    def cut(cls, encoded: bytes, slots: Sequence[str], encode: Encode) -> BodyTemplate:
        """Cut ``encoded`` at the (unique) encodings of the placeholders of ``slots``."""
        found = []
        for slot in slots:
            marker = encode(placeholder(slot))
            at = encoded.find(marker)
            if at < 0 or encoded.find(marker, at + 1) >= 0:
                raise ValueError(f"the decision body does not hold slot {slot!r} exactly once")
            found.append((at, len(marker), slot))
        found.sort()
        parts, start = [], 0
        for at, size, _ in found:
            parts.append(encoded[start:at])
            start = at + size
        parts.append(encoded[start:])
        return cls(tuple(parts), tuple(slot for _, _, slot in found))


def body_template(
    make_body: Callable[..., Mapping[str, Any]],
    encode: Encode,
    *,
    subject_key: bool,
    out_of_distribution: bool = False,
) -> BodyTemplate:
    """The template of the bodies ``make_body(**placeholders)`` gives, in the ledger's encoding.

    ``make_body`` receives one keyword argument per slot of :data:`SLOTS` but the
    :data:`OPTIONAL` ones (``out_of_distribution`` too when asked for) and returns the body;
    with ``subject_key`` the ledger's ``subject_key`` member is added as the ledger adds it to
    a body appended with a subject id.
    """
    slots = [s for s in SLOTS if s not in OPTIONAL]
    if out_of_distribution:
        slots.append("out_of_distribution")
    body = dict(make_body(**{s: placeholder(s) for s in slots}))
    if subject_key:
        body["subject_key"] = placeholder("subject_key")
        slots.append("subject_key")
    return BodyTemplate.cut(encode(body), slots, encode)


def json_column(values: Sequence[Any], encode: Encode) -> list[bytes]:
    """Each value's canonical JSON, as ``encode(value)`` writes it, formatting in bulk.

    Numbers and ``null`` hold no comma, so one ``encode`` of the whole list split at commas is
    each value's own encoding; other values (strings) are encoded once per distinct value.
    """
    if not values:
        return []
    kinds = set(map(type, values))
    if kinds <= {float, int, type(None)}:
        return encode(list(values))[1:-1].split(b",")
    cache: dict[tuple[type, Any], bytes] = {}
    out = []
    for value in values:
        key = (type(value), value)
        text = cache.get(key)
        if text is None:
            text = cache[key] = encode(value)
        out.append(text)
    return out


def _native(values: list[Any]) -> list[Any]:
    """Numpy scalars as Python values (what ``_clean_features`` does to one application)."""
    if any(issubclass(kind, np.generic) for kind in set(map(type, values))):
        return [v.item() if isinstance(v, np.generic) else v for v in values]
    return values


def input_columns(inputs: pd.DataFrame) -> dict[str, list[Any]]:
    """The frame's values as one application's features hold them: missing is ``None``."""
    objects = inputs.astype(object).where(inputs.notna(), None)
    return {str(name): _native(objects[name].tolist()) for name in inputs.columns}


def decision_bodies(
    template: BodyTemplate,
    scorecard: Scorecard,
    inputs: pd.DataFrame,
    contrib: np.ndarray,
    scored: ScoredFrame,
    encode: Encode,
    subject_keys: Sequence[str] | None = None,
    *,
    ood: Sequence[Sequence[str]] | None = None,
    ood_template: BodyTemplate | None = None,
) -> list[bytes]:
    """Every row's decision body in the ledger's canonical JSON, from arrays.

    Parameters
    ----------
    template
        From :func:`body_template` (with ``subject_key`` among its slots exactly when
        ``subject_keys`` is given).
    scorecard
        The model.
    inputs
        The applications, columns in ``scorecard.order`` (checked).
    contrib, scored
        :meth:`Scorecard.score_frame`'s contributions and :meth:`Scorecard.conclude_frame`.
    encode
        The ledger's canonical encoder.
    subject_keys
        Each row's HMAC subject key, or ``None`` for bodies without one.
    ood, ood_template
        Each row's out-of-distribution features, and the template (from :func:`body_template`
        with ``out_of_distribution``) of the rows with some; rows with none use ``template``.
    """
    n = len(inputs)
    if n == 0:
        return []
    names = list(scorecard.order)
    by_name = sorted(range(len(names)), key=lambda j: names[j])
    columns = input_columns(inputs)
    values = {name: json_column(columns[name], encode) for name in names}
    ctext = [json_column(contrib[:, j].tolist(), encode) for j in range(len(names))]

    keys = [encode(name) + b":" for name in names]
    varying_reasons = set(scorecard.missing_reasons) | set(scorecard.value_reasons)
    varying_factors = set(scorecard.missing_factors)

    row_format = b"{" + b",".join(_literal(keys[j]) + b"%b" for j in by_name) + b"}"

    def members(texts: Callable[[int], list[bytes]]) -> list[bytes]:
        return [row_format % row for row in zip(*[texts(j) for j in by_name], strict=True)]

    slot_values: dict[str, list[bytes]] = {
        "inputs": members(lambda j: values[names[j]]),
        "contributions": members(lambda j: ctext[j]),
        "logit": json_column(scored.logits.tolist(), encode),
        "score": json_column(scored.scores.tolist(), encode),
        "reasons": _items(
            names,
            ctext,
            scored.reasons,
            encode,
            "reason",
            [scorecard.reasons[n] for n in names],
            _worded(names, columns, scored.reasons, scorecard.reason_for, varying_reasons),
        ),
        "main_factors": _items(
            names,
            ctext,
            scored.factors,
            encode,
            "factor",
            [scorecard.labels.get(n, n) for n in names],
            _worded(names, columns, scored.factors, scorecard.factor_for, varying_factors),
        ),
    }
    outcome = {
        True: encode(scorecard.outcomes["adverse"]),
        False: encode(scorecard.outcomes["favorable"]),
    }
    slot_values["outcome"] = [outcome[a] for a in scored.adverse.tolist()]
    if subject_keys is not None:
        if len(subject_keys) != n:
            raise ValueError(f"{len(subject_keys)} subject keys for {n} rows")
        slot_values["subject_key"] = [b'"' + sk.encode() + b'"' for sk in subject_keys]
    flagged = [i for i, o in enumerate(ood) if o] if ood is not None else []
    if ood is not None and len(ood) != n:
        raise ValueError(f"{len(ood)} out-of-distribution lists for {n} rows")
    if not flagged:
        return _assemble(template, slot_values)
    if ood_template is None:
        raise ValueError("rows flagged out of distribution need ood_template")
    assert ood is not None
    slot_values["out_of_distribution"] = [encode(list(o)) if o else b"" for o in ood]
    out = [b""] * n
    plain = [i for i, o in enumerate(ood) if not o]
    for tpl, rows in ((template, plain), (ood_template, flagged)):
        for i, body in zip(rows, _assemble(tpl, slot_values, rows), strict=True):
            out[i] = body
    return out


def _assemble(
    template: BodyTemplate, slot_values: Mapping[str, list[bytes]], rows: list[int] | None = None
) -> list[bytes]:
    """Join each row's slot values into the template (``rows``: only those, in order)."""
    slot_rows = [slot_values[slot] for slot in template.slots]
    if rows is not None:
        slot_rows = [[column[i] for i in rows] for column in slot_rows]
    body_format = template.format
    return [body_format % row for row in zip(*slot_rows, strict=True)]


def _items(
    names: list[str],
    ctext: list[list[bytes]],
    picked: np.ndarray,
    encode: Encode,
    word: str,
    words: list[str],
    worded: Mapping[int, dict[int, str]] | None = None,
) -> list[bytes]:
    """Each row's principal reasons (``word`` "reason") or main factors ("factor"), as
    :meth:`Scorecard.principal_reasons` / :meth:`Scorecard.main_factors` write them.

    ``words`` are each column's words; ``worded`` (:func:`_worded`) the rows whose input gives
    some column other words, ``{row: {column: words}}``.
    """
    marker = "\x00contribution\x00"
    items: dict[tuple[int, str], bytes] = {}

    def item(j: int, text: str) -> bytes:
        done = items.get((j, text))
        if done is None:
            encoded = encode({"feature": names[j], word: text, "contribution": marker})
            at = encoded.index(encode(marker))
            head, tail = encoded[:at], encoded[at + len(encode(marker)) :]
            done = items[(j, text)] = _literal(head) + b"%b" + _literal(tail)
        return done

    formats: dict[Any, bytes] = {}  # per choice of features and of their words (few)
    out = []
    for i, row in enumerate(map(tuple, picked.tolist())):
        own = worded.get(i) if worded else None
        key = (row, tuple(sorted(own.items()))) if own else row
        row_format = formats.get(key)
        if row_format is None:
            parts = [item(j, own[j] if own and j in own else words[j]) for j in row if j >= 0]
            row_format = formats[key] = b"[" + b",".join(parts) + b"]"
        out.append(row_format % tuple([ctext[j][i] for j in row if j >= 0]))
    return out


def _worded(
    names: list[str],
    columns: Mapping[str, list[Any]],
    picked: np.ndarray,
    say: Callable[[str, Any], str],
    varying: set[str],
) -> dict[int, dict[int, str]]:
    """The rows whose input gives a picked column other words than its own (``say`` with the
    value against ``say`` without one): ``{row: {column: words}}``; empty for most models."""
    out: dict[int, dict[int, str]] = {}
    for name in sorted(varying):
        j = names.index(name)
        usual, column = say(name, GIVEN), columns[name]
        for i in np.flatnonzero((picked == j).any(axis=1)).tolist():
            text = say(name, column[i])
            if text != usual:
                out.setdefault(i, {})[j] = text
    return out
