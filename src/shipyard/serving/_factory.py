"""The app factory uvicorn calls in each worker process when ``--workers`` is above 1.

Worker processes cannot receive a live ``Store``; they read the same environment the CLI
did, plus the server settings the CLI put in ``SHIPYARD_SERVE_SETTINGS`` (JSON) and the
prediction log's folder in ``SHIPYARD_SERVE_PREDLOG``, and open their own store and
prediction log after the fork.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from fastapi import FastAPI

from shipyard.predlog import PredictionLog, PredictionSink
from shipyard.serving._app import create_app
from shipyard.settings import ServeSettings, Settings
from shipyard.store import Store

SETTINGS_ENV = "SHIPYARD_SERVE_SETTINGS"
LOG_ENV = "SHIPYARD_SERVE_PREDLOG"


def open_prediction_log(
    root: str | None,
    settings: ServeSettings,
    storage_options: dict[str, Any] | None = None,
) -> PredictionSink | None:
    """The durable prediction log under ``root`` (None: no log), opened, compacting where
    ``settings.compactor`` says, its Parquet on ``settings.log_store`` when set (reached
    with ``storage_options``), and refusing or answering on a full disk as
    ``settings.on_log_full`` says."""
    if not root:
        return None
    on_write_error: Literal["raise", "drop"] = (
        "drop" if settings.on_log_full == "answer" else "raise"
    )
    return PredictionLog(
        root,
        compactor=settings.compactor,
        on_write_error=on_write_error,
        store_url=settings.log_store,
        storage_options=storage_options,
    ).open()


def app_from_environment() -> FastAPI:
    """``create_app`` for a worker process, configured from the environment."""
    settings = ServeSettings.model_validate_json(os.environ.get(SETTINGS_ENV, "{}"))
    store = Store.from_settings(Settings()).open()
    log = open_prediction_log(os.environ.get(LOG_ENV), settings, store.storage_options)
    app = create_app(store, settings=settings, prediction_log=log, own_resources=True)
    app.freeze_heap = True  # a server process: keep the start-up heap out of collections
    return app
