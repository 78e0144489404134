"""Serving: a FastAPI server for registered models (Open Inference Protocol v2, plain JSON,
MLflow's scoring protocol), with API tokens, Prometheus metrics, micro-batching, an ONNX
runtime and a hot switch when an alias moves.

>>> from shipyard.serving import create_app
>>> from shipyard.settings import ServeSettings
>>> app = create_app(store, settings=ServeSettings(auth=False))  # doctest: +SKIP

The server's settings, ``ServeSettings``, live in ``shipyard.settings`` with every other
setting (the serve command builds its options from them).
"""

from shipyard.serving._app import ARM_HEADER, VERSION_HEADER, create_app
from shipyard.serving._batcher import MicroBatcher
from shipyard.serving._predlog import FeedbackResult, PredictionLog
from shipyard.serving._sink import Answers, NullSink, PredictionSink
from shipyard.serving._thread import free_port, serve_in_thread

__all__ = [
    "ARM_HEADER",
    "VERSION_HEADER",
    "Answers",
    "FeedbackResult",
    "MicroBatcher",
    "NullSink",
    "PredictionLog",
    "PredictionSink",
    "create_app",
    "free_port",
    "serve_in_thread",
]
