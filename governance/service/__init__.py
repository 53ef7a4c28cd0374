"""The HTTP decision service (FastAPI): decisions through the ledger, MLflow ``/invocations``,
audit reads, API keys with roles, Prometheus metrics.

::

    from governance.decisions.service import DecisionService
    from governance.service import KeyStore, create_app

    service = DecisionService.open(settings)
    keys = KeyStore.for_home(settings.home)
    key = keys.create("loan-frontend", "scorer")        # shown once; only its hash is stored
    app = create_app(service, keys, default_model="mortgage-denial", default_alias="champion")

See :mod:`governance.service.app` for the endpoints and the role matrix.
"""

from governance.service.app import ApiError, create_app, serve
from governance.service.auth import ROLES, ApiKey, KeyStore, KeyStoreError, Principal
from governance.service.metrics import Metrics

__all__ = [
    "ROLES",
    "ApiError",
    "ApiKey",
    "KeyStore",
    "KeyStoreError",
    "Metrics",
    "Principal",
    "create_app",
    "serve",
]
