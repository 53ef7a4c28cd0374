import dagster as dg

governed_pipeline = dg.define_asset_job(
    "governed_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("monitoring"),
    description="Ingest → validate → split → train → evaluate → fairness → alternatives → model"
    " card → register.",
)
