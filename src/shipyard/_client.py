"""``Client``: the explicit object behind ``import shipyard as sy``'s one-call functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.settings import Settings

if TYPE_CHECKING:
    # Imported where used: ``import shipyard`` (and every CLI command's start-up) then costs
    # no SQLAlchemy, pandas or scikit-learn until a client is opened.
    from shipyard.config import ProjectConfig
    from shipyard.packaging import LoadedModel
    from shipyard.registry import AliasChange, Approval, ModelVersion
    from shipyard.store import Store
    from shipyard.tracking import ActiveRun


class Client:
    """One store and the acting user, with the tracker, registry and users on top.

    Registry changes are notified as the ``[[notify]]`` rules of ``project`` say (default: the
    project file ``settings.config``, read when the client opens).

    >>> client = Client(Settings(home="/tmp/sy-doc")).open()  # doctest: +SKIP
    >>> client.load("churn@production").predict(frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        project: ProjectConfig | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._store = store
        self._project = project

    def open(self) -> Client:
        from shipyard.alerting import attach_notifier
        from shipyard.auth import Users
        from shipyard.config import load_project
        from shipyard.registry import Registry, Traffic
        from shipyard.store import Store
        from shipyard.tracking import Tracker

        # A bad project file is refused before the store is opened.
        project = self._project if self._project is not None else load_project(self.settings.config)
        store = self._store or Store.from_settings(self.settings)
        self.store = store.open() if not hasattr(store, "engine") else store
        self.user = self.settings.user
        self.tracker = Tracker(self.store)
        self.registry = Registry(self.store)
        self.traffic = Traffic(self.store)
        self.users = Users(self.store)
        # Registry events selected by [[notify]] in shipyard.toml go out after each commit.
        self.notifier = attach_notifier(self.store, project)
        return self

    def close(self) -> None:
        self.store.close()

    def start_run(
        self, *, model: str | None = None, params: dict[str, Any] | None = None, **kw: Any
    ) -> ActiveRun:
        return self.tracker.start_run(model=model, params=params, user=self.user, **kw)

    def register(
        self,
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
    ) -> ModelVersion:
        """Register a fitted model without a run (lineage then holds the caller's git state)."""
        from shipyard.packaging import Lineage, prepare_archive
        from shipyard.registry import check_name
        from shipyard.tracking import git_state

        check_name(name)
        prepared = prepare_archive(
            model,
            X_train=X_train,
            y_train=y_train,
            X_eval=X_eval,
            y_eval=y_eval,
            lineage=Lineage(git=git_state()),
            onnx=onnx,
        )
        return self.registry.register(
            prepared, name=name, actor=self.user, description=description, tags=tags
        )

    def load(self, ref: str, version: int | None = None) -> LoadedModel:
        return self.registry.load(ref, version)

    def approve(self, name: str, version: int, *, reason: str) -> Approval:
        return self.registry.approve(name, version, actor=self.user, reason=reason)

    def promote(
        self, name: str, version: int, *, to: str = "production", reason: str = ""
    ) -> AliasChange:
        return self.registry.promote(name, version, actor=self.user, to=to, reason=reason)

    def rollback(self, name: str, *, alias: str = "production", reason: str = "") -> AliasChange:
        return self.registry.rollback(name, actor=self.user, alias=alias, reason=reason)
