"""Hand-written fakes of outside systems, for tests where the real one adds nothing.

:class:`FakeRegistry` stands in for the MLflow registry behind the decision service: a
:class:`~governance.registry.source.ModelSource`, as
:class:`~governance.registry.mlflow.ModelCache` is, with versions and aliases in memory and the
same typed errors. ``tests/registry/test_model_source.py`` runs one contract over both, and
checks that the model the fake serves is the one the pipeline registers.

:func:`trained_model` is a real model, not a stub: the pipeline's own ``ingest``, ``validate``,
``split`` and ``train`` stages run on the repository's HMDA data with its ``params.yaml`` (the
same seeds), in a throwaway workspace, and the version is built from the files they write as
the registered pyfunc loads them (scorecard, recourse policy, input contract). Only the registry
around it is fake, and its lineage says so (run id ``fake-...``, ``run.source`` ``tests.fakes``,
no fairness verdict: that stage did not run).
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from governance.core import dataset as ds
from governance.core.contract import Contract
from governance.core.lineage import environment, git_state, lineage_id, package_version, params_hash
from governance.core.recourse import RecoursePolicy
from governance.core.scorecard import Scorecard
from governance.pipeline import stages
from governance.pipeline.workspace import PATHS, Workspace
from governance.registry.mlflow import (
    AliasNotFound,
    LoadedModel,
    ModelNotFound,
    RegistryUnavailable,
    VersionNotFound,
    version_tags,
)
from governance.settings import Settings, actor

REPO = Path(__file__).resolve().parents[1]
MODEL = "mortgage-denial"
STAGES = ("ingest", "validate", "split", "train")  # what a version needs; no gate is skipped
FAKE_SOURCE = "tests.fakes"
NOT_EVALUATED = "not evaluated: a version of the registry fake (tests/fakes.py)"


@dataclass(frozen=True)
class Trained:
    """A version trained as the pipeline trains it, and the held-out split it never saw."""

    model: LoadedModel
    test: pd.DataFrame


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def _lineage(ws: Workspace, name: str, version: str) -> dict[str, Any]:
    """The lineage a registered version carries (same fields as the pipeline's), honestly fake
    where no fake can know: the run, the fairness verdict and metrics (those stages did not
    run) and the storage (nothing was put in a DVC cache)."""
    git = git_state(REPO)
    validation = _read(ws.path("validation"))
    contract = stages.input_contract(ws, ds.read_csv(ws.path("train")))
    run_id = f"fake-run-{name}-{version}"
    lineage: dict[str, Any] = {
        "schema": "governance.lineage/1",
        "dataset": ws.spec.name,
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "git_changes": list(git.changes),
        "package_version": package_version(),
        "datasets": [
            {
                "name": n,
                "path": getattr(PATHS, n),
                "md5": ds.file_md5(ws.path(n)),
                "size": ws.path(n).stat().st_size,
                "rows": len(ds.read_csv(ws.path(n))),
            }
            for n in ("raw", "train", "test")
        ],
        "params": ws.params,
        "params_hash": params_hash(ws.params),
        "environment": environment(REPO),
        "validation": {
            "success": validation["success"],
            "suite": validation["suite"],
            "suite_path": validation["suite_path"],
            "statistics": validation["statistics"],
            "data_md5": validation["data_md5"],
            "result": PATHS.validation,
        },
        "fairness": {"passed": None, "message": NOT_EVALUATED, "not_gated": [], "metrics": {}},
        "metrics": {},
        "model_card": PATHS.card_md,
        "run": {"source": FAKE_SOURCE, "mlflow_run_id": run_id},
        "registered_by": actor(),
        "storage": {"cache": None, "remote": None},
        "contract": {
            "contract_id": contract.contract_id,
            "policy": contract.policy.to_dict(),
            "artifact": "contract/contract.json",
        },
        "model": name,
        "version": version,
        "mlflow_run_id": run_id,
        "model_uri": f"models:/{name}/{version}",
    }
    return lineage


@cache
def trained_model(name: str = MODEL, version: str = "1") -> Trained:
    """HMDA through the pipeline's stages up to ``train`` (once per process), as a version."""
    with tempfile.TemporaryDirectory(prefix="fake-registry-") as tmp:
        root = Path(tmp)
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        shutil.copytree(REPO / "expectations", root / "expectations")
        ws = Workspace.open(root, settings=Settings.resolve(root, env={}))
        for stage in STAGES:
            result = stages.STAGES[stage](ws, None)
            assert result.passed, f"{stage}: {result.message}"
        contract = stages.input_contract(ws, ds.read_csv(ws.path("train")))
        # As the registered pyfunc loads them: from the JSON documents the stages wrote.
        scorecard = Scorecard.from_dict(_read(ws.path("scorecard")))
        policy = RecoursePolicy.from_dict(_read(ws.path("recourse_policy")))
        contract = Contract.from_dict(json.loads(json.dumps(contract.to_dict())))
        lineage = _lineage(ws, name, version)
        test = pd.read_csv(ws.path("test"))  # as the service tests always read it
    model = LoadedModel(
        name=name,
        version=version,
        scorecard=scorecard,
        lineage=lineage,
        lineage_id=lineage_id(lineage),
        mlflow_run_id=lineage["mlflow_run_id"],
        recourse_policy=policy,
        contract=contract,
    )
    return Trained(model, test)


@dataclass
class FakeRegistry:
    """Registered versions and aliases in memory, answering as ``ModelCache`` does.

    ``down`` makes every question fail as an unreachable registry does; ``loads`` counts the
    versions loaded afresh (replay), ``asked`` the alias questions that reached the registry.
    """

    versions: dict[tuple[str, str], LoadedModel] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    down: bool = False
    loads: list[tuple[str, str]] = field(default_factory=list)
    asked: list[tuple[str, str]] = field(default_factory=list)
    _kept: dict[tuple[str, str], LoadedModel] = field(default_factory=dict)

    def register(
        self, model: LoadedModel, *aliases: str, name: str | None = None, version: str | None = None
    ) -> None:
        """Register ``model`` (as ``name``/``version`` if given) and point ``aliases`` at it."""
        name = name or model.name
        version = str(version or model.version)
        lineage = {
            **model.lineage,
            "model": name,
            "version": version,
            "model_uri": f"models:/{name}/{version}",
        }
        self.versions[(name, version)] = replace(
            model, name=name, version=version, lineage=lineage, lineage_id=lineage_id(lineage)
        )
        for alias in aliases:
            self.set_alias(name, alias, version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at a registered version (as MLflow's client does)."""
        self._require(name)
        if (name, str(version)) not in self.versions:
            raise VersionNotFound(name, str(version))
        self.aliases[(name, alias)] = str(version)

    def _available(self) -> None:
        if self.down:
            raise RegistryUnavailable("the fake registry is down")

    def _require(self, name: str) -> None:
        if not any(n == name for n, _ in self.versions):
            raise ModelNotFound(name)

    def _version(self, name: str, version: str) -> LoadedModel:
        self._available()
        found = self.versions.get((name, str(version)))
        if found is None:
            self._require(name)
            raise VersionNotFound(name, str(version))
        lineage = copy.deepcopy(found.lineage)  # as MLflow answers: aliases and tags of now
        named = [a for (n, a), v in self.aliases.items() if (n, v) == (name, found.version)]
        lineage["aliases"] = sorted(named)
        lineage["tags"] = version_tags(lineage)
        return replace(found, lineage=lineage)

    def get(self, name: str, version: str) -> LoadedModel:
        """A registered version, kept once asked for."""
        key = (name, str(version))
        if key not in self._kept:
            self._kept[key] = self._version(name, str(version))
        return self._kept[key]

    def load(self, name: str, version: str) -> LoadedModel:
        """A registered version afresh (a new object, never the kept one)."""
        loaded = self._version(name, str(version))
        self.loads.append((name, str(version)))
        return loaded

    def registry_alias(self, name: str, alias: str) -> str:
        """The version ``alias`` names now."""
        self._available()
        self.asked.append((name, alias))
        found = self.aliases.get((name, alias))
        if found is None:
            self._require(name)
            raise AliasNotFound(name, alias)
        return found
