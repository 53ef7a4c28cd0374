"""Model decisions, each recorded in the ledger before the caller gets its answer.

:class:`DecisionService` is the one implementation behind the Python API
(:func:`governance.decide`), batch scoring (``governance score``), the HTTP service and
``replay``: it resolves a registered model version (by version or alias), scores with the
compiled scorecard loaded from that version's registered MLflow model, and appends a decision
record holding the exact inputs, outcome, score, threshold, explanation, principal reasons, the
model name, version and alias used, the version's lineage id, the caller and the purpose.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from governance.core import recourse_record
from governance.core.scorecard import Scorecard
from governance.decisions.batch import body_template, decision_bodies
from governance.decisions.reviews import effective_outcome
from governance.ledger import EncodedBody, Entry, Ledger, Receipt, Record
from governance.ledger.canonical import encoder_for
from governance.ledger.records import new_record_ids
from governance.registry.mlflow import (
    LoadedModel,
    ModelCache,
    ModelLoadError,
    RegistryLookupError,
    RegistryUnavailable,
    load_version,
)
from governance.registry.signing import ModelIntegrityError
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


class DecisionError(ValueError):
    """The request cannot be decided (unknown model, bad features ...); nothing was recorded."""


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
) -> dict[str, Any]:
    sc = model.scorecard
    return {
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "timestamp": self.timestamp,
            "outcome": self.outcome,
            "score": self.score,
            "threshold": self.threshold,
            "reasons": self.reasons,
            "explanation": self.explanation,
            "model": self.model,
            "ledger": self.ledger,
        }


def _decision(body: Mapping[str, Any], receipt: Receipt) -> Decision:
    return Decision(
        decision_id=receipt.id,
        outcome=body["outcome"],
        score=body["score"],
        threshold=body["threshold"],
        reasons=body["reasons"],
        explanation=body["explanation"],
        model={k: body["model"][k] for k in ("name", "version", "alias", "lineage_id")},
        ledger={"seq": receipt.seq, "hash": receipt.hash},
        timestamp=receipt.ts,
    )


def _recourse_entries(
    memo: recourse_record.Memo,
    model: Mapping[str, Any],
    inputs: pd.DataFrame,
    adverse: np.ndarray,
    ids: Sequence[str],
    keys: Sequence[str] | None,
) -> list[Entry]:
    """``recourse`` entries for the adverse rows of a batch chunk (linked by decision id)."""
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
        out.append(Entry("recourse", body))
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

    def __init__(self, settings: Settings, ledger: Ledger, models: ModelCache | None = None):
        self.settings = settings
        self.ledger = ledger
        self.models = models or ModelCache(settings)

    @classmethod
    def open(cls, settings: Settings | None = None) -> DecisionService:
        settings = settings or Settings.resolve()
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(settings, Ledger.open(settings.ledger_url, home=settings.home))

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> DecisionService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deciding --------------------------------------------------------------------------
    def model(
        self, name: str, *, version: str | None = None, alias: str | None = None
    ) -> tuple[LoadedModel, str | None]:
        with _registry_errors():
            resolved, via = self.models.resolve(name, version=version, alias=alias)
            return self.models.get(name, resolved), via

    def _loaded(self, name: str, version: str) -> LoadedModel:
        """The version that made a recorded decision (loaded once, then cached)."""
        with _registry_errors():
            return self.models.get(name, version)

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
        request and nothing is recorded.
        """
        loaded, via = self.model(model, version=version, alias=alias)
        subject_ids = list(subject_ids) if subject_ids is not None else [None] * len(rows)
        if len(subject_ids) != len(rows):
            raise DecisionError(ERR_BATCH_LENGTHS.format(rows=len(rows), ids=len(subject_ids)))
        entries: list[Entry] = []
        bodies = []
        adverse = []
        for n, raw in enumerate(rows):
            features = _clean_features(raw)
            try:
                scored = loaded.scorecard.score(features)
            except ValueError as exc:
                where = f"application {n}: " if len(rows) > 1 else ""
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
            )
            bodies.append(body)
            adverse.append(scored.adverse)
            entries.append(
                Entry("decision", body, subject_id=subject_ids[n], pii=(pii[n] if pii else None))
            )
        try:
            entries = with_recourse(loaded.recourse_memo(), entries, bodies, adverse)
            receipts = self.ledger.append_many(entries)[: len(bodies)]
        except (ValueError, TypeError) as exc:
            raise DecisionError(str(exc)) from None
        return [_decision(b, r) for b, r in zip(bodies, receipts, strict=True)]

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
    ) -> Iterator[tuple[int, list[Receipt], np.ndarray, list[str]]]:
        """Batch scoring: vectorised scores, one ledger transaction per chunk.

        Yields ``(rows_done, receipts, scores, outcomes)`` per chunk, so callers can show
        progress. Each chunk is checked completely before it is written. The records are built
        column-wise (:mod:`governance.decisions.batch`), byte for byte the records
        :meth:`decide` writes for the same applications, so every one replays exactly.
        """
        loaded, via = self.model(model, version=version, alias=alias)
        sc = loaded.scorecard
        missing = [c for c in sc.order if c not in frame.columns]
        if missing:
            raise DecisionError(f"missing feature column(s): {missing}")
        encode = encoder_for(self.ledger.canonical_format)

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
            )

        template = body_template(make_body, encode, subject_key=subject_column is not None)
        index = {"model": {"name": loaded.name, "version": loaded.version}}
        memo = loaded.recourse_memo()
        model_ref = {"name": loaded.name, "version": loaded.version}
        for start in range(0, len(frame), chunk):
            part = frame.iloc[start : start + chunk]
            inputs = part[list(sc.order)]
            _check_frame(sc, inputs)
            try:
                _, contrib = sc.score_frame(inputs)
            except ValueError as exc:
                raise DecisionError(str(exc)) from None
            scored = sc.conclude_frame(contrib)
            keys = (
                [self.ledger.subject_key(s) for s in part[subject_column].astype(str).tolist()]
                if subject_column
                else None
            )
            bodies = decision_bodies(template, sc, inputs, contrib, scored, encode, keys)
            ids = new_record_ids(len(bodies))
            entries = [
                Entry(
                    "decision",
                    EncodedBody(data, index if keys is None else {**index, "subject_key": keys[i]}),
                    id=ids[i],
                )
                for i, data in enumerate(bodies)
            ]
            if memo is not None:  # each denial's exact recourse, in the same transaction
                entries += _recourse_entries(memo, model_ref, inputs, scored.adverse, ids, keys)
            receipts = self.ledger.append_many(entries)[: len(part)]
            outcomes = [sc.outcomes["adverse" if a else "favorable"] for a in scored.adverse]
            yield start + len(part), receipts, scored.scores, outcomes

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
    ) -> Receipt:
        """Ground truth for a decision (e.g. the loan defaulted), arriving later."""
        record, allowed = self._decision_and_outcomes(decision_id)
        if observed not in allowed:
            raise DecisionError(ERR_OUTCOME_LABEL.format(allowed=allowed, value=observed))
        body = {
            "decision_id": decision_id,
            "observed": observed,
            "source": source,
            "observed_at": observed_at,
            "model": {k: record.body["model"][k] for k in ("name", "version")},
            "subject_key": record.body.get("subject_key"),
        }
        return self.ledger.append("outcome", body)

    def record_review(
        self,
        decision_id: str,
        *,
        kind: str,
        reviewer: str,
        reason: str,
        outcome: str | None = None,
    ) -> Receipt:
        """A human review, override or contest (GDPR art. 22(3)) of a decision."""
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
            "reason": reason,
            "outcome": outcome,
            "model": {k: record.body["model"][k] for k in ("name", "version")},
            "subject_key": record.body.get("subject_key"),
        }
        return self.ledger.append("review", body)

    # -- reading ---------------------------------------------------------------------------
    def show(self, decision_id: str) -> dict[str, Any]:
        """A decision with its later events and its effective outcome."""
        record = self._decision_record(decision_id)
        decoded = self.ledger.decode(record)
        events = [self.ledger.decode(r) for r in self.ledger.events_for(decision_id)]
        return {**decoded, "effective_outcome": effective_outcome(record, events), "events": events}

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
                    fresh[key] = load_version(self.settings, *key)
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


def _check_frame(sc: Scorecard, inputs: pd.DataFrame) -> None:
    for name in sc.order:
        column = inputs[name]
        if name not in sc.nullable and column.isna().any():
            row = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise DecisionError(f"row {row}: feature {name!r} must not be null")
        if name in sc.numeric:
            values = pd.to_numeric(column, errors="coerce")
            bad = values.isna() & column.notna()
            if bad.any() or not np.isfinite(values.dropna().to_numpy(dtype=float)).all():
                raise DecisionError(f"feature {name!r}: expected finite numbers")
