"""Group fairness of a credit model's decisions (``report``), and the blocking gate (``gate``).

The public API is re-exported here: :func:`fairness_report` measures approval-rate ratio,
demographic-parity and equalized-odds differences by each sensitive feature and their
intersection, with seeded bootstrap confidence intervals; :func:`evaluate_gate` checks a report
against :class:`FairnessThresholds`.
"""

from governance.core.fairness.gate import (
    GATE_FAILED,
    GATE_PASSED,
    FairnessThresholds,
    GateOn,
    GateResult,
    evaluate_gate,
)
from governance.core.fairness.report import (
    INTERSECTION_SEPARATOR,
    METRIC_KEY_SEPARATOR,
    FairnessReport,
    GroupingReport,
    fairness_report,
)

__all__ = [
    "GATE_FAILED",
    "GATE_PASSED",
    "INTERSECTION_SEPARATOR",
    "METRIC_KEY_SEPARATOR",
    "FairnessReport",
    "FairnessThresholds",
    "GateOn",
    "GateResult",
    "GroupingReport",
    "evaluate_gate",
    "fairness_report",
]
