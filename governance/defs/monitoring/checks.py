"""The monitoring asset's checks: drift, performance and fairness against params.yaml.

They are declared on the asset (``check_specs``) and their results come from the same
computation as its materialization, so a check always judges exactly the report it sits next to
(the model version and window chosen by the run's config). They are not blocking: nothing is
downstream of monitoring; a failed check is an alert (severity ERROR) in the UI.
"""

from __future__ import annotations

import dagster as dg

from governance.core.monitoring import MonitoringReport

ASSET = "production_monitoring"
DESCRIPTIONS = {
    "drift": "Input drift per feature (PSI against the training split, bins stored) and score "
    "drift stay within params.yaml monitoring.psi_max / score_psi_max.",
    "performance": "Once outcomes arrive: production AUC at least monitoring.min_auc and "
    "calibration error at most monitoring.max_calibration_error.",
    "fairness": "Approval-rate ratio by each sensitive attribute callers supplied at least "
    "monitoring.min_approval_ratio; with outcomes, equalized-odds difference at most "
    "monitoring.max_equalized_odds_difference.",
}
CHECK_SPECS = tuple(
    dg.AssetCheckSpec(name=f"{name}_within_thresholds", asset=ASSET, description=text)
    for name, text in DESCRIPTIONS.items()
)


def check_results(report: MonitoringReport) -> list[dg.AssetCheckResult]:
    """One result per check; a check without enough data passes and says it was not evaluated.

    Parameters
    ----------
    report : MonitoringReport
        The report the asset just computed.

    Returns
    -------
    list of dagster.AssetCheckResult
    """
    out = []
    for name in DESCRIPTIONS:
        check = report.checks[name]
        out.append(
            dg.AssetCheckResult(
                check_name=f"{name}_within_thresholds",
                asset_key=ASSET,
                passed=check.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=check.message,
                metadata={
                    "evaluated": check.evaluated,
                    "failures": dg.MetadataValue.json(list(check.failures)),
                    "checked": dg.MetadataValue.json(list(check.checked)),
                    "model": f"{report.model.get('name')} v{report.model.get('version')}",
                },
            )
        )
    return out
