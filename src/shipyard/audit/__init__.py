"""Audit: the append-only, hash-chained event log of every change Shipyard makes.

Imports only ``shipyard.store`` (and errors/settings). ``append_event`` and ``event_hash`` are
the store's (it writes the first event itself); this package lists and verifies the chain.
"""

from shipyard.audit._log import Verification, list_events, verify
from shipyard.store import append_event, event_hash

__all__ = ["Verification", "append_event", "event_hash", "list_events", "verify"]
