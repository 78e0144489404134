"""The demo: ``shipyard demo``'s whole loop on scikit-learn's bundled breast-cancer data.

``run_demo`` trains, registers, validates, approves, promotes and rolls back, then serves the
model (``LiveDemo``: traffic, labels, a monitoring run with its e-mailed drift alert, the
retraining it starts, an automatic rollout of the candidate and a rollback under load) in its
own embedded store with its own shipyard.toml, and prints commands to explore that store
afterwards. ``retrain_diagnosis`` is the retraining entry point that file names.
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
    retrain_diagnosis,
    run_demo,
    shipyard_command,
)
from shipyard.demo._live import DRIFT, LiveDemo, MailBox, shift_like_drift

__all__ = [
    "DRIFT",
    "LiveDemo",
    "MailBox",
    "explore_commands",
    "load_data",
    "retrain_diagnosis",
    "run_demo",
    "shift_like_drift",
    "shipyard_command",
]
