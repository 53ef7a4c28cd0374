"""Typed resources for the external systems: the project and its state directory, MLflow, DVC.

Empty strings mean "resolve when the run starts": from ``GOVERNANCE_*``
environment variables, else the embedded defaults under ``.governance/`` (see
``governance.settings``). Nothing is read from the environment at import time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from governance.core.dataset import source_fingerprint
from governance.core.lineage import dvc_lock_outs
from governance.pipeline.workspace import Workspace
from governance.settings import Settings


class MlflowResource(dg.ConfigurableResource):
    """The MLflow tracking store and model registry."""

    tracking_uri: str = Field(default="", description="Default: sqlite:///<home>/mlflow.db")


class DvcResource(dg.ConfigurableResource):
    """The DVC repository's content-addressed storage: cache in the project, a remote."""

    remote: str = Field(
        default="", description="Local remote directory. Default: <home>/dvc-remote"
    )

    def locked_outputs(self, project_dir: Path) -> dict[str, dict[str, Any]]:
        """What ``dvc.lock`` records for each output (path -> md5, size, stage)."""
        return dvc_lock_outs(project_dir)


class GovernanceProject(dg.ConfigurableResource):
    """The project directory (params.yaml, expectations/, pipeline outputs) and its state."""

    project_dir: str = Field(default="", description="Default: GOVERNANCE_PROJECT or the cwd")
    home: str = Field(default="", description="State directory. Default: GOVERNANCE_HOME")
    dataset: str = Field(default="", description="Override params.yaml ingest.dataset")
    mlflow: MlflowResource = Field(default_factory=MlflowResource)
    dvc: DvcResource = Field(default_factory=DvcResource)

    def settings(self) -> Settings:
        """The project's settings, with this resource's overrides."""
        env: dict[str, str] = {}
        import os

        env.update(os.environ)
        if self.home:
            env["GOVERNANCE_HOME"] = self.home
        settings = Settings.resolve(self.project_dir or None, env)
        if self.mlflow.tracking_uri:
            settings = replace(settings, mlflow_uri=self.mlflow.tracking_uri)
        if self.dvc.remote:
            settings = replace(settings, dvc_remote=Path(self.dvc.remote).resolve())
        return settings

    def workspace(self) -> Workspace:
        """The project's workspace (params.yaml and the pipeline's files)."""
        settings = self.settings()
        overrides = {"ingest.dataset": self.dataset} if self.dataset else None
        return Workspace.open(settings.project_dir, settings=settings, overrides=overrides)

    def source_fingerprint(self) -> str:
        """md5 of the raw source's bytes, for the new-data sensor."""
        return source_fingerprint(self.workspace().source)


@dg.definitions
def resources() -> dg.Definitions:
    """The resources every asset gets (``project``)."""
    return dg.Definitions(resources={"project": GovernanceProject()})
