"""Engines: where ``shipyard score`` and ``shipyard monitor run`` do their work.

One small contract, ``Engine`` (``score`` a file, ``count`` a file or a logged window against
a reference profile), and three engines that follow it with the same results: ``PandasEngine``
(this process, streamed), ``SparkEngine`` (a Spark cluster, ``score_spark`` and Spark
aggregations) and ``DaskEngine`` (a Dask cluster, local or at a scheduler address).
``engine_for(name)`` builds one from ``--engine``'s value. ``tests/engines`` runs one suite
over every engine.

Layering: above ``batch`` and ``monitoring`` (it joins them), below ``checks`` and ``cli``.

>>> engine = engine_for("pandas")
>>> engine.name, isinstance(engine, Engine)
('pandas', True)
"""

from shipyard.engines._contract import Engine, LoggedWindow
from shipyard.engines._dask import DaskEngine
from shipyard.engines._pandas import PandasEngine
from shipyard.engines._select import ENGINES, engine_for
from shipyard.engines._spark import SparkEngine

__all__ = [
    "ENGINES",
    "DaskEngine",
    "Engine",
    "LoggedWindow",
    "PandasEngine",
    "SparkEngine",
    "engine_for",
]
