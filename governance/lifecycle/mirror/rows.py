"""The mirror's table (pure but for writing its files): one row per decision, in parts of
:data:`PART_ROWS`, in the format of ``MlflowClient.log_table``."""

from __future__ import annotations

import json
import logging
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.decisions.reviews import effective_outcome, review_status
from governance.ledger import Ledger, Record
from governance.lifecycle.mirror.scanning import scan

log = logging.getLogger(__name__)

SCHEMA = "governance.decision_mirror/2"  # 2: status, main_factor, out_of_distribution
TABLE_DIR = "decisions"
INDEX_FILE = f"{TABLE_DIR}/index.json"
PART_ROWS = 10_000  # decisions per table file
SUBJECT_PREFIX = 12  # hex digits of the subject's HMAC key shown in the table

COLUMNS = (
    "decision_id",
    "seq",
    "ts",
    "subject",
    "outcome",
    "effective_outcome",
    "status",
    "score",
    "threshold",
    "top_reason",
    "main_factor",
    "out_of_distribution",
    "alias",
    "caller",
    "purpose",
    "observed",
    "hash",
)


class MirrorError(RuntimeError):
    """MLflow could not be reached or refused a write; nothing new is recorded as mirrored."""


# -- rows (pure) ---------------------------------------------------------------------------


def decision_row(
    decision: Record, reviews: Sequence[Record] = (), observed: str | None = None
) -> dict[str, Any]:
    """One decision as a table row: what it decided and why, without inputs or identities.

    Parameters
    ----------
    decision : Record
        A ``decision`` record.
    reviews : sequence of Record
        Its review events, in ledger order (the last override sets the effective outcome).
    observed : str, optional
        Its last observed outcome (ground truth), if one arrived.
    """
    body = decision.body
    reasons = body.get("reasons") or []  # principal reasons: adverse outcomes only
    factors = body.get("main_factors") or []  # favorable outcomes: main factors instead
    ood = body.get("out_of_distribution") or []
    model = body.get("model") or {}
    subject_key = body.get("subject_key")
    return {
        "decision_id": decision.id,
        "seq": decision.seq,
        "ts": decision.ts,
        "subject": subject_key[:SUBJECT_PREFIX] if subject_key else None,
        "outcome": body["outcome"],
        "effective_outcome": effective_outcome(decision, reviews),
        "status": review_status(reviews),
        "score": float(body["score"]),
        "threshold": float(body["threshold"]),
        "top_reason": reasons[0].get("reason") if reasons else None,
        "main_factor": factors[0].get("factor") if factors else None,
        "out_of_distribution": ", ".join(map(str, ood)) or None,
        "alias": model.get("alias"),
        "caller": body.get("caller"),
        "purpose": body.get("purpose"),
        "observed": observed,
        "hash": decision.hash,
    }


@dataclass(frozen=True)
class Part:
    """One table file: a run of consecutive decisions of the version, and their counts.

    ``adverse`` counts the model's adverse outcomes (score at or above the threshold);
    ``effective_adverse`` the adverse outcomes after overrides (outcomes are binary, so an
    override to the other label flips it); ``overridden`` the decisions whose effective outcome
    differs from the model's.
    """

    file: str
    first_seq: int
    last_seq: int
    first_ts: str
    rows: int
    adverse: int
    effective_adverse: int
    overridden: int
    with_outcome: int

    @classmethod
    def summarise(cls, file: str, rows: Sequence[Mapping[str, Any]]) -> Part:
        """A part's record from the rows it holds."""
        adverse = effective = overridden = observed = 0
        for r in rows:
            model_adverse = r["score"] >= r["threshold"]
            changed = r["effective_outcome"] != r["outcome"]
            adverse += model_adverse
            effective += model_adverse != changed
            overridden += changed
            observed += r["observed"] is not None
        return cls(
            file=file,
            first_seq=int(rows[0]["seq"]),
            last_seq=int(rows[-1]["seq"]),
            first_ts=str(rows[0]["ts"]),
            rows=len(rows),
            adverse=adverse,
            effective_adverse=effective,
            overridden=overridden,
            with_outcome=observed,
        )


def part_file(number: int) -> str:
    """Artifact path of the table part ``number`` (1-based)."""
    return f"{TABLE_DIR}/decisions-{number:05d}.json"


def totals(parts: Sequence[Part]) -> dict[str, Any]:
    """Counts and rates over all parts (rates ``None`` without decisions)."""
    rows = sum(p.rows for p in parts)
    out: dict[str, Any] = {
        "count": rows,
        "adverse": sum(p.adverse for p in parts),
        "effective_adverse": sum(p.effective_adverse for p in parts),
        "overridden": sum(p.overridden for p in parts),
        "with_outcome": sum(p.with_outcome for p in parts),
    }
    out["adverse_rate"] = out["adverse"] / rows if rows else None
    out["effective_adverse_rate"] = out["effective_adverse"] / rows if rows else None
    return out


@dataclass(frozen=True)
class Cursor:
    """The last ledger event of a version that the mirror holds."""

    seq: int
    ts: str
    hash: str


@dataclass
class Update:
    """What one mirror run writes: table files (in ``directory``), the new parts and cursor."""

    files: list[str]
    parts: list[Part]
    cursor: Cursor
    rows_added: int
    events: int
    directory: Path


