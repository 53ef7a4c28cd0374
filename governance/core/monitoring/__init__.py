"""Production monitoring of one model version: drift, performance and fairness (no Dagster).

Everything here is pure: it takes the version's *reference profile* (bins fitted on its training
split, see :func:`build_reference_profile`) and its production decisions as DataFrames
(:class:`ProductionFrames`, loaded from the ledger by :mod:`governance.lifecycle.monitoring`)
and returns a :class:`MonitoringReport` whose checks say whether the configured thresholds hold.

Population stability index (PSI)
--------------------------------
For a feature with bins ``i = 1..k``, reference (training) shares ``q_i`` and production shares
``p_i``::

    p'_i = max(p_i, eps)        q'_i = max(q_i, eps)
    PSI  = sum_i (p'_i - q'_i) * ln(p'_i / q'_i)

Each term is non-negative, so PSI >= 0, and it is 0 when the distributions agree bin for bin.
The floor ``eps`` (``psi_epsilon``, default 1e-4) keeps empty bins finite; shares are not
renormalised after flooring, so a bin empty on both sides contributes exactly 0. Conventional
reading: below 0.1 stable, 0.1-0.2 a moderate shift, above 0.2 a significant shift.

The bins are fitted once on the training split and stored with the profile:

* numeric features (and the score): ``psi_bins`` (default 10) quantile bins of the training
  values. The cut points are the training quantiles at ``1/k .. (k-1)/k``, de-duplicated (a
  discrete feature such as a credit-history grade gets one bin per value), intervals are closed on
  the right, ``(e_{j-1}, e_j]``, and the ends are open, ``(-inf, e_1]`` and ``(e_{k-1}, inf)``, so
  production values outside the training range still land in a bin. Missing values get their own
  bin, ``missing``.
* categorical features: one bin per category the model knows, plus ``missing`` and ``other``
  (a value the model has never seen; the decision service rejects those, so it stays empty unless
  decisions reached the ledger some other way).

Performance and fairness
------------------------
``y = 1`` is the adverse outcome (deny), as in :mod:`governance.core.fairness`. A decision's
*effective* outcome is its recorded outcome unless a reviewer overrode it (the last override
wins); production fairness is measured on effective outcomes. Performance needs ground truth:
the last ``outcome`` event of each decision. Note that outcomes are usually observed only for
approved applications (a denied applicant cannot default), so production performance describes
the approved population; the report says so.

Modules: :mod:`~governance.core.monitoring.params` (thresholds, schemas, errors),
:mod:`~governance.core.monitoring.drift` (bins, PSI, the reference profile),
:mod:`~governance.core.monitoring.production` (the decisions as frames, effective outcomes),
:mod:`~governance.core.monitoring.performance`, :mod:`~governance.core.monitoring.fairness`,
:mod:`~governance.core.monitoring.report` (the report and its checks) and
:mod:`~governance.core.monitoring.render` (Markdown and HTML). This package's namespace is the
public API.
"""

from governance.core.monitoring.drift import (
    Bins,
    FeatureProfile,
    ReferenceProfile,
    build_reference_profile,
    fit_categorical_bins,
    fit_numeric_bins,
    psi,
    psi_terms,
)
from governance.core.monitoring.fairness import (
    approval_by_group,
    production_fairness,
)
from governance.core.monitoring.params import (
    CHECKS,
    ERR_COUNTS_EMPTY,
    ERR_COUNTS_NEGATIVE,
    ERR_COUNTS_SHAPE,
    ERR_EPSILON,
    ERR_FRAMES,
    ERR_N_BINS,
    ERR_PARAM_RANGE,
    ERR_PARAM_TYPE,
    ERR_PARAM_UNKNOWN,
    ERR_PROFILE,
    ERR_PROFILE_FEATURES,
    MISSING_BIN,
    OTHER_BIN,
    PROFILE_SCHEMA,
    REPORT_SCHEMA,
    Kind,
    MonitoringParams,
)
from governance.core.monitoring.performance import (
    calibration_error,
    performance,
)
from governance.core.monitoring.production import (
    ProductionFrames,
    effective_outcomes,
    latest_by_decision,
)
from governance.core.monitoring.render import (
    render_html,
    render_markdown,
)
from governance.core.monitoring.report import (
    CheckOutcome,
    MonitoringReport,
    drift,
    monitor,
)

__all__ = [
    "CHECKS",
    "ERR_COUNTS_EMPTY",
    "ERR_COUNTS_NEGATIVE",
    "ERR_COUNTS_SHAPE",
    "ERR_EPSILON",
    "ERR_FRAMES",
    "ERR_N_BINS",
    "ERR_PARAM_RANGE",
    "ERR_PARAM_TYPE",
    "ERR_PARAM_UNKNOWN",
    "ERR_PROFILE",
    "ERR_PROFILE_FEATURES",
    "MISSING_BIN",
    "OTHER_BIN",
    "PROFILE_SCHEMA",
    "REPORT_SCHEMA",
    "Bins",
    "CheckOutcome",
    "FeatureProfile",
    "Kind",
    "MonitoringParams",
    "MonitoringReport",
    "ProductionFrames",
    "ReferenceProfile",
    "approval_by_group",
    "build_reference_profile",
    "calibration_error",
    "drift",
    "effective_outcomes",
    "fit_categorical_bins",
    "fit_numeric_bins",
    "latest_by_decision",
    "monitor",
    "performance",
    "production_fairness",
    "psi",
    "psi_terms",
    "render_html",
    "render_markdown",
]
