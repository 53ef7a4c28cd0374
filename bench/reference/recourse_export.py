"""Export the HMDA held-out denials and our minimal recourse costs for an outside check.

Run with the project's environment; then run ``actionable_recourse.py`` (beside this file) in a
separate environment that has ``recourse`` (actionable-recourse 1.0.0, Ustun et al.) and
``mip`` (CBC) installed, on the exported file::

    .venv/bin/python bench/reference/recourse_export.py /tmp/recourse-problems.json
    python3 -m venv /tmp/ar && /tmp/ar/bin/pip install recourse==1.0.0
    /tmp/ar/bin/python bench/reference/actionable_recourse.py /tmp/recourse-problems.json

It is not part of the tests: actionable-recourse declares IBM CPLEX as a hard dependency.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from governance.core.contract import derive_contract
from governance.core.dataset import load_spec, read_source
from governance.core.recourse import MARGIN, build_policy, compute
from governance.core.scorecard import compile_pipeline
from governance.core.training import TrainParams, model_inputs, split, train
from governance.core.validation import load_suite

REPO = Path(__file__).resolve().parents[2]


def main(out: Path) -> None:
    spec = load_spec("hmda")
    frame = read_source(spec.source).rename(columns=spec.rename)
    train_frame, test = split(frame, spec, test_size=0.25, seed=20240611)
    params = TrainParams(seed=20240611)
    scorecard = compile_pipeline(train(train_frame, spec, params), spec, train_frame, params)
    contract = derive_contract(spec, load_suite(REPO / spec.suite), train_frame)
    policy = build_policy(spec, scorecard, contract)
    x = model_inputs(test, spec)
    scores, _ = scorecard.score_frame(x)
    t = math.log(params.threshold / (1 - params.threshold)) - MARGIN
    problems = []
    for inputs in x[scores >= params.threshold].to_dict(orient="records"):
        rc = compute(scorecard, policy, inputs)
        features = []
        for a in policy.actions:
            if not a.actionable:
                continue
            if a.kind == "numeric":
                n = scorecard.numeric[a.feature]
                assert a.step and a.low is not None and a.high is not None
                features.append(
                    {
                        "name": a.feature,
                        "x": inputs[a.feature],
                        "w": n["weight"] / n["scale"],
                        "direction": {"decrease": -1, "increase": 1, "any": 0}[a.action],
                        "step": a.step,
                        "lb": math.ceil(a.low / a.step - 1e-9) * a.step,
                        "ub": math.floor(a.high / a.step + 1e-9) * a.step,
                        "cost_per_unit": a.cost / a.spread,
                        "integer": False,
                    }
                )
            else:  # a yes/no category as a 0/1 variable
                w = scorecard.categorical[a.feature]["weights"]
                features.append(
                    {
                        "name": a.feature,
                        "x": 1 if inputs[a.feature] == "yes" else 0,
                        "w": w["yes"] - w["no"],
                        "direction": {"decrease": -1, "increase": 1, "any": 0}[a.action],
                        "step": 1,
                        "lb": 0,
                        "ub": 1,
                        "cost_per_unit": a.cost,
                        "integer": True,
                    }
                )
        # score(x) = logit(x) - t: the decision flips when it is <= 0
        offset = rc.logit - t - sum(f["w"] * f["x"] for f in features)
        problems.append(
            {
                "features": features,
                "intercept": offset,
                "ours": rc.combined.cost if rc.combined else None,
                "train": {f["name"]: [0.0, 1.0] for f in features},
            }
        )
    out.write_text(json.dumps(problems, indent=1))
    print(f"{len(problems)} denials written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
