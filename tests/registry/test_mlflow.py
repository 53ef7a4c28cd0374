"""The MLflow adapter's typed lookups, against a real MLflow registry on SQLite.

No trained model is needed: versions are registered from a plain artifact directory, which is
all the registry itself knows about.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from governance.registry import mlflow as registry
from governance.settings import Settings

MODEL = "adapter-test"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("registry")
    s = Settings.resolve(root, env={})
    source = root / "artifact"
    source.mkdir()
    with registry.tracking(s) as client:
        client.create_registered_model(MODEL)
        for _ in range(3):
            client.create_model_version(MODEL, source.as_uri())
        client.set_registered_model_alias(MODEL, "candidate", "3")
        client.set_registered_model_alias(MODEL, "champion", "2")
        client.create_registered_model("no-aliases")
    return s


def test_versions_and_aliases_resolve(settings: Settings) -> None:
    with registry.tracking(settings) as client:
        registry.require_model(client, MODEL)
        assert str(registry.version_info(client, MODEL, "2").version) == "2"
        assert registry.alias_version(client, MODEL, "champion") == "2"
        assert registry.first_alias(client, MODEL, ("staging", "candidate")) == ("3", "candidate")
        assert registry.first_alias(client, "no-aliases", ("champion",)) is None


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda c: registry.require_model(c, "ghost"),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
        (
            lambda c: registry.version_info(c, "ghost", "1"),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
        (
            lambda c: registry.version_info(c, MODEL, "9"),
            registry.VersionNotFound,
            "model 'adapter-test' has no version '9'",
        ),
        (
            lambda c: registry.alias_version(c, MODEL, "gold"),
            registry.AliasNotFound,
            "model 'adapter-test' has no alias 'gold'",
        ),
        (
            lambda c: registry.alias_version(c, "ghost", "gold"),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
        (
            lambda c: registry.first_alias(c, "ghost", ("champion",)),
            registry.ModelNotFound,
            "no registered model named 'ghost'",
        ),
    ],
)
def test_lookups_raise_typed_errors(
    settings: Settings, call: Callable[[Any], object], error: type[Exception], message: str
) -> None:
    with registry.tracking(settings) as client, pytest.raises(error) as caught:
        call(client)
    assert str(caught.value) == message
    assert isinstance(caught.value, registry.RegistryLookupError)
    assert isinstance(caught.value, LookupError)


def test_resolve_without_lineage_is_a_lookup_error_but_not_a_missing_version(
    settings: Settings,
) -> None:
    with pytest.raises(LookupError, match=r"has no lineage\.json") as caught:
        registry.resolve(settings, MODEL, "1")
    assert not isinstance(caught.value, registry.RegistryLookupError)
    with pytest.raises(registry.VersionNotFound):
        registry.resolve(settings, MODEL, "7")
    with pytest.raises(registry.ModelNotFound):
        registry.resolve(settings, "ghost")


def test_an_unreachable_registry_is_not_a_missing_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = Settings.resolve(tmp_path, env={"GOVERNANCE_MLFLOW_URI": "http://127.0.0.1:9"})
    with registry.tracking(down) as client, pytest.raises(registry.RegistryUnavailable):
        registry.alias_version(client, MODEL, "champion")


def test_model_cache_answers_with_typed_errors(settings: Settings) -> None:
    cache = registry.ModelCache(settings)
    assert cache.resolve(MODEL, version=None, alias="champion") == ("2", "champion")
    assert cache.resolve(MODEL, version="1", alias=None) == ("1", None)
    with pytest.raises(registry.AliasNotFound):
        cache.resolve(MODEL, version=None, alias="gold")
    with pytest.raises(ValueError, match="not both"):
        cache.resolve(MODEL, version="1", alias="champion")
    with pytest.raises(registry.ModelLoadError, match=r"no lineage\.json"):
        cache.get(MODEL, "1")  # registered, but not by the pipeline: nothing to load
