"""The provenance of a registered model version, for auditors and other tools.

:func:`version_prov` builds the version's W3C PROV document (``governance lineage MODEL
VERSION --format prov-json|prov-n`` and the evidence pack): its lineage from the registry, the
stage runs that made it from the OpenLineage event log (when the log holds them; otherwise the
pipeline's stage graph over the lineage's datasets), and every approver who pointed an alias at
it from the ledger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prov.model import ProvDocument

from governance.core.provenance import stage_records, version_provenance
from governance.ledger import Ledger
from governance.lifecycle.promotion import MOVES, events
from governance.registry import mlflow as registry
from governance.settings import Settings

ERR_LOG_LINE = "{path} line {line} is not a JSON object: {problem}"


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
    stages = stage_records(
        read_event_log(settings.openlineage_log),
        namespace=settings.mlflow_uri,
        model=model,
        version=version,
        root=str(settings.project_dir),
    )
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
