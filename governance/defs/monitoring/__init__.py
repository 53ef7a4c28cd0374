"""Production monitoring in Dagster: drift, performance and fairness computed from the ledger."""
