"""Request and response bodies of the HTTP API (pydantic), with OpenAPI descriptions and examples.

Request models validate the *envelope* (which fields, of which JSON types; unknown fields are
refused). The features themselves are checked by the model's compiled scorecard, which names
the feature that is missing, unknown, of the wrong type or outside its categories.

Response models document the answers in the OpenAPI schema; the endpoints build the JSON
themselves (no second validation pass on the way out).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from governance.ledger.canonical import utc_text

MAX_BATCH = 1_000  # applications per POST /v1/decisions:batch
MAX_INVOCATION_ROWS = 10_000  # rows per POST /invocations

EXAMPLE_FEATURES: dict[str, Any] = {
    "pirat": 0.372,
    "hirat": 0.248,
    "lvrat": 0.92,
    "chist": 1,
    "mhist": 2,
    "unemp": 3.2,
    "phist": "no",
    "selfemp": "no",
    "insurance": "no",
    "condomin": "no",
    "hschool": "yes",
}
EXAMPLE_ID = "01a200a8-41d2-788e-864a-1afe58757d1a"
EXAMPLE_TS = "2026-11-22T00:29:16.627588Z"
EXAMPLE_HASH = "cb4f0bff4b467d68620041608bf521118e50141431f6bc9f46129ada2c474c10"

FEATURES_DOC = (
    "The application's model inputs, feature name -> value (numbers, category strings, or"
    " null where the model allows a missing value). Exactly the model's features: a missing,"
    " unknown, mistyped, non-finite or out-of-domain value is refused with 422."
)
PII_DOC = (
    "Personal data to keep with the decision, encrypted under the subject's own key (erasable,"
    " GDPR art. 17). Never given to the model."
)
SENSITIVE_DOC = (
    "Protected attributes (e.g. race, marital status) kept for fairness monitoring: stored"
    ' encrypted with the PII (under "sensitive"), never given to the model.'
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _version_text(value: Any) -> Any:
    """Accept a version as a string or an integer (``"3"`` or ``3``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class Target(_Strict):
    """Which registered model version decides."""

    model: str | None = Field(
        None,
        min_length=1,
        description="Registered model name; defaults to the model the server was started with.",
    )
    version: str | None = Field(
        None, min_length=1, description="A registered version number (give this or an alias)."
    )
    alias: str | None = Field(
        None,
        min_length=1,
        description="A registry alias such as champion (default: the server's alias, for its"
        " model, else champion).",
    )
    purpose: str | None = Field(
        None, max_length=500, description="Why the decision is made (recorded in the ledger)."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return _version_text(value)


class DecisionRequest(Target):
    """One application to decide."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "mortgage-denial",
                    "alias": "champion",
                    "subject_id": "applicant-42",
                    "features": EXAMPLE_FEATURES,
                    "purpose": "mortgage application",
                    "pii": {"name": "A. Applicant"},
                    "sensitive": {"afam": "no", "single": "yes"},
                }
            ]
        },
    )

    subject_id: str = Field(
        min_length=1,
        max_length=256,
        description="The applicant's identifier; stored only as a keyed hash (HMAC).",
    )
    features: dict[str, Any] = Field(description=FEATURES_DOC)
    pii: dict[str, Any] | None = Field(None, description=PII_DOC)
    sensitive: dict[str, Any] | None = Field(None, description=SENSITIVE_DOC)


class Application(_Strict):
    """One application in a batch."""

    subject_id: str = Field(min_length=1, max_length=256, description="The applicant's id.")
    features: dict[str, Any] = Field(description=FEATURES_DOC)
    pii: dict[str, Any] | None = Field(None, description=PII_DOC)
    sensitive: dict[str, Any] | None = Field(None, description=SENSITIVE_DOC)


class BatchRequest(Target):
    """Up to 1,000 applications, decided and recorded all-or-nothing in one transaction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "mortgage-denial",
                    "alias": "champion",
                    "purpose": "nightly batch",
                    "applications": [
                        {"subject_id": "applicant-42", "features": EXAMPLE_FEATURES},
                        {
                            "subject_id": "applicant-43",
                            "features": {**EXAMPLE_FEATURES, "insurance": "yes"},
                            "pii": {"name": "B. Applicant"},
                        },
                    ],
                }
            ]
        },
    )

    applications: list[Application] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH:,} applications; one bad one refuses them all.",
    )


