"""A real server for the Open Inference Protocol client tests (tritonclient, KServe).

It serves ``churn`` (the session's pipeline; no missing values in training) and ``loans``,
trained with missing ``income`` values (a nullable column) behind an imputer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.packaging import PreparedArchive, prepare_archive
from shipyard.registry import Registry
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store


def nullable_archive(
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
) -> tuple[PreparedArchive, pd.DataFrame]:
    """A model trained with 5% of ``income`` missing, and evaluation rows with some missing."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y, Xe, ye = (part.copy() for part in training_data)
    rng = np.random.default_rng(7)
    for frame in (X, Xe):
        frame.loc[rng.random(len(frame)) < 0.05, "income"] = np.nan
        frame.loc[frame.index[0], "income"] = np.nan
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", numeric, ["age", "income", "tenure"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y)
    return prepare_archive(pipe, X_train=X, y_train=y, X_eval=Xe, y_eval=ye), Xe


@contextmanager
def oip_server(
    root: Path, archives: dict[str, PreparedArchive], *, auth: bool = False
) -> Iterator[tuple[str, Store]]:
    """Serve ``archives`` (name -> archive, each v1 at production) on a real uvicorn."""
    store = Store(f"sqlite:///{root / 'db'}", str(root / "artifacts"), creator="admin").open()
    registry = Registry(store, NO_GATES)
    admin = Client(Settings(user="admin"), store=store).open()
    admin.users.set_role("bob", "approver", actor="admin")
    for name, archive in archives.items():
        registry.register(archive, name=name, actor="alice")
        registry.approve(name, 1, actor="bob", reason="ok")
        registry.promote(name, 1, actor="alice")
    app = create_app(store, settings=ServeSettings(auth=auth))
    try:
        with serve_in_thread(app) as url:
            yield url, store
    finally:
        store.close()
