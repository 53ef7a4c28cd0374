"""Project configuration the subject services read: params.yaml sections and dataset specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from governance.core.dataset import DatasetSpec, builtin_specs, load_spec

ERR_PARAMS = "cannot read {path}: {problem}"
ERR_NO_SPEC = "no dataset spec names model {model!r} (looked at {looked})"


def params(project_dir: Path) -> dict[str, Any]:
    """``params.yaml`` of the project ({} when there is none)."""
    path = project_dir / "params.yaml"
    if not path.is_file():
        return {}
    try:
        return dict(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as exc:
        raise ValueError(ERR_PARAMS.format(path=path, problem=exc)) from None


def spec_for_model(project_dir: Path, model: str) -> DatasetSpec:
    """The dataset spec whose model is ``model``: the project's configured one, then built-ins."""
    configured = str((params(project_dir).get("ingest") or {}).get("dataset") or "")
    looked = []
    if configured.endswith((".yaml", ".yml")) and not Path(configured).is_absolute():
        configured = str(project_dir / configured)
    for name in dict.fromkeys([configured, *builtin_specs()]):
        if not name:
            continue
        spec = load_spec(name)
        looked.append(spec.name)
        if spec.model_name == model:
            return spec
    raise LookupError(ERR_NO_SPEC.format(model=model, looked=looked))
