"""The demo: ``shipyard demo``'s whole loop on scikit-learn's bundled breast-cancer data.

``run_demo`` trains, registers, approves, promotes and rolls back, then serves the model
(``LiveDemo``: traffic, labels, monitoring, an e-mail alert, a canary and a rollback under
load) in its own embedded store, and prints commands to explore that store afterwards.
It needs the ``[demo]`` extra (aiosmtpd, its local SMTP server): ``pip install -e ".[demo]"``;
without it, ``run_demo`` refuses to start with ``MissingDependency`` saying so.

Layer: the top, beside cli (which runs it): it may import any package; none imports it but
the CLI.

>>> from shipyard.demo import run_demo
>>> summary = run_demo(Path(".shipyard-demo"))  # doctest: +SKIP
"""

from shipyard.demo._demo import (
    explore_commands,
    load_data,
    run_demo,
    shipyard_command,
)
from shipyard.demo._live import DRIFT, LiveDemo, shift_like_drift

__all__ = [
    "DRIFT",
    "LiveDemo",
    "explore_commands",
    "load_data",
    "run_demo",
    "shift_like_drift",
    "shipyard_command",
]
