"""The HTTP API's routers, one per resource (see :mod:`governance.service.app` for the table).

Each module holds one :class:`fastapi.APIRouter` named ``router`` with module-level routes; the
state they use (decision service, keys, metrics, served model) comes from ``app.state``
through :mod:`governance.service.deps`.
"""
