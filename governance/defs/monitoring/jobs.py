"""The job the daily monitoring schedule runs: the monitoring asset and its checks only."""

import dagster as dg

production_monitoring_job = dg.define_asset_job(
    "production_monitoring_job",
    selection=dg.AssetSelection.assets("production_monitoring"),
    description="Monitor the served model version from the decision ledger (drift, performance, "
    "fairness) and run its checks.",
)
