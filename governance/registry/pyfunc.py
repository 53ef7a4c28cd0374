"""The registered model as an MLflow pyfunc: predictions with explanations.

:class:`GovernedModel` scores with the compiled scorecard the decision service and ``replay``
use, after checking each row against the version's input contract (a violation refuses the
whole request: MLflow's scoring server answers 400 naming row, feature, value and bound). It
records nothing: the model a version is registered with is its subclass
:class:`governance.decisions.pyfunc.RecordedModel`, which records every prediction in the
decision ledger (no unaudited path; see that module).

It refuses to load unless its directory matches its OpenSSF signature by the trusted public key
and its provenance statement names exactly those files
(:func:`governance.core.signing.verify_model`): the key given as ``model_config``
``signing_public_key`` (the decision service passes its own), else ``GOVERNANCE_SIGNING_PUBLIC_KEY``
/ the state directory's ``keys/model-signing.pub``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from governance.core.contract import Contract, ContractViolation, Violation
from governance.core.recourse import RecoursePolicy
from governance.core.scorecard import Scorecard
from governance.core.signing import SignatureError, verify_model
from governance.registry.signing import PUBLIC_KEY_CONFIG
from governance.settings import Settings

ERR_KEY_IN_MODEL = "the model at {root} names its own signing key in MLmodel: refusing to trust it"


def trusted_key(root: Path, model_config: dict[str, Any] | None) -> Path:
    """The public key to check a model with: the loader's, else the configured one.

    The model is logged with an empty ``signing_public_key``, so a key in the loader's
    ``model_config`` came from the loader. A model whose own ``MLmodel`` names a key (a
    changed file, not yet checked) could name its forger's: refused.
    """
    mlmodel = yaml.safe_load((root / "MLmodel").read_text()) or {}
    if (mlmodel.get("model_config") or {}).get(PUBLIC_KEY_CONFIG):
        raise SignatureError(ERR_KEY_IN_MODEL.format(root=root))
    given = (model_config or {}).get(PUBLIC_KEY_CONFIG)
    return Path(given) if given else Settings.resolve().signing_public_key


LEDGER_ENV = "GOVERNANCE_PYFUNC_LEDGER"
DEFAULT_CALLER = "mlflow-pyfunc"
DEFAULT_PURPOSE = "mlflow pyfunc prediction"
#: The pyfunc's output columns: ``reasons`` are principal (adverse-action) reasons, given for
#: adverse outcomes only; favorable outcomes give their ``main_factors`` instead.
COLUMNS = ["outcome", "score", "reasons", "main_factors", "explanation", "decision_id", "recorded"]
#: The MLflow params a request may send (the signature declares them, with these defaults).
PARAMS: dict[str, Any] = {"purpose": DEFAULT_PURPOSE, "caller": DEFAULT_CALLER, "subject_ids": [""]}


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


class GovernedModel(PythonModel):
    """Scores applications with the compiled scorecard stored as the ``scorecard`` artifact.

    Every row is first judged by the version's input contract (the ``contract`` artifact):
    a row that breaks a hard rule refuses the whole request, as the decision service does.
    """

    scorecard: Scorecard
    recourse_policy: RecoursePolicy | None = None  # the ``recourse_policy`` artifact, if any
    contract: Contract | None = None

    @classmethod
    def from_scorecard_file(cls, path: str | Path) -> GovernedModel:
        """A scorer for the registration's own signature inference."""
        model = cls()
        model.scorecard = Scorecard.from_dict(json.loads(Path(path).read_text()))
        return model

    def load_context(self, context: Any) -> None:
        """Verify the model's signature, then load its scorecard, recourse policy and contract."""
        artifacts = context.artifacts
        scorecard = Path(artifacts["scorecard"])
        root = scorecard.parents[1]  # <model>/artifacts/scorecard.json
        verify_model(root, trusted_key(root, context.model_config), what=f"the model at {root}")
        self.scorecard = Scorecard.from_dict(json.loads(scorecard.read_text()))
        policy = artifacts.get("recourse_policy")
        if policy:
            self.recourse_policy = RecoursePolicy.from_dict(json.loads(Path(policy).read_text()))
        if "contract" in artifacts:
            self.contract = Contract.from_dict(json.loads(Path(artifacts["contract"]).read_text()))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Outcome, score, reasons (or main factors) and explanation of every row, unrecorded."""
        return self.score_only(self.inputs(model_input), "")

    def inputs(self, model_input: pd.DataFrame) -> list[dict[str, Any]]:
        """The model's inputs of each row, NaN read as missing."""
        return [
            {k: _clean(v) for k, v in record.items() if k in self.scorecard.order}
            for record in model_input.to_dict(orient="records")
        ]

    def score_only(self, inputs: list[dict[str, Any]], recorded: str) -> pd.DataFrame:
        """Check every row against the contract, then score; ``recorded`` says it was not."""
        if self.contract is not None:
            violations: list[Violation] = []
            for n, features in enumerate(inputs):
                violations.extend(self.contract.check(features, row=n).violations)
            if violations:
                raise invalid(str(ContractViolation(violations)))
        rows = []
        for features in inputs:
            try:
                scored = self.scorecard.score(features)
            except ValueError as exc:
                raise invalid(str(exc)) from None
            rows.append(
                {
                    "outcome": scored.outcome,
                    "score": scored.score,
                    "reasons": json.dumps([r["reason"] for r in scored.reasons]),
                    "main_factors": json.dumps([f["factor"] for f in scored.factors]),
                    "explanation": json.dumps(scored.explanation.to_dict(), sort_keys=True),
                    "decision_id": "",
                    "recorded": recorded,
                }
            )
        return pd.DataFrame(rows, columns=COLUMNS)


def invalid(message: str) -> Exception:
    """The error MLflow's scoring server answers with 400 (not a 500)."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


# MLflow "models from code": a version registered with this file scores without recording; the
# pipeline registers :mod:`governance.decisions.pyfunc` instead. Nothing is pickled.
mlflow.models.set_model(GovernedModel())
