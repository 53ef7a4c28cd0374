"""One contract for every :class:`~governance.registry.source.ModelSource`: the MLflow
``ModelCache`` on a real SQLite registry (the session's pipeline run) and the hand-written
``FakeRegistry`` of ``tests/fakes.py``, so tests that run on the fake test what the service
meets.

Both hold ``mortgage-denial`` version 1 with alias ``candidate``; the same assertions run on
each. The fake must also serve the very model the pipeline registers (same scorecard, recourse
policy and input contract), and carry a version's lineage fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakes import FakeRegistry, trained_model

from governance.core.lineage import lineage_id
from governance.registry import mlflow as registry
from governance.registry.source import ModelSource
from governance.settings import Settings

MODEL = "mortgage-denial"
ALIAS = "candidate"

# The fields of a registered version's lineage (``registry.resolve``): what trace, the model
# card and the explorer read. Both sources must carry exactly these.
LINEAGE_FIELDS = {
    "schema",
    "dataset",
    "git_commit",
    "git_dirty",
    "git_changes",
    "package_version",
    "datasets",
    "params",
    "params_hash",
    "environment",
    "validation",
    "fairness",
    "metrics",
    "model_card",
    "run",
    "registered_by",
    "storage",
    "contract",
    "model",
    "version",
    "mlflow_run_id",
    "model_uri",
    "aliases",
    "tags",
}


@pytest.fixture(params=["mlflow", "fake"])
def source(request: pytest.FixtureRequest) -> Iterator[ModelSource]:
    """The real registry of the session's pipeline run, or the fake holding the same."""
    if request.param == "mlflow":
        _, settings = request.getfixturevalue("trained")
        yield registry.ModelCache(settings)
    else:
        fake = FakeRegistry()
        fake.register(trained_model().model, ALIAS)
        yield fake


def test_a_version_is_served_with_its_lineage(source: ModelSource) -> None:
    loaded = source.get(MODEL, "1")
    assert isinstance(loaded, registry.LoadedModel)
    assert (loaded.name, loaded.version) == (MODEL, "1")
    lineage = loaded.lineage
    assert set(lineage) == LINEAGE_FIELDS
    assert (lineage["model"], lineage["version"]) == (MODEL, "1")
    assert lineage["model_uri"] == f"models:/{MODEL}/1"
    # the aliases naming it now (other tests of the session may add their own to the real one)
    assert ALIAS in lineage["aliases"] and lineage["aliases"] == sorted(lineage["aliases"])
    assert loaded.lineage_id == lineage_id(lineage)
    assert loaded.mlflow_run_id == lineage["mlflow_run_id"] == lineage["run"]["mlflow_run_id"]
    assert [d["name"] for d in lineage["datasets"]] == ["raw", "train", "test"]
    assert all(d["md5"] and d["rows"] > 0 for d in lineage["datasets"])
    assert lineage["validation"]["success"] is True
    assert lineage["tags"]["data.train.md5"] == lineage["datasets"][1]["md5"]
    assert loaded.contract is not None
    assert loaded.contract.contract_id == lineage["contract"]["contract_id"]
    assert loaded.recourse_policy is not None and loaded.recourse_memo() is not None
    assert source.get(MODEL, "1") is loaded  # kept once loaded


def test_a_fresh_load_is_a_new_copy_of_the_same_version(source: ModelSource) -> None:
    kept = source.get(MODEL, "1")
    fresh = source.load(MODEL, "1")
    assert fresh is not kept
    assert fresh.lineage_id == kept.lineage_id
    assert fresh.scorecard.to_dict() == kept.scorecard.to_dict()


def test_aliases_are_asked_of_the_registry(source: ModelSource) -> None:
    assert source.registry_alias(MODEL, ALIAS) == "1"


@pytest.mark.parametrize(
    ("ask", "error", "message"),
    [
        (
            lambda s: s.get("ghost", "1"),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
        (
            lambda s: s.load("ghost", "1"),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
        (
            lambda s: s.get(MODEL, "9"),
            registry.VersionNotFound,
            "model 'mortgage-denial' has no version '9'",
        ),
        (
            lambda s: s.load(MODEL, "9"),
            registry.VersionNotFound,
            "model 'mortgage-denial' has no version '9'",
        ),
        (
            lambda s: s.registry_alias(MODEL, "gold"),
            registry.AliasNotFound,
            "model 'mortgage-denial' has no alias 'gold'",
        ),
        (
            lambda s: s.registry_alias("ghost", ALIAS),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
    ],
    ids=["get-model", "load-model", "get-version", "load-version", "alias", "alias-model"],
)
def test_what_does_not_exist_raises_its_typed_error(
    source: ModelSource, ask: Callable[[ModelSource], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        ask(source)
    assert str(caught.value) == message
    assert isinstance(caught.value, registry.RegistryLookupError)


def test_an_unreachable_registry_is_not_a_missing_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = Settings.resolve(tmp_path, env={"GOVERNANCE_MLFLOW_URI": "http://127.0.0.1:9"})
    sources: list[ModelSource] = [registry.ModelCache(down), FakeRegistry(down=True)]
    for source in sources:
        with pytest.raises(registry.RegistryUnavailable):
            source.registry_alias(MODEL, ALIAS)


def test_the_fake_serves_the_model_the_pipeline_registers(
    trained: tuple[Path, Settings],
) -> None:
    """Same data, seeds and stages: the same scorecard, recourse policy and input contract."""
    _, settings = trained
    real = registry.ModelCache(settings).get(MODEL, "1")
    fake = trained_model().model
    assert fake.scorecard.to_dict() == real.scorecard.to_dict()
    assert fake.recourse_policy is not None and real.recourse_policy is not None
    assert fake.recourse_policy.to_dict() == real.recourse_policy.to_dict()
    assert fake.contract is not None and real.contract is not None
    assert fake.contract.to_dict() == real.contract.to_dict()
    for key in ("datasets", "params", "params_hash", "validation", "contract"):
        assert fake.lineage[key] == real.lineage[key], key
