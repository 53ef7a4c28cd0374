"""The registered model as an MLflow pyfunc: predictions with explanations.

``mlflow models serve -m models:/NAME@champion`` answers with the outcome, the score, the
principal reasons and the per-feature contributions of every row, computed by the same compiled
scorecard that the decision service and ``replay`` use.

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
from mlflow.pyfunc import PythonModel

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


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


class GovernedModel(PythonModel):
    """Scores applications with the compiled scorecard stored as the ``scorecard`` artifact."""

    scorecard: Scorecard
    recourse_policy: RecoursePolicy | None = None  # the ``recourse_policy`` artifact, if any

    @classmethod
    def from_scorecard_file(cls, path: str | Path) -> GovernedModel:
        model = cls()
        model.scorecard = Scorecard.from_dict(json.loads(Path(path).read_text()))
        return model

    def load_context(self, context: Any) -> None:
        scorecard = Path(context.artifacts["scorecard"])
        root = scorecard.parents[1]  # <model>/artifacts/scorecard.json
        verify_model(root, trusted_key(root, context.model_config), what=f"the model at {root}")
        self.scorecard = Scorecard.from_dict(json.loads(scorecard.read_text()))
        policy = context.artifacts.get("recourse_policy")
        if policy:
            self.recourse_policy = RecoursePolicy.from_dict(json.loads(Path(policy).read_text()))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        rows = []
        for record in model_input.to_dict(orient="records"):
            features = {k: _clean(v) for k, v in record.items() if k in self.scorecard.order}
            scored = self.scorecard.score(features)
            rows.append(
                {
                    "outcome": scored.outcome,
                    "score": scored.score,
                    "reasons": json.dumps([r["reason"] for r in scored.reasons]),
                    "explanation": json.dumps(scored.explanation.to_dict(), sort_keys=True),
                }
            )
        return pd.DataFrame(rows, columns=["outcome", "score", "reasons", "explanation"])


# MLflow "models from code": this file is the model definition that MLflow logs and executes
# on load, so nothing is pickled.
mlflow.models.set_model(GovernedModel())
