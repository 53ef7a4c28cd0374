"""Decisions visible in MLflow: the ledger's decisions mirrored to each version's training run."""
