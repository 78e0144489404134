"""Shipyard: take a trained model from a notebook to production and keep it healthy there.

``import shipyard as sy`` gives one-call functions over one default ``Client``, built from the
environment (``SHIPYARD_HOME``, ``SHIPYARD_DB_URL``, ``SHIPYARD_ARTIFACTS``, ``SHIPYARD_USER``)
on first use and kept until ``sy.close()``::

    with sy.start_run(model="churn", params={"C": 1.0}) as run:
        model.fit(X, y)
        run.log_metric("auc", 0.91)
        run.register(model, X_train=X, y_train=y, X_eval=Xe, y_eval=ye)
    sy.load("churn@production").predict(frame)
    sy.close()  # the next call reads the environment again and opens a new client

For several stores or users in one process, use ``sy.Client(settings)`` explicitly.

Layer: the facade, the top with the CLI and the demo; it imports ``client`` (and errors and
settings) and nothing imports it but them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shipyard._lazy import lazy_attributes as _lazy_attributes
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pandas as pd

    from shipyard.checks import ValidationResult
    from shipyard.client import Client
    from shipyard.packaging import LoadedModel
    from shipyard.registry import AliasChange, Approval, ModelVersion
    from shipyard.settings import Settings
    from shipyard.tracking import ActiveRun, active_run

__version__ = "0.1.0"

# The facade's classes load on first use (PEP 562), so ``import shipyard`` - and with it every
# ``import shipyard.<subpackage>`` - costs no scikit-learn, SQLAlchemy or pandas until a name
# that needs them is touched.
_LAZY = {
    "Client": "shipyard.client",
    "LoadedModel": "shipyard.packaging",
    "Settings": "shipyard.settings",
    "ActiveRun": "shipyard.tracking",
    "active_run": "shipyard.tracking",
}


__getattr__, __dir__ = _lazy_attributes("shipyard", _LAZY, globals())


# The one default client of the one-call functions: built under the lock by the first call
# (so concurrent first calls share one), kept until close().
_lock = threading.Lock()
_default: Client | None = None


def _client() -> Client:
    """The default client, opened from the environment's settings on first use."""
    global _default
    found = _default
    if found is not None:
        return found
    with _lock:
        if _default is None:
            from shipyard.client import Client
            from shipyard.settings import Settings

            _default = Client(Settings()).open()
        return _default


def close() -> None:
    """Close the default client and forget it; the next one-call function builds a new one
    (reading the environment again). Does nothing when none is open.

    >>> import shipyard as sy
    >>> sy.close()
    """
    global _default
    with _lock:
        found, _default = _default, None
    if found is not None:
        found.close()


def start_run(
    *,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    git_path: str | Path | None = None,
) -> ActiveRun:
    """Start a tracked run on the default client; use it as a context manager
    (see ``Client.start_run``).

    >>> with sy.start_run(model="churn", params={"C": 0.5}) as run:  # doctest: +SKIP
    ...     model.fit(X_train, y_train)
    ...     run.log_metric("auc", 0.91)
    ...     run.register(model, X_train=X_train, y_train=y_train)
    """
    return _client().start_run(model=model, params=params, git_path=git_path)


def register(
    model: Any,
    *,
    name: str,
    X_train: Any,
    y_train: Any = None,
    X_eval: Any = None,
    y_eval: Any = None,
    description: str = "",
    tags: dict[str, Any] | None = None,
    onnx: bool = True,
    code_paths: Sequence[str | Path] = (),
    load_check: bool = True,
) -> ModelVersion:
    """Register a fitted model as the next version of ``name``, without a run
    (see ``Client.register``).

    >>> sy.register(model, name="churn", X_train=X, y_train=y).version  # doctest: +SKIP
    1
    """
    return _client().register(
        model,
        name=name,
        X_train=X_train,
        y_train=y_train,
        X_eval=X_eval,
        y_eval=y_eval,
        description=description,
        tags=tags,
        onnx=onnx,
        code_paths=code_paths,
        load_check=load_check,
    )


def load(ref: str, version: int | None = None) -> LoadedModel:
    """Load ``"churn@production"``, ``"churn:3"`` or ``("churn", version=3)``, verified
    against the registry's digest first.

    >>> sy.load("churn@production").predict(frame)  # doctest: +SKIP
    """
    return _client().load(ref, version)


def approve(name: str, version: int, *, reason: str, acknowledge: Sequence[int] = ()) -> Approval:
    """Approve a version as ``SHIPYARD_USER`` (an approver who is not its author);
    ``acknowledge`` names the open high risks (ids) seen and accepted.

    >>> sy.approve("churn", 3, reason="AUC +2 points on fresh data")  # doctest: +SKIP
    """
    return _client().approve(name, version, reason=reason, acknowledge=acknowledge)


def promote(
    name: str, version: int, *, to: str = "production", reason: str = "", force: bool = False
) -> AliasChange:
    """Point alias ``to`` at a version; production needs a four-eyes approval and a passing
    validation first (``force``: an admin overrides the gates, with ``reason``).

    >>> sy.promote("churn", 3, reason="approved by bob")  # doctest: +SKIP
    """
    return _client().promote(name, version, to=to, reason=reason, force=force)


def validate(
    name: str,
    version: int,
    *,
    against: str = "production",
    data: Path | pd.DataFrame | None = None,
    target: str | None = None,
    report: str | Path | None = None,
) -> ValidationResult:
    """Run every validation gate for a version against the champion on the same rows and
    store the gate record promotions need (see ``Client.validate``).

    >>> sy.validate("churn", 4, data=fresh, target="churned").passed  # doctest: +SKIP
    True
    """
    return _client().validate(
        name, version, against=against, data=data, target=target, report=report
    )


def rollback(name: str, *, alias: str = "production", reason: str = "") -> AliasChange:
    """Re-point ``alias`` to the version it pointed to before the current one.

    >>> sy.rollback("churn", reason="v3 misbehaves")  # doctest: +SKIP
    """
    return _client().rollback(name, alias=alias, reason=reason)


__all__ = [
    "ActiveRun",
    "Client",
    "LoadedModel",
    "Settings",
    "ShipyardError",
    "__version__",
    "active_run",
    "approve",
    "close",
    "load",
    "promote",
    "register",
    "rollback",
    "start_run",
    "validate",
]
