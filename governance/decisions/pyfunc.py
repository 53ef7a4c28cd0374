"""The registered model as an MLflow pyfunc: predictions with explanations, each one recorded.

This file is the "models from code" definition every version is registered with.

``mlflow models serve -m models:/NAME/VERSION`` (or ``mlflow.pyfunc.load_model``) answers with
the outcome, the score, the principal reasons (adverse outcomes) or main factors (favorable
ones) and the per-feature contributions of every row, computed by the same compiled scorecard
the decision service and ``replay`` use, and **records every prediction in the decision
ledger** with the same record as ``governance serve`` (DESIGN §5; mlflow#1916). There is no
unaudited path by default:

* the version is identified from the model's own ``MLmodel`` (its run id) in the registry, and
  each request goes through :meth:`governance.decisions.DecisionService.decide_many` with that
  version: the input contract is checked, the decision appended durably, then answered. The
  answer carries each row's ``decision_id`` and ``recorded: "ledger"``;
* the request's MLflow ``params`` may carry ``subject_ids`` (one per row), ``purpose`` and
  ``caller``; without them the record says ``caller: "mlflow-pyfunc"`` and ``purpose:
  "mlflow pyfunc prediction"`` (:data:`DEFAULT_CALLER`, :data:`DEFAULT_PURPOSE`);
* the ledger and registry are the project's (``GOVERNANCE_PROJECT`` or the current directory,
  as for every ``governance`` command);
* serving without the ledger is an explicit choice, ``GOVERNANCE_PYFUNC_LEDGER=off``: then every
  answer says ``recorded: "off (GOVERNANCE_PYFUNC_LEDGER=off): not recorded"`` and the log
  warns at load. A model that is not a registered version (``runs:/...``) refuses to predict
  unless recording is off.

Input that breaks the version's contract refuses the whole request (MLflow's scoring server
answers 400 naming row, feature, value and bound); nothing is recorded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import mlflow
import mlflow.models
import pandas as pd
import yaml

from governance.decisions.service import DecisionError, DecisionService
from governance.registry.pyfunc import (
    COLUMNS,
    DEFAULT_CALLER,
    DEFAULT_PURPOSE,
    LEDGER_ENV,
    GovernedModel,
    invalid,
)
from governance.settings import Settings

log = logging.getLogger(__name__)

RECORDED = "ledger"
NOT_RECORDED = f"off ({LEDGER_ENV}=off): not recorded"
ERR_LEDGER_ENV = f"{LEDGER_ENV} must be on or off, got {{value!r}}"
ERR_UNREGISTERED = (
    "this model (run {run_id}) is not a registered model version, so its predictions cannot be"
    f" recorded as decisions: serve a registered version (models:/NAME/VERSION) or set"
    f" {LEDGER_ENV}=off to serve it without the ledger"
)


def _ledger_on() -> bool:
    value = os.environ.get(LEDGER_ENV, "on").strip().lower()
    if value in ("on", "", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise invalid(ERR_LEDGER_ENV.format(value=value))


class RecordedModel(GovernedModel):
    """:class:`GovernedModel` that records every prediction it serves in the decision ledger."""

    def __init__(self) -> None:
        self._run_id: str | None = None  # None: built in-process, not loaded by MLflow
        self._identity: tuple[str, str] | None = None
        self._service: DecisionService | None = None
        self._lock = threading.Lock()

    def load_context(self, context: Any) -> None:
        """Verify and load the version (see the parent), and note which run logged it."""
        super().load_context(context)
        mlmodel = Path(context.artifacts["scorecard"]).parent.parent / "MLmodel"
        self._run_id = str(yaml.safe_load(mlmodel.read_text()).get("run_id") or "")
        if not _ledger_on():
            log.warning(
                "%s=off: predictions of this model are NOT recorded in the decision ledger",
                LEDGER_ENV,
            )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Decide every row and record it in the ledger, as the decision service does."""
        inputs = self.inputs(model_input)
        if self._run_id is None or not _ledger_on():
            return self.score_only(inputs, "" if self._run_id is None else NOT_RECORDED)
        identity = self._version()
        if identity is None:  # validating its own input example while being registered
            return self.score_only(inputs, "")
        return self._record(identity, inputs, dict(params or {}))

    def _record(
        self, identity: tuple[str, str], inputs: list[dict[str, Any]], params: dict[str, Any]
    ) -> pd.DataFrame:
        subject_ids = [str(s) for s in params.get("subject_ids") or [] if str(s)] or None
        try:
            decisions = self._decisions().decide_many(
                identity[0],
                inputs,
                version=identity[1],
                subject_ids=subject_ids,
                caller=str(params.get("caller") or DEFAULT_CALLER),
                purpose=str(params.get("purpose") or DEFAULT_PURPOSE),
            )
        except DecisionError as exc:
            raise invalid(str(exc).replace("application ", "row ")) from None
        rows = [
            {
                "outcome": d.outcome,
                "score": d.score,
                "reasons": json.dumps([r["reason"] for r in d.reasons]),
                "main_factors": json.dumps([f["factor"] for f in d.main_factors]),
                "explanation": json.dumps(d.explanation, sort_keys=True),
                "decision_id": d.decision_id,
                "recorded": RECORDED,
            }
            for d in decisions
        ]
        return pd.DataFrame(rows, columns=COLUMNS)

    # -- where it records ------------------------------------------------------------------
    def _decisions(self) -> DecisionService:
        with self._lock:
            if self._service is None:
                self._service = DecisionService.open()
            return self._service

    def _version(self) -> tuple[str, str] | None:
        """(name, version) of this registered model; None while its own run registers it."""
        with self._lock:
            if self._identity is not None:
                return self._identity
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self._run_id:
            return None  # the registration run checking its own input example: nothing served
        uri = Settings.resolve().mlflow_uri  # a client of its own: MLflow's globals untouched
        found = mlflow.MlflowClient(uri, uri).search_model_versions(f"run_id = '{self._run_id}'")
        if not found:
            raise invalid(ERR_UNREGISTERED.format(run_id=self._run_id))
        latest = max(found, key=lambda v: int(v.version))
        with self._lock:
            self._identity = (str(latest.name), str(latest.version))
        return self._identity


# MLflow "models from code": this file is the model definition that MLflow logs and executes
# on load, so nothing is pickled.
mlflow.models.set_model(RecordedModel())
