"""Model decisions, each recorded in the ledger before the caller gets its answer.

:class:`DecisionService` is the one implementation behind the Python API
(:func:`governance.decide`), batch scoring (``governance score``), the HTTP service and
``replay``: it resolves a registered model version (by version or alias), scores with the
compiled scorecard loaded from that version's registered MLflow model, and appends a decision
record holding the exact inputs, outcome, score, threshold, explanation, principal reasons, the
model name, version and alias used, the version's lineage id, the caller and the purpose.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from governance.core import recourse_record
from governance.decisions.aliases import MAX_ATTEMPTS, AliasBook, Resolved
from governance.decisions.batch import (
    BodyTemplate,
    body_template,
    collector_paused,
    decision_bodies,
)
from governance.decisions.batch_helper import HELPER_MIN_ROWS, ChunkHelper
from governance.decisions.checks import (
    CONTROL_CHARS,
    DecisionError,
    check_contract,
    check_frame,
    check_observed_at,
    check_text,
)
from governance.decisions.checks import ContractRefused as ContractRefused  # re-exported
from governance.decisions.reviews import effective_outcome, review_status
from governance.ledger import EncodedBody, Entry, FenceError, Ledger, Receipt, Record
from governance.ledger.canonical import encoder_for
from governance.ledger.records import new_record_ids
from governance.ledger.shards import open_ledger
from governance.registry.mlflow import (
    DEFAULT_ALIAS,
    ERR_VERSION_AND_ALIAS,
    LoadedModel,
    ModelCache,
    ModelLoadError,
    RegistryLookupError,
    RegistryUnavailable,
)
from governance.registry.signing import ModelIntegrityError
from governance.registry.source import ModelSource
from governance.settings import Settings

log = logging.getLogger(__name__)

BATCH_CHUNK = 10_000  # decisions per ledger transaction in batch scoring
REVIEW_KINDS = ("review", "override", "contest")

ERR_NO_DECISION = "no decision with id {id}"
ERR_NOT_DECISION = "record {id} is a {type} event, not a decision"
ERR_REVIEW_KIND = "review kind must be one of {kinds}, got {kind!r}"
ERR_OVERRIDE_OUTCOME = "an override must give the new outcome: one of {allowed}"
ERR_OUTCOME_LABEL = "outcome must be one of {allowed}, got {value!r}"
ERR_BATCH_LENGTHS = "got {rows} applications but {ids} subject ids"
ERR_ALIAS_MOVING = (
    "the alias {alias!r} of model {model!r} moved {n} times while deciding; nothing was recorded"
)


class UnknownModel(DecisionError):
    """The registry has no such model, version or alias (the HTTP layer's 404)."""


class UntrustedModel(DecisionError):
    """The version's files, signature or provenance do not check out (the HTTP layer's 409)."""


@contextmanager
def _registry_errors() -> Iterator[None]:
    """The registry adapter's typed errors as decision errors, keeping "not found" apart."""
    try:
        yield
    except RegistryLookupError as exc:
        raise UnknownModel(str(exc)) from exc
    except ModelIntegrityError as exc:
        raise UntrustedModel(f"refusing to serve: {exc}") from exc
    except (RegistryUnavailable, ModelLoadError, ValueError) as exc:
        raise DecisionError(str(exc)) from exc


def _clean_features(features: Mapping[str, Any]) -> dict[str, Any]:
    """Features as JSON values; NaN means missing only where it came from a DataFrame."""
    out: dict[str, Any] = {}
    for k, v in features.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


def decision_body(
    model: LoadedModel,
    alias: str | None,
    features: Mapping[str, Any],
    score: float,
    outcome: str,
    base_value: float,
    contributions: Mapping[str, float],
    logit: float,
    reasons: Sequence[Mapping[str, Any]],
    caller: str | None,
    purpose: str | None,
    factors: Sequence[Mapping[str, Any]] = (),
    out_of_distribution: Sequence[str] = (),
) -> dict[str, Any]:
    """A decision record's body. ``reasons`` are principal (adverse-action) reasons, given on
    adverse outcomes only; a favorable outcome records its ``main_factors`` instead. Inputs
    outside what training saw are named under ``out_of_distribution`` (absent when none)."""
    sc = model.scorecard
    body = {
        "inputs": dict(features),
        "outcome": outcome,
        "score": score,
        "threshold": sc.threshold,
        "explanation": {
            "link": "logit",
            "base_value": base_value,
            "contributions": dict(contributions),
            "logit": logit,
        },
        "reasons": [dict(r) for r in reasons],
        "main_factors": [dict(f) for f in factors],
        "model": {
            "name": model.name,
            "version": model.version,
            "alias": alias,
            "lineage_id": model.lineage_id,
            "mlflow_run_id": model.mlflow_run_id,
        },
        "caller": caller,
        "purpose": purpose,
    }
    if out_of_distribution:
        body["out_of_distribution"] = list(out_of_distribution)
    return body


@dataclass(frozen=True)
class Decision:
    """What a caller gets back: the decision and where it sits in the ledger."""

    decision_id: str
    outcome: str
    score: float
    threshold: float
    reasons: list[dict[str, Any]]
    explanation: dict[str, Any]
    model: dict[str, Any]
    ledger: dict[str, Any]
    timestamp: str
    main_factors: list[dict[str, Any]]
    out_of_distribution: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The decision as the HTTP API answers it."""
        return {
            "decision_id": self.decision_id,
            "timestamp": self.timestamp,
            "outcome": self.outcome,
            "score": self.score,
            "threshold": self.threshold,
            "reasons": self.reasons,
            "main_factors": self.main_factors,
            "out_of_distribution": self.out_of_distribution,
            "explanation": self.explanation,
            "model": self.model,
            "ledger": self.ledger,
        }


@dataclass(frozen=True)
class DecisionRequest:
    """One caller's applications, for :meth:`DecisionService.decide_together`."""

    rows: Sequence[Mapping[str, Any]]
    subject_ids: Sequence[str | None] | None = None
    caller: str | None = None
    purpose: str | None = None
    pii: Sequence[Mapping[str, Any] | None] | None = None


def _checked_request(
    rows: Sequence[Mapping[str, Any]],
    subject_ids: Sequence[str | None] | None,
    caller: str | None,
    purpose: str | None,
) -> list[str | None]:
    """A request's subject ids (``None`` each if not given), its texts checked."""
    ids: list[str | None] = list(subject_ids) if subject_ids is not None else [None] * len(rows)
    if len(ids) != len(rows):
        raise DecisionError(ERR_BATCH_LENGTHS.format(rows=len(rows), ids=len(ids)))
    check_text("purpose", purpose)
    check_text("caller", caller)
    for n, subject in enumerate(ids):
        check_text("subject_id", subject, f"application {n}: " if len(rows) > 1 else "")
    return ids


def _decision(body: Mapping[str, Any], receipt: Receipt) -> Decision:
    return Decision(
        decision_id=receipt.id,
        outcome=body["outcome"],
        score=body["score"],
        threshold=body["threshold"],
        reasons=body["reasons"],
        explanation=body["explanation"],
        model={k: body["model"][k] for k in ("name", "version", "alias", "lineage_id")},
        ledger=receipt.ref(),
        timestamp=receipt.ts,
        main_factors=body["main_factors"],
        out_of_distribution=body.get("out_of_distribution", []),
    )


def _recourse_bodies(
    memo: recourse_record.Memo,
    model: Mapping[str, Any],
    inputs: pd.DataFrame,
    adverse: np.ndarray,
    ids: Sequence[str],
    keys: Sequence[str] | None,
    encode: Callable[[object], bytes],
) -> list[tuple[int, bytes]]:
    """``(row, encoded body)`` of the ``recourse`` event of each adverse row of a batch chunk."""
    rows = np.flatnonzero(adverse)
    if not len(rows):
        return []
    picked = inputs.iloc[rows]
    records = picked.astype(object).where(picked.notna(), None).to_dict(orient="records")
    out = []
    for i, features in zip(rows.tolist(), records, strict=True):
        body = recourse_record.event_body(ids[i], model, memo.document(_clean_features(features)))
        if keys is not None:
            body["subject_key"] = keys[i]
        out.append((i, encode(body)))
    return out


def with_recourse(
    memo: recourse_record.Memo | None,
    decisions: Sequence[Entry],
    bodies: Sequence[Mapping[str, Any]],
    adverse: Sequence[bool],
) -> list[Entry]:
    """The decision entries (given ids), then a linked ``recourse`` entry per adverse one.

    Appended in one transaction: an adverse decision is never recorded without its recourse.
    """
    ids = iter(new_record_ids(len(decisions)))
    entries = [Entry(e.type, e.body, e.subject_id, e.pii, e.id or next(ids)) for e in decisions]
    if memo is None:
        return entries
    linked = [
        Entry(
            "recourse",
            recourse_record.event_body(str(e.id), b["model"], memo.document(b["inputs"])),
            subject_id=e.subject_id,
        )
        for e, b, bad in zip(entries, bodies, adverse, strict=True)
        if bad
    ]
    return entries + linked


class DecisionService:
    """Decide, record, look up, trace and replay decisions."""

    def __init__(self, settings: Settings, ledger: Ledger, models: ModelSource | None = None):
        self.settings = settings
        self.ledger = ledger
        self.models: ModelSource = models or ModelCache(settings)  # MLflow unless told otherwise
        self.aliases = AliasBook(ledger, self._registry_alias)

    def _registry_alias(self, name: str, alias: str) -> str:
        """The registry's answer, for an alias the ledger never recorded a move of."""
        return self.models.registry_alias(name, alias)

    @classmethod
    def open(cls, settings: Settings | None = None) -> DecisionService:
        """The service on the configured ledger and registry (``settings`` or the environment's)."""
        settings = settings or Settings.resolve()
        settings.home.mkdir(parents=True, exist_ok=True)
        ledger = open_ledger(settings.ledger_url, home=settings.home)
        # A ShardedLedger (shards=K in the URL) offers the Ledger interface the service uses.
        return cls(settings, cast(Ledger, ledger))

    def close(self) -> None:
        """Close the ledger."""
        self.ledger.close()

    def __enter__(self) -> DecisionService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deciding --------------------------------------------------------------------------
    def model(
        self, name: str, *, version: str | None = None, alias: str | None = None
    ) -> tuple[LoadedModel, str | None]:
        """The version to decide with (an alias as the ledger records it now) and the alias.

        Raises :class:`DecisionError` (:class:`UnknownModel` for an unknown name, version or
        alias).
        """
        loaded, via, _ = self._target(name, version, alias)
        return loaded, via

    def _target(
        self, name: str, version: str | None, alias: str | None
    ) -> tuple[LoadedModel, str | None, Resolved | None]:
        if version is not None and alias is not None:
            raise DecisionError(ERR_VERSION_AND_ALIAS)
        if version is not None:
            return self._loaded(name, str(version)), None, None
        alias = alias or DEFAULT_ALIAS
        with _registry_errors():
            resolved = self.aliases.resolve(name, alias)
        return self._loaded(name, resolved.version), alias, resolved

    def _loaded(self, name: str, version: str) -> LoadedModel:
        """A version, loaded once, then cached."""
        with _registry_errors():
            return self.models.get(name, version)

    def _append(
        self, entries: list[Entry], name: str, via: str | None, resolved: Resolved | None
    ) -> list[Receipt] | None:
        """Append under the alias's fence; None if the alias moved (answer forgotten: redo)."""
        try:
            receipts = self.ledger.append_many(entries, fence=resolved.fence if resolved else None)
        except FenceError:
            self.aliases.forget(name, via)
            return None
        except (ValueError, TypeError) as exc:
            raise DecisionError(str(exc)) from None
        through = self.ledger.fenced_through(receipts)
        if resolved is not None and via is not None and through is not None:
            self.aliases.advance(name, via, resolved, through)
        return receipts

    def decide(
        self,
        model: str,
        features: Mapping[str, Any],
        *,
        subject_id: str | None = None,
        version: str | None = None,
        alias: str | None = None,
        caller: str | None = None,
        purpose: str | None = None,
        pii: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Score one application and record it durably before returning."""
        return self.decide_many(
            model,
            [features],
            subject_ids=[subject_id],
            version=version,
            alias=alias,
            caller=caller,
            purpose=purpose,
            pii=[pii] if pii else None,
        )[0]

    def decide_many(
        self,
        model: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        subject_ids: Sequence[str | None] | None = None,
        version: str | None = None,
        alias: str | None = None,
        caller: str | None = None,
        purpose: str | None = None,
        pii: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Decision]:
        """Score applications one by one (each checked) and record them in one transaction.

        Every application is checked before anything is written: one bad row rejects the whole
        request and nothing is recorded. Through an alias, the version is the one the ledger's
        promotion events name, checked again in the append's own transaction: if the alias
        moved meanwhile, the applications are decided again with the version it names now.
        """
        subject_ids = _checked_request(rows, subject_ids, caller, purpose)
        for _ in range(MAX_ATTEMPTS):
            loaded, via, resolved = self._target(model, version, alias)
            bodies, entries = self._entries(loaded, via, rows, subject_ids, caller, purpose, pii)
            receipts = self._append(entries, model, via, resolved)
            if receipts is not None:
                return [
                    _decision(b, r) for b, r in zip(bodies, receipts[: len(bodies)], strict=True)
                ]
        raise DecisionError(ERR_ALIAS_MOVING.format(alias=via, model=model, n=MAX_ATTEMPTS))

    def decide_together(
        self,
        model: str,
        requests: Sequence[DecisionRequest],
        *,
        version: str | None = None,
        alias: str | None = None,
    ) -> list[list[Decision] | DecisionError]:
        """Several callers' requests, each decided as :meth:`decide_many` decides it, recorded
        in one ledger transaction (one commit, one fsync) instead of one each.

        Each request is checked on its own: one with a bad application gets its
        :class:`DecisionError` in its place and the others are recorded. If the combined append
        fails, each request is decided again alone, so that one cannot fail another. Returns,
        per request and in order, its decisions or its error.

        Raises
        ------
        DecisionError
            When none can be decided: the model, version or alias is unknown or untrusted, or
            the alias kept moving.
        """
        results: dict[int, list[Decision] | DecisionError] = {}
        checked: list[tuple[int, DecisionRequest, list[str | None]]] = []
        for k, r in enumerate(requests):
            try:
                checked.append((k, r, _checked_request(r.rows, r.subject_ids, r.caller, r.purpose)))
            except DecisionError as exc:
                results[k] = exc
        for _ in range(MAX_ATTEMPTS):
            loaded, via, resolved = self._target(model, version, alias)
            prepared: list[tuple[int, list[dict[str, Any]], list[Entry]]] = []
            for k, r, subject_ids in checked:
                try:
                    bodies, entries = self._entries(
                        loaded, via, r.rows, subject_ids, r.caller, r.purpose, r.pii
                    )
                except DecisionError as exc:
                    results[k] = exc
                else:
                    prepared.append((k, bodies, entries))
            if not prepared:
                break
            try:
                receipts = self._append(
                    [e for _, _, entries in prepared for e in entries], model, via, resolved
                )
            except DecisionError as exc:
                for k, _, _ in prepared:
                    results[k] = (
                        exc
                        if len(prepared) == 1
                        else self._alone(requests[k], model, version, alias)
                    )
                break
            if receipts is None:
                continue  # the alias moved: decide them all again with the version it names
            start = 0
            for k, bodies, entries in prepared:
                mine = receipts[start : start + len(bodies)]
                start += len(entries)
                results[k] = [_decision(b, rc) for b, rc in zip(bodies, mine, strict=True)]
            break
        else:
            raise DecisionError(ERR_ALIAS_MOVING.format(alias=via, model=model, n=MAX_ATTEMPTS))
        return [results[k] for k in range(len(requests))]

    def _alone(
        self, r: DecisionRequest, model: str, version: str | None, alias: str | None
    ) -> list[Decision] | DecisionError:
        """One request of a failed combined append, decided again on its own."""
        try:
            return self.decide_many(
                model,
                r.rows,
                subject_ids=r.subject_ids,
                version=version,
                alias=alias,
                caller=r.caller,
                purpose=r.purpose,
                pii=r.pii,
            )
        except DecisionError as exc:
            return exc

    def _entries(
        self,
        loaded: LoadedModel,
        via: str | None,
        rows: Sequence[Mapping[str, Any]],
        subject_ids: Sequence[str | None],
        caller: str | None,
        purpose: str | None,
        pii: Sequence[Mapping[str, Any] | None] | None,
    ) -> tuple[list[dict[str, Any]], list[Entry]]:
        """Check and score each application; the record bodies and ledger entries."""
        entries: list[Entry] = []
        bodies = []
        adverse = []
        for n, raw in enumerate(rows):
            features = _clean_features(raw)
            where = f"application {n}: " if len(rows) > 1 else ""
            ood = check_contract(loaded, features, where)
            try:
                scored = loaded.scorecard.score(features)
            except ValueError as exc:
                raise DecisionError(f"{where}{exc}") from None
            e = scored.explanation
            body = decision_body(
                loaded,
                via,
                features,
                scored.score,
                scored.outcome,
                e.base_value,
                e.contributions,
                e.logit,
                scored.reasons,
                caller,
                purpose,
                scored.factors,
                ood,
            )
            bodies.append(body)
            adverse.append(scored.adverse)
            entries.append(
                Entry("decision", body, subject_id=subject_ids[n], pii=(pii[n] if pii else None))
            )
        return bodies, with_recourse(loaded.recourse_memo(), entries, bodies, adverse)

    def score_frame(
        self,
        model: str,
        frame: pd.DataFrame,
        *,
        subject_column: str | None = None,
        version: str | None = None,
        alias: str | None = None,
        caller: str | None = None,
        purpose: str | None = None,
        chunk: int = BATCH_CHUNK,
        helper_rows: int = HELPER_MIN_ROWS,
    ) -> Iterator[tuple[int, list[Receipt], np.ndarray, list[str]]]:
        """Batch scoring: vectorised scores, one ledger transaction per chunk.

        Yields ``(rows_done, receipts, scores, outcomes)`` per chunk, so callers can show
        progress. The whole frame is checked against the version's input contract (and the
        scorecard's own checks) before anything is written: one bad row refuses the batch.
        The records are built column-wise (:mod:`governance.decisions.batch`), byte for byte
        the records :meth:`decide` writes for the same applications, so every one replays
        exactly; each denial's recourse is appended in the same transaction. Through an alias,
        each chunk is fenced like a single decision: if the alias moved, the rest of the frame
        is decided by the version it names now. From ``helper_rows`` rows on, a helper process
        builds each next chunk while this one appends the current one
        (:mod:`governance.decisions.batch_helper`); the records are the same.
        """
        loaded, via, resolved = self._target(model, version, alias)
        big = len(frame) >= max(helper_rows, 2 * chunk)
        helper = ChunkHelper(preload=[_BatchPlan.__module__]) if big else None
        with helper or contextlib.nullcontext():  # it starts while the frame is checked
            check_text("purpose", purpose)
            check_text("caller", caller)
            if subject_column:
                if subject_column not in frame.columns:
                    raise DecisionError(f"missing subject column {subject_column!r}")
                subjects_all = frame[subject_column].astype(str)
                missing = frame[subject_column].isna().to_numpy() | (
                    subjects_all.str.len() == 0
                ).to_numpy(dtype=bool, na_value=True)
                if missing.any():  # before the first chunk: else part of the frame is recorded
                    row = int(np.flatnonzero(missing)[0])
                    raise DecisionError(f"row {row}: subject_id is missing (an empty cell)")
                bad = subjects_all.str.contains(CONTROL_CHARS.pattern, regex=True)
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    check_text("subject_id", subjects_all.iloc[row], f"row {row}: ")
            with collector_paused():  # a list per row: else full collections (4 times the time)
                ood_rows = check_frame(loaded, frame, 0)
            encode = encoder_for(self.ledger.canonical_format)
            plan = _BatchPlan(loaded, via, caller, purpose, encode, subject_column is not None)

            def rows_at(at: int) -> tuple[pd.DataFrame, list[list[str]], list[str] | None]:
                part = frame.iloc[at : at + chunk]
                keys = (
                    [self.ledger.subject_key(s) for s in part[subject_column].astype(str).tolist()]
                    if subject_column
                    else None
                )
                return part, ood_rows[at : at + len(part)], keys

            start, moves = 0, 0
            ahead: tuple[int, tuple[pd.DataFrame, list[list[str]], list[str] | None]] | None = None
            while start < len(frame):
                with collector_paused():  # not across the yield: the caller's code runs then
                    part, ood, keys = ahead[1] if ahead and ahead[0] == start else rows_at(start)
                    built = helper.take(plan, start) if helper else None
                    if built is None:
                        built = plan.build(part, ood, keys)
                    done = start + len(part)
                    if helper and done < len(frame):  # built there while this one is written
                        ahead = done, rows_at(done)
                        helper.ask(plan, done, *ahead[1])
                    receipts = self._append(plan.entries(built, keys), model, via, resolved)
                if receipts is None:  # the alias moved: the rest is decided by its new version
                    moves += 1
                    if moves >= MAX_ATTEMPTS:
                        raise DecisionError(
                            ERR_ALIAS_MOVING.format(alias=via, model=model, n=moves)
                        )
                    was = loaded.version
                    loaded, via, resolved = self._target(model, version, alias)
                    if loaded.version != was:
                        with collector_paused():
                            ood_rows[start:] = check_frame(loaded, frame.iloc[start:], start)
                        plan = _BatchPlan(loaded, via, caller, purpose, encode, plan.subject_key)
                    ahead = None
                    continue
                yield done, receipts[: len(part)], built.scores, built.outcomes
                start = done

    # -- later events ----------------------------------------------------------------------
    def _decision_record(self, decision_id: str) -> Record:
        record = self.ledger.get(decision_id)
        if record is None:
            raise LookupError(ERR_NO_DECISION.format(id=decision_id))
        if record.type != "decision":
            raise LookupError(ERR_NOT_DECISION.format(id=decision_id, type=record.type))
        return record

    def _decision_and_outcomes(self, decision_id: str) -> tuple[Record, list[str]]:
        """A decision and the outcome labels of the model version that made it."""
        record = self._decision_record(decision_id)
        loaded = self._loaded(record.body["model"]["name"], record.body["model"]["version"])
        return record, sorted(loaded.scorecard.outcomes.values())

    def record_outcome(
        self,
        decision_id: str,
        observed: str,
        *,
        source: str | None = None,
        observed_at: str | None = None,
        recorded_by: str | None = None,
    ) -> Receipt:
        """Ground truth for a decision (e.g. the loan defaulted), arriving later.

        ``recorded_by`` is the authenticated caller (the person holding the API key, or who
        runs the CLI); ``source`` is what the client says the outcome came from. ``observed_at``
        must lie between the decision's time and now (:data:`CLOCK_SKEW_SECONDS` of client clock
        skew tolerated). A second outcome that contradicts the last one is recorded as its
        correction (``corrects``: the earlier event's id) and shown as such.
        """
        record, allowed = self._decision_and_outcomes(decision_id)
        if observed not in allowed:
            raise DecisionError(ERR_OUTCOME_LABEL.format(allowed=allowed, value=observed))
        check_text("source", source)
        if observed_at is not None:
            check_observed_at(observed_at, record.ts)
        earlier = [e for e in self.ledger.events_for(decision_id) if e.type == "outcome"]
        body = {
            "decision_id": decision_id,
            "observed": observed,
            "source": source,
            "observed_at": observed_at,
            "recorded_by": recorded_by,
            "model": {k: record.body["model"][k] for k in ("name", "version")},
            "subject_key": record.body.get("subject_key"),
        }
        if earlier and earlier[-1].body.get("observed") != observed:
            body["corrects"] = earlier[-1].id
        return self.ledger.append("outcome", body)

    def record_review(
        self,
        decision_id: str,
        *,
        kind: str,
        reviewer: str,
        reason: str,
        outcome: str | None = None,
        recorded_by: str | None = None,
    ) -> Receipt:
        """A human review, override or contest (GDPR art. 22(3)) of a decision.

        ``reviewer`` is who reviews (or contests); ``recorded_by`` the authenticated caller.
        """
        check_text("reviewer", reviewer)
        check_text("reason", reason, prose=True)
        if kind not in REVIEW_KINDS:
            raise DecisionError(ERR_REVIEW_KIND.format(kinds=list(REVIEW_KINDS), kind=kind))
        record, allowed = self._decision_and_outcomes(decision_id)
        if kind == "override" and outcome not in allowed:
            raise DecisionError(ERR_OVERRIDE_OUTCOME.format(allowed=allowed))
        if outcome is not None and outcome not in allowed:
            raise DecisionError(ERR_OUTCOME_LABEL.format(allowed=allowed, value=outcome))
        body = {
            "decision_id": decision_id,
            "kind": kind,
            "reviewer": reviewer,
            "recorded_by": recorded_by,
            "reason": reason,
            "outcome": outcome,
            "model": {k: record.body["model"][k] for k in ("name", "version")},
            "subject_key": record.body.get("subject_key"),
        }
        return self.ledger.append("review", body)

    # -- reading ---------------------------------------------------------------------------
    def show(self, decision_id: str) -> dict[str, Any]:
        """A decision with its later events, its effective outcome and its review status."""
        record = self._decision_record(decision_id)
        decoded = self.ledger.decode(record)
        events = [self.ledger.decode(r) for r in self.ledger.events_for(decision_id)]
        return {
            **decoded,
            "effective_outcome": effective_outcome(record, events),
            "status": review_status(events),
            "events": events,
        }

    def trace(self, decision_id: str) -> dict[str, Any]:
        """The decision joined to its model version's lineage, in one answer."""
        shown = self.show(decision_id)
        m = shown["body"]["model"]
        loaded = self._loaded(m["name"], m["version"])
        lin = loaded.lineage
        return {
            "decision": shown,
            "model": {
                "name": m["name"],
                "version": m["version"],
                "alias": m["alias"],
                "lineage_id": m["lineage_id"],
                "lineage_id_matches": m["lineage_id"] == loaded.lineage_id,
                "model_uri": lin.get("model_uri"),
            },
            "training_run": {"mlflow_run_id": lin["mlflow_run_id"], "run": lin.get("run")},
            "data": [{k: d[k] for k in ("name", "path", "md5", "rows")} for d in lin["datasets"]],
            "validation": lin["validation"],
            "fairness": lin["fairness"],
            "metrics": lin["metrics"],
            "model_card": {
                "path": lin["model_card"],
                "mlflow_artifact": "model_card/model_card.md",
            },
            "code": {
                "git_commit": lin["git_commit"],
                "git_dirty": lin["git_dirty"],
                "package_version": lin["package_version"],
            },
            "params_hash": lin["params_hash"],
            "environment": lin["environment"],
        }

    def replay(self, decision_id: str) -> dict[str, Any]:
        """Reload the recorded model version, re-score the recorded inputs, compare exactly."""
        return self.replay_many([decision_id])[0]

    def replay_many(self, decision_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Replay decisions, loading each model version afresh from the registry once."""
        fresh: dict[tuple[str, str], LoadedModel] = {}
        out = []
        for decision_id in decision_ids:
            record = self._decision_record(decision_id)
            key = (record.body["model"]["name"], record.body["model"]["version"])
            if key not in fresh:
                with _registry_errors():  # not the serving cache
                    fresh[key] = self.models.load(*key)
            out.append(_replay(record, fresh[key]))
        return out


def _replay(record: Record, loaded: LoadedModel) -> dict[str, Any]:
    """Re-score a recorded decision with a freshly loaded version; compare exactly."""
    body = record.body
    m = body["model"]
    decision_id = record.id
    scored = loaded.scorecard.score(body["inputs"])
    replayed = {
        "outcome": scored.outcome,
        "score": scored.score,
        "reasons": [dict(r) for r in scored.reasons],
        "contributions": scored.explanation.contributions,
    }
    recorded = {
        "outcome": body["outcome"],
        "score": body["score"],
        "reasons": body["reasons"],
        "contributions": body["explanation"]["contributions"],
    }
    if "main_factors" in body:
        replayed["main_factors"] = [dict(f) for f in scored.factors]
        recorded["main_factors"] = body["main_factors"]
    else:
        # Recorded before reasons were limited to adverse outcomes: every decision then carried
        # its principal reasons, so that is what replay reproduces for it.
        c = scored.explanation.contributions
        reasons = loaded.scorecard.principal_reasons(c, body["inputs"])
        replayed["reasons"] = [dict(r) for r in reasons]
    checks = {k: _same(recorded[k], replayed[k]) for k in recorded}
    return {
        "decision_id": decision_id,
        "model": {"name": m["name"], "version": m["version"]},
        "lineage_id_matches": loaded.lineage_id == m["lineage_id"],
        "match": all(checks.values()) and loaded.lineage_id == m["lineage_id"],
        "checks": checks,
        "recorded": recorded,
        "replayed": replayed,
    }


def _same(a: Any, b: Any) -> bool:
    """Exact equality after the JSON round trip the ledger applies."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


@dataclass(frozen=True)
class _Built:
    """One batch chunk built by a :class:`_BatchPlan`, flat and cheap to pickle (what the batch
    helper sends back)."""

    scores: np.ndarray
    outcomes: list[str]
    ids: list[str]  # the decisions' record ids
    bodies: list[bytes]  # the decisions' encoded bodies
    recourse: list[tuple[int, bytes]]  # (row, encoded body) of each denial's recourse event


class _BatchPlan:
    """How one version's batch records are built: the body templates (one without and one with
    ``out_of_distribution``, which a body holds only when some feature is flagged), the
    version's recourse memo and the model reference recourse events carry."""

    def __init__(
        self,
        loaded: LoadedModel,
        via: str | None,
        caller: str | None,
        purpose: str | None,
        encode: Callable[[object], bytes],
        subject_key: bool,
    ) -> None:
        sc = loaded.scorecard

        def make_body(**slot: Any) -> dict[str, Any]:
            return decision_body(
                loaded,
                via,
                slot["inputs"],
                slot["score"],
                slot["outcome"],
                sc.base_value,
                slot["contributions"],
                slot["logit"],
                slot["reasons"],
                caller,
                purpose,
                slot["main_factors"],
                slot.get("out_of_distribution", ()),
            )

        self.loaded = loaded
        self.encode = encode
        self.subject_key = subject_key
        self.template: BodyTemplate = body_template(make_body, encode, subject_key=subject_key)
        self.ood_template: BodyTemplate = body_template(
            make_body, encode, subject_key=subject_key, out_of_distribution=True
        )
        self.memo = loaded.recourse_memo()
        self.model_ref = {"name": loaded.name, "version": loaded.version}

    def build(
        self, part: pd.DataFrame, ood_rows: Sequence[list[str]], keys: list[str] | None
    ) -> _Built:
        """One chunk: its scores, outcomes, record ids and encoded bodies (no ledger needed)."""
        sc = self.loaded.scorecard
        inputs = part[list(sc.order)]
        try:
            _, contrib = sc.score_frame(inputs)
        except ValueError as exc:
            raise DecisionError(str(exc)) from None
        scored = sc.conclude_frame(contrib)
        bodies = decision_bodies(
            self.template,
            sc,
            inputs,
            contrib,
            scored,
            self.encode,
            keys,
            ood=ood_rows,
            ood_template=self.ood_template,
        )
        ids = new_record_ids(len(bodies))
        recourse = (  # each denial's exact recourse, in the same transaction
            []
            if self.memo is None
            else _recourse_bodies(
                self.memo, self.model_ref, inputs, scored.adverse, ids, keys, self.encode
            )
        )
        outcomes = [sc.outcomes["adverse" if a else "favorable"] for a in scored.adverse]
        return _Built(scored.scores, outcomes, ids, bodies, recourse)

    def entries(self, built: _Built, keys: list[str] | None) -> list[Entry]:
        """The chunk's ledger entries: its decisions, then the recourse of each denial."""
        model = dict(self.model_ref)
        entries = [
            Entry(
                "decision",
                EncodedBody(
                    data,
                    {"model": model} if keys is None else {"model": model, "subject_key": keys[i]},
                ),
                id=built.ids[i],
            )
            for i, data in enumerate(built.bodies)
        ]
        for i, data in built.recourse:
            # "recourse" is a member a recourse event must have; index columns do not read it
            index = {"model": model, "decision_id": built.ids[i], "recourse": None}
            if keys is not None:
                index["subject_key"] = keys[i]
            entries.append(Entry("recourse", EncodedBody(data, index)))
        return entries
