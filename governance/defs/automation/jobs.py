import dagster as dg

governed_pipeline = dg.define_asset_job(
    "governed_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest → validate → split → train → evaluate → fairness → model card → register.",
)
