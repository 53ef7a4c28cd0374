"""Where things live. Resolved when asked, never at import time.

Everything the embedded default keeps lives under one state directory, ``GOVERNANCE_HOME``
(default ``.governance/`` in the project): the MLflow database and artifacts, the Dagster home,
the ledger and its keys and exported checkpoints, and the local DVC remote. Each location can be
moved on its own for users who outgrow one machine.

=============================  ==========================================================
variable                       default
=============================  ==========================================================
GOVERNANCE_PROJECT             the current directory (where params.yaml and dvc.yaml are)
GOVERNANCE_HOME                <project>/.governance
GOVERNANCE_MLFLOW_URI          sqlite:///<home>/mlflow.db
GOVERNANCE_ARTIFACTS           <home>/mlartifacts (artifact root of new MLflow experiments)
GOVERNANCE_DVC_REMOTE          <home>/dvc-remote
GOVERNANCE_LEDGER_URL          sqlite:///<home>/ledger.db (or postgresql://...)
GOVERNANCE_TILES               <home>/tiles (C2SP tiles published with each checkpoint)
GOVERNANCE_SIGNING_KEY         <home>/keys/model-signing.pem (ECDSA private key in PEM that
                               signs registered models; created on first registration)
GOVERNANCE_SIGNING_PUBLIC_KEY  the signing key's path with ``.pub`` (the key that loading a
                               version trusts)
GOVERNANCE_OPENLINEAGE_LOG     <home>/openlineage/events.jsonl (the default OpenLineage
                               transport: one JSON line per event; see governance.pipeline
                               for pointing the transport at a catalogue instead)
GOVERNANCE_EXPLORER_URL        http://127.0.0.1:8080 (links to the decision explorer)
GOVERNANCE_SEPARATION_OF_DUTIES  on: whoever registered a version cannot approve its promotion
GOVERNANCE_ACTOR               who runs the pipeline (recorded as ``registered_by``); default:
                               the operating-system user
=============================  ==========================================================

MLflow's own ``MLFLOW_TRACKING_URI`` is not read: MLflow rewrites it in-process whenever a
tracking URI is set, so it cannot say what the user configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

EXPLORER_ENV = "GOVERNANCE_EXPLORER_URL"
DEFAULT_EXPLORER = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Settings:
    """Where the project, its state, the registry, the ledger and the DVC remote live."""

    project_dir: Path
    home: Path
    mlflow_uri: str
    artifacts: Path
    dvc_remote: Path
    ledger_url: str
    signing_key: Path
    signing_public_key: Path
    openlineage_log: Path
    tiles: Path | None = None
    separation_of_duties: bool = True

    @property
    def dagster_home(self) -> Path:
        """Dagster's home under the state directory."""
        return self.home / "dagster"

    @property
    def tiles_root(self) -> Path:
        """Where checkpoint tiles are published, one folder per ledger id."""
        return self.tiles or self.home / "tiles"

    @classmethod
    def resolve(
        cls, project_dir: Path | str | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from ``GOVERNANCE_*`` variables (``env``, default the process's) or defaults."""
        env = os.environ if env is None else env
        project = Path(project_dir or env.get("GOVERNANCE_PROJECT") or Path.cwd()).resolve()
        home = Path(env.get("GOVERNANCE_HOME") or project / ".governance").resolve()
        signing_key = Path(
            env.get("GOVERNANCE_SIGNING_KEY") or home / "keys" / "model-signing.pem"
        ).resolve()
        return cls(
            project_dir=project,
            home=home,
            mlflow_uri=env.get("GOVERNANCE_MLFLOW_URI") or f"sqlite:///{home / 'mlflow.db'}",
            artifacts=Path(env.get("GOVERNANCE_ARTIFACTS") or home / "mlartifacts").resolve(),
            dvc_remote=Path(env.get("GOVERNANCE_DVC_REMOTE") or home / "dvc-remote").resolve(),
            ledger_url=env.get("GOVERNANCE_LEDGER_URL") or f"sqlite:///{home / 'ledger.db'}",
            signing_key=signing_key,
            signing_public_key=Path(
                env.get("GOVERNANCE_SIGNING_PUBLIC_KEY") or signing_key.with_suffix(".pub")
            ).resolve(),
            openlineage_log=Path(
                env.get("GOVERNANCE_OPENLINEAGE_LOG") or home / "openlineage" / "events.jsonl"
            ).resolve(),
            tiles=Path(env.get("GOVERNANCE_TILES") or home / "tiles").resolve(),
            separation_of_duties=_switch(env, "GOVERNANCE_SEPARATION_OF_DUTIES", default=True),
        )


def explorer_base(env: Mapping[str, str] | None = None) -> str:
    """The decision explorer's base URL (``GOVERNANCE_EXPLORER_URL``), without a trailing /."""
    env = os.environ if env is None else env
    return (env.get(EXPLORER_ENV) or DEFAULT_EXPLORER).rstrip("/")


def explorer_model_url(model: str, *, base: str | None = None) -> str:
    """The explorer's page of a registered model."""
    return f"{base or explorer_base()}/ui/models/{quote(model, safe='')}"


def explorer_version_url(model: str, version: str | int, *, base: str | None = None) -> str:
    """The explorer's page of one registered version."""
    return f"{explorer_model_url(model, base=base)}/versions/{quote(str(version), safe='')}"


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """An on/off environment variable; anything else is an error naming it."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"{name} must be on or off, got {value!r}")


def actor(env: Mapping[str, str] | None = None) -> str:
    """Who is running this (``GOVERNANCE_ACTOR``, else the operating-system user)."""
    import getpass

    env = os.environ if env is None else env
    return (env.get("GOVERNANCE_ACTOR") or "").strip() or getpass.getuser()