class OutcomeRequest(_Strict):
    """Ground truth for a decision, arriving later."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"observed": "deny", "source": "servicing", "observed_at": "2027-05-01T00:00:00Z"}
            ]
        },
    )

    observed: str = Field(description="What actually happened: one of the model's outcomes.")
    source: str | None = Field(None, max_length=500, description="Where the outcome came from.")
    observed_at: datetime | None = Field(
        None, description="When it was observed (ISO 8601 with a time zone)."
    )

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            utc_text(value)  # a ValueError (422) if naive or outside years 1..9999 in UTC
        return value


class ReviewRequest(_Strict):
    """A human review, an override (with the new outcome) or a contest of a decision."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "override", "reason": "income verified by phone", "outcome": "approve"},
                {"kind": "contest", "reason": "applicant disputes the credit history"},
            ]
        },
    )

    kind: Literal["review", "override", "contest"] = Field(
        description="review or override (role approver), contest (role scorer or approver:"
        " filed by the calling system for the applicant, GDPR art. 22(3))."
    )
    reason: str = Field(min_length=1, max_length=5_000, description="Why, in words.")
    outcome: str | None = Field(
        None, description="The outcome after review; required for an override."
    )


class PromotionRequest(_Strict):
    """Move an alias (champion by default) to a version: a governed, recorded action."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "passed MRM review 2026-11", "alias": "champion"}]
        },
    )

    reason: str = Field(min_length=1, max_length=5_000, description="Why, in words (recorded).")
    alias: str = Field("champion", min_length=1, max_length=64, description="Alias to move.")
    approver: str | None = Field(
        None,
        max_length=200,
        description="Optional: must name the person holding the API key (who is recorded).",
    )


class DataFrameSplit(_Strict):
    """pandas ``orient="split"``: column names, rows, and an optional index (ignored)."""

    columns: list[str]
    data: list[list[Any]]
    index: list[Any] | None = None


class InvocationsRequest(_Strict):
    """MLflow's scoring protocol: exactly one of the four input formats, and optional params."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataframe_split": {
                        "columns": list(EXAMPLE_FEATURES),
                        "data": [list(EXAMPLE_FEATURES.values())],
                    },
                    "params": {"subject_ids": ["applicant-42"], "purpose": "mortgage"},
                },
                {"dataframe_records": [EXAMPLE_FEATURES]},
                {"instances": [EXAMPLE_FEATURES]},
                {"inputs": {k: [v] for k, v in EXAMPLE_FEATURES.items()}},
            ]
        },
    )

    dataframe_split: DataFrameSplit | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    instances: list[dict[str, Any]] | None = None
    inputs: list[dict[str, Any]] | dict[str, Any] | None = Field(
        None, description="A list of records, or an object of columns (name -> list of values)."
    )
    params: dict[str, Any] | None = Field(
        None,
        description="MLflow params. Ours: subject_ids (list, one per row) and purpose (string).",
    )


# -- responses (documentation only) --------------------------------------------------------


class Reason(BaseModel):
    """A principal reason: a feature that raised the probability of the adverse outcome."""

    feature: str
    reason: str = Field(description="In words, Regulation B style.")
    contribution: float = Field(description="Its contribution to the log-odds.")


class Factor(BaseModel):
    """A main factor of a favorable outcome: a feature that lowered the adverse score."""

    feature: str
    factor: str = Field(description="The feature in plain words (not adverse-action wording).")
    contribution: float = Field(description="Its (negative) contribution to the log-odds.")


class Explanation(BaseModel):
    """Per-feature contributions that add up to the model's log-odds."""

    link: Literal["logit"] = "logit"
    base_value: float = Field(description="The log-odds of the average applicant.")
    contributions: dict[str, float]
    logit: float = Field(description="base_value + sum(contributions)")


class ModelRef(BaseModel):
    """The registered model version that decided."""

    name: str
    version: str
    alias: str | None = Field(description="The alias it was reached through, if any.")
    lineage_id: str = Field(description="Content address of the version's lineage.")


class LedgerRef(BaseModel):
    """Where the record sits in the ledger."""

    seq: int = Field(description="Position in the chain (in a sharded ledger, in its shard's).")
    hash: str
    shard: int | None = Field(
        None, description="The shard holding the record; only on a sharded ledger (shards=K)."
    )


