"""The provenance of a registered model version, for auditors and other tools.

:func:`version_prov` builds the version's W3C PROV document (``governance lineage MODEL
VERSION --format prov-json|prov-n`` and the evidence pack): its lineage from the registry, the
stage runs that made it from the OpenLineage event log (when the log holds them; otherwise the
pipeline's stage graph over the lineage's datasets), and every approver who pointed an alias at
it from the ledger.

:func:`verify_version` (``governance lineage MODEL VERSION --verify-signature``) checks a
version's signed files and provenance in the artifact store, and that they are the ones its
registration ledger event recorded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prov.model import ProvDocument

from governance.core.lineage import without_credentials
from governance.core.provenance import serialize, stage_records, version_provenance
from governance.core.signing import PROVENANCE_FILE, SIGNATURE_FILE
from governance.ledger import Ledger
from governance.ledger.paging import iter_find
from governance.lifecycle.promotion import MOVES, events
from governance.registry import mlflow as registry
from governance.registry import signing
from governance.settings import Settings

ERR_LOG_LINE = "{path} line {line} is not a JSON object: {problem}"
ERR_NO_REGISTRATION = "the ledger has no registration event of {model} version {version}"
ERR_NOT_RECORDED = (
    "{what}: {key} {found} is not the {recorded} that registration ledger event {event} recorded"
)


def read_event_log(path: Path) -> list[dict[str, Any]]:
    """Every event of an OpenLineage file-transport log (one JSON object per line).

    A last line without its newline (a writer killed mid-line) is left out; any other line that
    is not a JSON object is an error naming the line. A missing log is an empty one.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    # What follows the last newline is "" or a torn line: left out either way.
    for n, line in enumerate(text.split("\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ValueError(ERR_LOG_LINE.format(path=path, line=n, problem=exc)) from None
        if not isinstance(doc, dict):
            raise ValueError(ERR_LOG_LINE.format(path=path, line=n, problem=type(doc).__name__))
        out.append(doc)
    return out


def approvals(ledger: Ledger, model: str, version: str) -> list[dict[str, Any]]:
    """Alias moves to this version that a person approved (promotions and rollbacks)."""
    return [
        {
            "event_id": e["event_id"],
            "action": e["action"],
            "alias": e["alias"],
            "approver": e["approver"],
            "reason": e["reason"],
            "timestamp": e["ts"],
        }
        for e in events(ledger, model, alias=None)
        if e["version"] == version and e["action"] in MOVES and e["approver"]
    ]


def recorded_stages(settings: Settings, model: str, version: str) -> list[dict[str, Any]]:
    """The stage runs the event log records for a version (see :func:`stage_records`).

    The registry is named without credentials; events logged before that named it by its raw
    URI, and are found by it.
    """
    events = read_event_log(settings.openlineage_log)
    root = str(settings.project_dir)
    for namespace in dict.fromkeys((without_credentials(settings.mlflow_uri), settings.mlflow_uri)):
        stages = stage_records(events, namespace=namespace, model=model, version=version, root=root)
        if stages:
            return stages
    return []


def version_prov(
    settings: Settings, ledger: Ledger, model: str, version: str | None
) -> ProvDocument:
    """The W3C PROV document of a registered model version (``None``: the newest).

    Raises
    ------
    LookupError
        If the version is not registered or its lineage cannot be resolved.
    """
    lineage = registry.resolve(settings, model, version)
    version = str(lineage["version"])
    stages = recorded_stages(settings, model, version)
    signing = {
        k.removeprefix("signing."): v
        for k, v in (lineage.get("tags") or {}).items()
        if k.startswith("signing.")
    }
    return version_provenance(
        lineage,
        stages=stages,
        approvals=approvals(ledger, model, version),
        signing=signing,
    )


def registration_digests(ledger: Ledger, model: str, version: str) -> tuple[str, dict[str, Any]]:
    """The registration ledger event of a version and the signing digests it recorded."""
    for record in iter_find(ledger, model=model, version=version, type="registration"):
        return record.id, dict(record.body.get("signing") or {})
    raise LookupError(ERR_NO_REGISTRATION.format(model=model, version=version))


def verify_version(
    settings: Settings, ledger: Ledger, model: str, version: str | None
) -> dict[str, Any]:
    """Check a registered version's signature and provenance, and the ledger's record of them.

    The model directory in the artifact store must match its OpenSSF signature by the trusted
    key, its provenance statement must be signed by that key, name exactly those files and agree
    with the version's lineage, and both files must be the ones the registration ledger event
    recorded (a holder of the signing key who re-signs a changed model is caught there).

    Raises
    ------
    ModelIntegrityError
        Naming the files, key or lineage fields that differ.
    LookupError
        If the version is unknown or has no registration event.
    """
    lineage = registry.resolve(settings, model, version)
    version = str(lineage["version"])
    what = f"{model} version {version}"
    with tempfile.TemporaryDirectory() as tmp:
        _, signed = signing.download_verified(
            settings, f"models:/{model}/{version}", Path(tmp), lineage=lineage, what=what
        )
    event_id, recorded = registration_digests(ledger, model, version)
    for key in ("signature_sha256", "provenance_sha256"):
        if recorded.get(key) != getattr(signed, key):
            raise signing.ModelIntegrityError(
                ERR_NOT_RECORDED.format(
                    what=what,
                    key=key,
                    found=getattr(signed, key),
                    event=event_id,
                    recorded=recorded.get(key),
                )
            )
    return {
        "model": model,
        "version": version,
        "verified": True,
        **signed.digests(),
        "files": len(signed.files),
        "registration_event": event_id,
    }


# pack path -> what it holds (the evidence pack's provenance/ folder)
PACK_PROV = "provenance/prov.json"
PACK_SIGNATURE = f"provenance/{SIGNATURE_FILE}"
PACK_STATEMENT = f"provenance/{PROVENANCE_FILE}"
PACK_PUBLIC_KEY = "provenance/model-signing.pub"


def evidence_files(
    settings: Settings, ledger: Ledger, model: str, version: str
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The provenance part of a version's evidence pack, and whether it verified.

    Returns
    -------
    tuple
        Pack path -> bytes: the PROV-JSON document, the OpenSSF signature and the SLSA
        provenance statement exactly as stored with the model, and the trusted public key; and
        ``{"verified": bool, "problem": str | None}`` from :func:`verify_version` (a pack of a
        version that does not verify says so rather than failing).
    """
    files = {PACK_PROV: serialize(version_prov(settings, ledger, model, version), "prov-json")}
    out = {k: v.encode() for k, v in files.items()}
    with tempfile.TemporaryDirectory() as tmp:
        local = signing.download(f"models:/{model}/{version}", Path(tmp))
        for pack, name in ((PACK_SIGNATURE, SIGNATURE_FILE), (PACK_STATEMENT, PROVENANCE_FILE)):
            if (local / name).is_file():
                out[pack] = (local / name).read_bytes()
    if settings.signing_public_key.is_file():
        out[PACK_PUBLIC_KEY] = settings.signing_public_key.read_bytes()
    try:
        verify_version(settings, ledger, model, version)
        check: dict[str, Any] = {"verified": True, "problem": None}
    except (signing.ModelIntegrityError, LookupError) as exc:
        check = {"verified": False, "problem": str(exc)}
    return out, check
