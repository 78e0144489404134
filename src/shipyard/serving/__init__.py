"""Serving: a FastAPI server for registered models (Open Inference Protocol v2 over HTTP and,
with ``ServeSettings.grpc_port``, gRPC; plain JSON; MLflow's scoring protocol), with API
tokens, Prometheus metrics, micro-batching, an ONNX runtime and a hot switch when an alias
moves; model groups answer as one endpoint (``_groups``), and river models learn from the
labels sent to ``/feedback`` (``_learning``). Every transport scores through one path
(``_scoring``). Every answer and refusal goes to a
``shipyard.predlog.PredictionSink``, normally the prediction log (``shipyard.predlog``).

Imports registry, predlog, packaging, auth, dataset, store, errors and settings; never
monitoring.

>>> from shipyard.serving import create_app
>>> from shipyard.settings import ServeSettings
>>> app = create_app(store, settings=ServeSettings(auth=False))  # doctest: +SKIP

``ServedModel`` is one version as the server runs it (its runtime, schema check and
scoring), and ``rows_from_records`` turns JSON records into the ``Rows`` it scores: the
validation gates time the serving path with them, in process.

The server's settings, ``ServeSettings``, live in ``shipyard.settings`` with every other
setting (the serve command builds its options from them).
"""

from shipyard.serving._app import ARM_HEADER, VERSION_HEADER, create_app
from shipyard.serving._batcher import MicroBatcher
from shipyard.serving._factory import LOG_ENV, SETTINGS_ENV, open_prediction_log
from shipyard.serving._http_protocol import ShipyardHttpProtocol
from shipyard.serving._inputs import Rows, rows_from_records
from shipyard.serving._limits import BodyLimit, body_limited, protect
from shipyard.serving._runtime import ServedModel
from shipyard.serving._thread import free_port, serve_in_thread

__all__ = [
    "ARM_HEADER",
    "LOG_ENV",
    "SETTINGS_ENV",
    "VERSION_HEADER",
    "BodyLimit",
    "MicroBatcher",
    "Rows",
    "ServedModel",
    "ShipyardHttpProtocol",
    "body_limited",
    "create_app",
    "free_port",
    "open_prediction_log",
    "protect",
    "rows_from_records",
    "serve_in_thread",
]