class DecisionResponse(BaseModel):
    """A decision, durably recorded in the ledger before this answer was sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision_id": EXAMPLE_ID,
                    "timestamp": EXAMPLE_TS,
                    "outcome": "approve",
                    "score": 0.0803,
                    "threshold": 0.5,
                    "reasons": [],
                    "main_factors": [
                        {
                            "feature": "chist",
                            "factor": "consumer credit history score",
                            "contribution": -0.337,
                        }
                    ],
                    "out_of_distribution": [],
                    "explanation": {
                        "link": "logit",
                        "base_value": -2.483,
                        "contributions": {"lvrat": 0.371, "chist": -0.337},
                        "logit": -2.439,
                    },
                    "model": {
                        "name": "mortgage-denial",
                        "version": "1",
                        "alias": "champion",
                        "lineage_id": "sha256:9587...",
                    },
                    "ledger": {"seq": 0, "hash": EXAMPLE_HASH},
                }
            ]
        }
    )

    decision_id: str
    timestamp: str
    outcome: str
    score: float = Field(description="Probability of the adverse outcome.")
    threshold: float
    reasons: list[Reason] = Field(
        description="Principal (adverse-action) reasons: given for adverse outcomes only."
    )
    main_factors: list[Factor] = Field(
        description="For favorable outcomes: the features that lowered the adverse score most"
        " (main factors, not adverse-action reasons)."
    )
    out_of_distribution: list[str] = Field(
        description="Inputs inside the contract's hard bounds but outside what training saw."
    )
    explanation: Explanation
    model: ModelRef
    ledger: LedgerRef


class BatchResponse(BaseModel):
    """The decisions of a batch, in request order."""

    count: int
    decisions: list[DecisionResponse]


class Prediction(BaseModel):
    """One row's outcome and score."""

    outcome: str
    score: float


class RowExplanation(BaseModel):
    """One row's principal reasons or main factors and per-feature contributions."""

    reasons: list[Reason] = Field(description="Principal reasons (adverse outcomes only).")
    main_factors: list[Factor] = Field(description="Main factors (favorable outcomes only).")
    contributions: dict[str, float]
    base_value: float


class InvocationsResponse(BaseModel):
    """MLflow's answer shape, extended with explanations and ledger decision ids."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predictions": [{"outcome": "approve", "score": 0.0803}],
                    "explanations": [
                        {
                            "reasons": [],
                            "main_factors": [
                                {
                                    "feature": "chist",
                                    "factor": "consumer credit history score",
                                    "contribution": -0.337,
                                }
                            ],
                            "contributions": {"lvrat": 0.371, "chist": -0.337},
                            "base_value": -2.483,
                        }
                    ],
                    "decision_ids": [EXAMPLE_ID],
                }
            ]
        }
    )

    predictions: list[Prediction]
    explanations: list[RowExplanation]
    decision_ids: list[str]


class EventResponse(BaseModel):
    """An outcome or review event, durably recorded."""

    event_id: str
    decision_id: str
    type: Literal["outcome", "review"]
    timestamp: str
    ledger: LedgerRef


class RecordResponse(BaseModel):
    """A ledger record, PII decrypted (or ``"[erased]"``)."""

    model_config = ConfigDict(extra="allow")

    seq: int
    id: str
    type: str
    ts: str
    prev: str
    hash: str
    body: dict[str, Any]


class ShowResponse(RecordResponse):
    """A decision with its later events (outcomes, reviews) and its effective outcome."""

    effective_outcome: str = Field(description="The outcome after the latest override, if any.")
    events: list[RecordResponse]


class TraceResponse(BaseModel):
    """A decision joined to its model version, training run, data, validation, fairness report,
    model card and code commit."""

    model_config = ConfigDict(extra="allow")

    decision: ShowResponse
    model: dict[str, Any]
    training_run: dict[str, Any]
    data: list[dict[str, Any]]
    validation: Any
    fairness: Any
    metrics: Any
    model_card: dict[str, Any]
    code: dict[str, Any]


class FindResponse(BaseModel):
    """Decisions matching the filters, in ledger order."""

    count: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, if there may be one.")
    decisions: list[RecordResponse]


class ProofResponse(BaseModel):
    """RFC 9162 inclusion proof of one decision under a signed checkpoint."""

    model_config = ConfigDict(extra="allow")

    id: str
    seq: int
    leaf_index: int
    leaf_hash: str
    record: str = Field(description="The canonical record text whose leaf hash is leaf_hash.")
    tree_size: int
    root: str
    proof: list[str]
    checkpoint: dict[str, Any]
    verified: bool


class VerifyResponse(BaseModel):
    """Whole-ledger verification: chain, hashes, checkpoints."""

    ok: bool
    records: int
    first_bad: int | None
    reason: str | None
    checkpoints: int


class CheckpointResponse(BaseModel):
    """A signed checkpoint (tree head) of the ledger."""

    format: str
    origin: str
    size: int
    root: str
    timestamp: str
    key_id: str
    signature: str


class HealthResponse(BaseModel):
    """The answer of ``/healthz``."""

    status: Literal["ok"]
    ledger_records: int
    model: str | None
    alias: str | None


class ErrorResponse(BaseModel):
    """Every 4xx answer: one sentence saying what is wrong. Nothing was recorded."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "feature 'lvrat' must not be null"}]}
    )

    error: str


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    DecisionRequest,
    BatchRequest,
    OutcomeRequest,
    ReviewRequest,
    PromotionRequest,
    InvocationsRequest,
)
