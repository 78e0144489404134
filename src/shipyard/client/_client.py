"""``Client``: the explicit object behind ``import shipyard as sy``'s one-call functions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.settings import Settings

if TYPE_CHECKING:
    # Imported where used: ``import shipyard`` (and every CLI command's start-up) then costs
    # no SQLAlchemy, pandas or scikit-learn until a client is opened.
    import pandas as pd

    from shipyard.checks import ValidationResult
    from shipyard.config import ProjectConfig
    from shipyard.packaging import LoadedModel
    from shipyard.registry import AliasChange, Approval, ApprovalRequest, ModelVersion
    from shipyard.store import Store
    from shipyard.tracking import ActiveRun


class Client:
    """One store and the acting user, with the tracker, registry and users on top.

    The constructor only stores its arguments (``settings`` default: read from the
    environment now); ``open()`` connects. Pass ``store`` to share one open ``Store`` between
    clients of several users (each client's ``close()`` then closes that store).
    Registry changes are notified as the ``[[notify]]`` rules of ``project`` say (default: the
    project file ``settings.config``, read when the client opens).

    >>> client = Client(Settings(home="/tmp/sy-doc")).open()  # doctest: +SKIP
    >>> client.load("churn@production").predict(frame)  # doctest: +SKIP
    >>> client.close()  # doctest: +SKIP
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
        """Open the store (creating a new database at the current schema) and return ``self``.

        >>> client = Client(Settings(home="/tmp/sy-doc", user="alice")).open()  # doctest: +SKIP
        >>> client.user  # doctest: +SKIP
        'alice'
        """
        from shipyard.alerting import attach_notifier
        from shipyard.auth import Users
        from shipyard.config import load_project
        from shipyard.registry import Registry, Traffic
        from shipyard.store import Store
        from shipyard.tracking import Tracker

        # A bad project file is refused before the store is opened.
        project = self._project if self._project is not None else load_project(self.settings.config)
        store = self._store or Store.from_settings(self.settings, project.storage)
        self.store = store.open() if not hasattr(store, "engine") else store
        self.user = self.settings.user
        self.tracker = Tracker(self.store)
        self.project = project
        self.registry = Registry(self.store, project)
        self.traffic = Traffic(self.store, project)
        self.users = Users(self.store)
        # Registry events selected by [[notify]] in shipyard.toml go out after each commit.
        self.notifier = attach_notifier(self.store, project)
        return self

    def close(self) -> None:
        """Close the store (its database connections).

        >>> client.close()  # doctest: +SKIP
        """
        self.store.close()

    def start_run(
        self,
        *,
        model: str | None = None,
        params: dict[str, Any] | None = None,
        git_path: str | Path | None = None,
    ) -> ActiveRun:
        """Start a tracked run of ``model`` with ``params``, recording the git state of
        ``git_path`` (default: the working directory) and the environment; use it as a
        context manager (the run ends ``finished``, or ``failed`` on an exception).

        >>> with client.start_run(model="churn", params={"C": 0.5}) as run:  # doctest: +SKIP
        ...     model.fit(X_train, y_train)
        ...     run.log_metric("auc", 0.91)
        ...     run.register(model, X_train=X_train, y_train=y_train)
        """
        return self.tracker.start_run(model=model, params=params, user=self.user, git_path=git_path)

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
        code_paths: Sequence[str | Path] = (),
        load_check: bool = True,
    ) -> ModelVersion:
        """Register a fitted model as the next version of ``name`` without a run (lineage
        then holds the caller's git state); ``X_eval``/``y_eval`` give the archive's metrics,
        ``onnx=False`` skips the ONNX export. The model's own modules (a transformer in your
        ``features.py``) are stored in the archive and put in place wherever it loads;
        ``code_paths`` adds files or package folders; a model that needs them is loaded in a
        fresh Python process first and refused if it would not load (``load_check=False``
        skips that).

        >>> mv = client.register(model, name="churn", X_train=X, y_train=y)  # doctest: +SKIP
        >>> mv.version  # doctest: +SKIP
        1
        """
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
            code_paths=code_paths,
            load_check=load_check,
        )
        return self.registry.register(
            prepared, name=name, actor=self.user, description=description, tags=tags
        )

    def load(self, ref: str, version: int | None = None) -> LoadedModel:
        """Load ``"churn@production"``, ``"churn:3"`` or ``("churn", version=3)``, after
        verifying its archive against the registry's digest (cached by digest).

        >>> client.load("churn@production").predict(frame)  # doctest: +SKIP
        """
        return self.registry.load(ref, version)

    def approve(
        self, name: str, version: int, *, reason: str, acknowledge: Sequence[int] = ()
    ) -> Approval:
        """Approve a version as this client's user (an approver who is not its author);
        ``acknowledge`` names the open high risks (ids) seen and accepted.

        >>> client.approve("churn", 3, reason="AUC +2 points")  # doctest: +SKIP
        """
        return self.registry.approve(
            name, version, actor=self.user, reason=reason, acknowledge=acknowledge
        )

    def request_approval(self, name: str, version: int, *, comment: str = "") -> ApprovalRequest:
        """Ask the approvers to review a version, with a comment (the approvals inbox shows it).

        >>> client.request_approval("churn", 4, comment="AUC +2 points").status  # doctest: +SKIP
        'open'
        """
        return self.registry.request_approval(name, version, actor=self.user, comment=comment)

    def reject(self, name: str, version: int, *, reason: str) -> ApprovalRequest:
        """Reject a version with a reason, as this client's user (an approver, not its author).

        >>> client.reject("churn", 4, reason="Fairness gap on age").status  # doctest: +SKIP
        'rejected'
        """
        return self.registry.reject(name, version, actor=self.user, reason=reason)

    def promote(
        self,
        name: str,
        version: int,
        *,
        to: str = "production",
        reason: str = "",
        force: bool = False,
    ) -> AliasChange:
        """Point alias ``to`` at a version; production needs a four-eyes approval and a
        passing gate record first (``force``: an admin overrides the gates, with ``reason``).

        >>> client.promote("churn", 3).previous_version  # doctest: +SKIP
        2
        """
        return self.registry.promote(
            name, version, actor=self.user, to=to, reason=reason, force=force
        )

    def validate(
        self,
        name: str,
        version: int,
        *,
        against: str = "production",
        data: Path | pd.DataFrame | None = None,
        target: str | None = None,
        report: str | Path | None = None,
    ) -> ValidationResult:
        """Run every validation gate for a version against ``against`` on the same rows
        (``data`` with its ``target`` column; else the labelled production traffic, else the
        version's eval rows) and store the gate record promotions need.

        >>> result = client.validate("churn", 4, report="v4.html")  # doctest: +SKIP
        >>> result.passed, [g.name for g in result.report.gates if not g.passed]  # doctest: +SKIP
        (False, ['fairness:gender'])
        """
        from shipyard.checks import ValidationRequest, validate_version
        from shipyard.config import ProjectConfig

        return validate_version(
            self.store,
            ValidationRequest(
                name,
                version,
                actor=self.user,
                project=self.project or ProjectConfig(),
                against=against,
                data=Path(data) if isinstance(data, str) else data,
                target=target,
                report=Path(report) if report is not None else None,
                log_root=self.settings.home.expanduser().absolute() / "predictions",
            ),
        )

    def rollback(self, name: str, *, alias: str = "production", reason: str = "") -> AliasChange:
        """Re-point ``alias`` to the version it pointed to before the current one.

        >>> client.rollback("churn", reason="v3 misbehaves").version  # doctest: +SKIP
        2
        """
        return self.registry.rollback(name, actor=self.user, alias=alias, reason=reason)
