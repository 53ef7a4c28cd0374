"""Minimal recourse costs from actionable-recourse (Ustun et al.; CBC through python-mip).

Reads the problems written by ``recourse_export.py`` and prints, per denial, our minimal cost
and actionable-recourse's, with the largest difference. The cost function is made the same as
ours (``cost * |change| / spread``, summed) by giving each action element a linear
"percentile" function, which actionable-recourse's ``total`` cost type differences.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from recourse import ActionSet, RecourseBuilder


def helps(f: dict) -> bool:
    """Whether some feasible change of this feature lowers the score (else it is a constant)."""
    if f["direction"] >= 0 and f["w"] < 0 and f["x"] < f["ub"] - 1e-12:
        return True
    return f["direction"] <= 0 and f["w"] > 0 and f["x"] > f["lb"] + 1e-12


def solve(problem: dict) -> float | None:
    feats = [f for f in problem["features"] if helps(f)]
    # a feature that cannot help stays where it is: its term joins the intercept
    intercept = problem["intercept"] + sum(
        f["w"] * f["x"] for f in problem["features"] if not helps(f)
    )
    if not feats:
        return None
    names = [f["name"] for f in feats]
    # ActionSet wants data to infer types and default bounds; bounds are set explicitly below
    data = pd.DataFrame({f["name"]: [f["lb"], f["ub"]] for f in feats})
    for f in feats:
        if f["integer"]:
            data[f["name"]] = data[f["name"]].astype(int)
    action_set = ActionSet(X=data, names=names, y_desired=-1)
    for f in feats:
        e = action_set[f["name"]]
        e.variable_type = int if f["integer"] else float
        e.bounds = (f["lb"], f["ub"], "absolute")
        e.step_type = "absolute"
        e.step_size = f["step"]
        e.step_direction = f["direction"]
        e.actionable = True
        e.update_grid()
        unit = f["cost_per_unit"]
        e._interpolator = lambda v, unit=unit: np.asarray(v, dtype=float) * unit
    coefficients = np.array([f["w"] for f in feats])
    action_set.set_alignment(coefficients=coefficients)
    x = np.array([f["x"] for f in feats], dtype=float)
    builder = RecourseBuilder(
        solver="python-mip",
        action_set=action_set,
        coefficients=coefficients,
        intercept=float(intercept),
        x=x,
        mip_cost_type="total",
    )
    builder.print_flag = False
    info = builder.fit()
    return float(info["cost"]) if info["feasible"] else None


def main(path: str) -> None:
    with open(path) as fh:
        problems = json.load(fh)
    worst = 0.0
    agree = 0
    for i, p in enumerate(problems):
        theirs = solve(p)
        ours = p["ours"]
        same = (theirs is None and ours is None) or (
            theirs is not None and ours is not None and abs(theirs - ours) < 1e-6
        )
        agree += same
        if theirs is not None and ours is not None:
            worst = max(worst, abs(theirs - ours))
        print(
            f"{i:3d}  ours {ours}  actionable-recourse {theirs}  {'same' if same else 'DIFFERENT'}"
        )
    print(f"{agree} of {len(problems)} agree; largest difference {worst:.3g}")


if __name__ == "__main__":
    main(sys.argv[1])