def build_update(
    ledger: Ledger,
    model: str,
    version: str,
    parts: Sequence[Part],
    cursor: Cursor | None,
    directory: Path,
    *,
    part_rows: int = PART_ROWS,
) -> Update | None:
    """Bring a version's table up to the ledger's current head; ``None`` if nothing changed.

    Reads the version's events after ``cursor`` (up to the head when called, so what is
    appended meanwhile is left to the next run), finds the parts they change (the last,
    unfilled part and new parts for new decisions; the part of an older decision that was
    reviewed or got its outcome) and writes those parts, rebuilt from the ledger, as table
    files into ``directory``. Pure with respect to MLflow. Each decision body is read once
    (a peek tells whether any is new); only reviews and outcomes are read twice.
    """
    until = ledger.size() - 1
    after_seq, after_ts = (cursor.seq, cursor.ts) if cursor else (-1, None)

    def events(
        kind: str, after: tuple[int, str | None], page: int | None = None
    ) -> Iterator[Record]:
        return scan(
            ledger,
            after_seq=after[0],
            after_ts=after[1],
            until_seq=until,
            page_size=page,
            model=model,
            version=version,
            type=kind,
        )

    # Overrides and observed outcomes after the cursor may change rows already mirrored.
    mirrored_to = parts[-1].last_seq if parts else -1
    firsts = [p.first_seq for p in parts]
    dirty: set[int] = set()
    last: Record | None = None  # the newest event that changes a row
    changed = 0
    for kind in ("review", "outcome"):
        for event in events(kind, (after_seq, after_ts)):
            if not _changes_row(event):
                continue
            changed += 1
            if last is None or event.seq > last.seq:
                last = event
            if parts:
                target = ledger.get(str(event.body["decision_id"]))
                if target is not None and target.seq <= mirrored_to:
                    dirty.add(bisect_right(firsts, target.seq) - 1)
    first_new = next(events("decision", (after_seq, after_ts), page=64), None)
    if first_new is None and not changed:
        return None

    # The tail: the last part if it has room, then new parts; rebuilt from its first decision.
    has_room = bool(parts) and parts[-1].rows < part_rows
    tail = len(parts) - 1 if first_new is not None and has_room else len(parts)
    if tail < len(parts):
        tail_after: tuple[int, str | None] = (parts[tail].first_seq - 1, parts[tail].first_ts)
    else:
        tail_after = (after_seq, after_ts)
    old = sorted(i for i in dirty if i < tail)
    starts: list[tuple[int, str | None]] = [
        (parts[i].first_seq - 1, parts[i].first_ts) for i in old
    ]
    if first_new is not None:
        starts.append(tail_after)
    new_parts = list(parts)
    files: list[str] = []
    added = [0]  # decisions after the cursor among the rows written
    if starts:
        reviews, observed = _annotations(
            ledger, model, version, min(starts, key=lambda s: s[0]), until
        )

        def write(number: int, decisions: Iterator[Record], limit: int) -> Part | None:
            rows = []
            for d in decisions:
                rows.append(decision_row(d, reviews.get(d.id, ()), observed.get(d.id)))
                if len(rows) == limit:
                    break
            if not rows:
                return None
            file = part_file(number)
            _write_table(directory / Path(file).name, rows)
            files.append(file)
            added[0] += sum(1 for r in rows if r["seq"] > after_seq)
            return Part.summarise(file, rows)

        for i in old:
            p = parts[i]
            rebuilt = write(i + 1, events("decision", (p.first_seq - 1, p.first_ts)), p.rows)
            if rebuilt is None or rebuilt.last_seq != p.last_seq:
                raise MirrorError(f"the ledger no longer holds the decisions of {p.file}")
            new_parts[i] = rebuilt
        if first_new is not None:
            del new_parts[tail:]
            decisions = events("decision", tail_after)
            while part := write(len(new_parts) + 1, decisions, part_rows):
                new_parts.append(part)
            last_seq = new_parts[-1].last_seq
            if last is None or last_seq > last.seq:
                last = ledger.get_seq(last_seq)
    assert last is not None
    cursor_now = Cursor(last.seq, last.ts, last.hash)
    return Update(files, new_parts, cursor_now, added[0], added[0] + changed, directory)


def _changes_row(record: Record) -> bool:
    """Does this event change a decision's row (a review: its status, an override: its effective
    outcome too; an observed outcome)?"""
    return record.type in ("outcome", "review")


def _annotations(
    ledger: Ledger, model: str, version: str, after: tuple[int, str | None], until: int
) -> tuple[dict[str, list[Record]], dict[str, str]]:
    """Reviews by decision and the last observed outcome by decision, after a point."""
    reviews: dict[str, list[Record]] = {}
    observed: dict[str, str] = {}
    for kind in ("review", "outcome"):
        events = scan(
            ledger,
            after_seq=after[0],
            after_ts=after[1],
            until_seq=until,
            model=model,
            version=version,
            type=kind,
        )
        for r in events:
            decision_id = str(r.body["decision_id"])
            if kind == "review":
                reviews.setdefault(decision_id, []).append(r)
            else:
                observed[decision_id] = str(r.body["observed"])
    return reviews, observed


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """A table file in ``MlflowClient.log_table``'s format (pandas ``orient="split"``).

    Written directly: several times faster than through a DataFrame, and scores keep every
    digit (pandas rounds floats to 10 significant digits by default).
    """
    doc = {"columns": list(COLUMNS), "data": [[r[c] for c in COLUMNS] for r in rows]}
    path.write_text(json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")))
