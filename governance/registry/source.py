"""What deciding needs from a model registry: :class:`ModelSource`.

The decision service asks a registry three things: a version ready to score (kept once
loaded), the same version loaded afresh (replay must not trust a cache), and which version an
alias names (asked only for an alias the ledger never recorded a move of). Answers that do not
exist raise the typed errors of :mod:`governance.registry.mlflow` -- :class:`ModelNotFound`,
:class:`VersionNotFound`, :class:`AliasNotFound` (all :class:`RegistryLookupError`) -- and a
registry that cannot be asked raises :class:`RegistryUnavailable`.

:class:`~governance.registry.mlflow.ModelCache` is the implementation on MLflow; the tests'
hand-written ``FakeRegistry`` (``tests/fakes.py``) is another, held to the same contract by
``tests/registry/test_model_source.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from governance.registry.mlflow import LoadedModel


class ModelSource(Protocol):
    """Registered model versions, by name and version, and aliases, by name and alias."""

    def get(self, name: str, version: str) -> LoadedModel:
        """A version, ready to score (loaded once, then kept).

        Raises :class:`ModelNotFound` or :class:`VersionNotFound`, :class:`ModelLoadError` for
        a version that exists but cannot be loaded, and
        :class:`~governance.registry.signing.ModelIntegrityError` for one whose files,
        signature or provenance do not check out.
        """
        ...

    def load(self, name: str, version: str) -> LoadedModel:
        """A version loaded afresh, never from what :meth:`get` keeps (replay); raises as it."""
        ...

    def registry_alias(self, name: str, alias: str) -> str:
        """The version ``alias`` names in the registry now (no cache).

        Raises :class:`ModelNotFound`, :class:`AliasNotFound` or :class:`RegistryUnavailable`.
        """
        ...
