"""Shipyard: take a trained model from a notebook to production and keep it healthy there.

``import shipyard as sy`` gives one-call functions over a default ``Client`` built from the
environment (``SHIPYARD_HOME``, ``SHIPYARD_DB_URL``, ``SHIPYARD_ARTIFACTS``, ``SHIPYARD_USER``)::

    with sy.start_run(model="churn", params={"C": 1.0}) as run:
        model.fit(X, y)
        run.log_metric("auc", 0.91)
        run.register(model, X_train=X, y_train=y, X_eval=Xe, y_eval=ye)
    sy.load("churn@production").predict(frame)

For several stores or users in one process, use ``sy.Client(settings)`` explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard._lazy import lazy_attributes as _lazy_attributes
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard._client import Client
    from shipyard.packaging import LoadedModel
    from shipyard.registry import AliasChange, Approval, ModelVersion
    from shipyard.settings import Settings
    from shipyard.tracking import ActiveRun, active_run

__version__ = "0.1.0"

# The facade's classes load on first use (PEP 562), so ``import shipyard`` - and with it every
# ``import shipyard.<subpackage>`` - costs no scikit-learn, SQLAlchemy or pandas until a name
# that needs them is touched.
_LAZY = {
    "Client": "shipyard._client",
    "LoadedModel": "shipyard.packaging",
    "Settings": "shipyard.settings",
    "ActiveRun": "shipyard.tracking",
    "active_run": "shipyard.tracking",
}


__getattr__, __dir__ = _lazy_attributes("shipyard", _LAZY, globals())


# Clients by configuration, so repeated one-call use reuses one engine and the model cache.
_clients: dict[tuple[str, str, str], Client] = {}


def client(settings: Settings | None = None) -> Client:
    """The open client for ``settings`` (default: read from the environment now)."""
    from shipyard._client import Client
    from shipyard.settings import Settings

    settings = settings or Settings()
    key = (settings.database_url, settings.artifacts_url, settings.user)
    found = _clients.get(key)
    if found is None:
        found = _clients[key] = Client(settings).open()
    return found


def start_run(
    *, model: str | None = None, params: dict[str, Any] | None = None, **kw: Any
) -> ActiveRun:
    """Start a tracked run; use it as a context manager."""
    return client().start_run(model=model, params=params, **kw)


def register(model: Any, *, name: str, X_train: Any, **kw: Any) -> ModelVersion:
    """Register a fitted model as the next version of ``name`` (see ``Client.register``)."""
    return client().register(model, name=name, X_train=X_train, **kw)


def load(ref: str, version: int | None = None) -> LoadedModel:
    """Load ``"churn@production"``, ``"churn:3"`` or ``("churn", version=3)``, verified."""
    return client().load(ref, version)


def approve(name: str, version: int, *, reason: str) -> Approval:
    return client().approve(name, version, reason=reason)


def promote(name: str, version: int, *, to: str = "production", reason: str = "") -> AliasChange:
    return client().promote(name, version, to=to, reason=reason)


def rollback(name: str, *, alias: str = "production", reason: str = "") -> AliasChange:
    return client().rollback(name, alias=alias, reason=reason)


__all__ = [
    "ActiveRun",
    "Client",
    "LoadedModel",
    "Settings",
    "ShipyardError",
    "__version__",
    "active_run",
    "approve",
    "client",
    "load",
    "promote",
    "register",
    "rollback",
    "start_run",
]
