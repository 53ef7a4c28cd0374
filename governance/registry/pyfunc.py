"""The registered model as an MLflow pyfunc: predictions with explanations.

``mlflow models serve -m models:/NAME@champion`` answers with the outcome, the score, the
principal reasons and the per-feature contributions of every row, computed by the same compiled
scorecard that the decision service and ``replay`` use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc import PythonModel

from governance.core.recourse import RecoursePolicy
from governance.core.scorecard import Scorecard


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
        self.scorecard = Scorecard.from_dict(
            json.loads(Path(context.artifacts["scorecard"]).read_text())
        )
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
