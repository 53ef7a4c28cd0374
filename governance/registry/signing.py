"""Signed registered models: sign a logged model at registration, verify one before loading.

The model directory MLflow stores (``MLmodel``, ``artifacts/``, ``code/`` ...) gains two files
at registration, uploaded into the logged model's own artifacts before the version is
registered: the SLSA provenance statement (``provenance.intoto.jsonl``) and the OpenSSF
model-signing signature (``model.sig``) over every file (see :mod:`governance.core.signing`).
Loading a version downloads the directory, checks both with the trusted public key and the
statement against the version's lineage, and only then loads what was checked.

The signing key is ``GOVERNANCE_SIGNING_KEY`` (default ``<home>/keys/model-signing.pem``,
created on first registration); loading trusts ``GOVERNANCE_SIGNING_PUBLIC_KEY`` (default: the
same path with ``.pub``).

``mlflow`` is imported inside the functions, as in :mod:`governance.registry.mlflow`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from governance.core.signing import (
    PROVENANCE_FILE,
    SIGNATURE_FILE,
    SignatureError,
    SignedModel,
    ensure_keypair,
    sign_model,
    verify_model,
)
from governance.settings import Settings

SIGNING_TAG_PREFIX = "signing."
PUBLIC_KEY_CONFIG = "signing_public_key"  # the pyfunc's model_config key: the key it trusts
UNSIGNED_MARK = f"is not signed: no {SIGNATURE_FILE}"  # core.signing's words for no signature


class ModelIntegrityError(RuntimeError):
    """A registered version whose files, signature or provenance do not check out.

    Attributes
    ----------
    files
        The files that differ from the signature (when that is what failed).
    """

    def __init__(self, message: str, files: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.files = files


def materials(project_dir: Path, lineage: Mapping[str, Any]) -> dict[str, str]:
    """``params.yaml`` and the environment's lock file, by path -> sha256 of their bytes."""
    out = {"params.yaml": hashlib.sha256((project_dir / "params.yaml").read_bytes()).hexdigest()}
    env = lineage.get("environment") or {}
    if env.get("lock_file") and env.get("lock_sha256"):
        out[str(env["lock_file"])] = str(env["lock_sha256"])
    return out


def sign_logged_model(
    settings: Settings,
    client: Any,
    *,
    model_id: str,
    model_uri: str,
    dest: Path,
    lineage: Mapping[str, Any],
    materials: Mapping[str, str],
    code_url: str,
) -> SignedModel:
    """Sign a logged model and upload both files into its artifacts.

    ``dest`` is an empty local directory the model is downloaded to.
    """
    import mlflow.artifacts

    keys = ensure_keypair(settings.signing_key, settings.signing_public_key)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))
    signed = sign_model(
        local, keys.private, lineage=lineage, materials=materials, code_url=code_url
    )
    for name in (PROVENANCE_FILE, SIGNATURE_FILE):
        client.log_model_artifact(model_id, str(local / name))
    return signed


def signing_tags(signed: SignedModel) -> dict[str, str]:
    """The digests as model-version tags (``signing.signature_sha256`` ...)."""
    return {f"{SIGNING_TAG_PREFIX}{k}": v for k, v in signed.digests().items()}


def download(model_uri: str, dest: Path) -> Path:
    """Download a model directory as stored (nothing checked)."""
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))


def download_verified(
    settings: Settings,
    model_uri: str,
    dest: Path,
    *,
    lineage: Mapping[str, Any] | None,
    what: str,
) -> tuple[Path, SignedModel]:
    """Download a model directory and check it (see :func:`governance.core.signing.verify_model`).

    Raises
    ------
    ModelIntegrityError
        If a file differs from the signature, the signature or statement is not by the trusted
        key, or the statement disagrees with the lineage.
    """
    local = download(model_uri, dest)
    try:
        return local, verify_model(local, settings.signing_public_key, lineage=lineage, what=what)
    except SignatureError as exc:
        raise ModelIntegrityError(str(exc), exc.files) from None
