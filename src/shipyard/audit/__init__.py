"""Audit: the append-only, hash-chained event log of every change Shipyard makes."""

from shipyard.audit._log import Verification, append_event, event_hash, list_events, verify

__all__ = ["Verification", "append_event", "event_hash", "list_events", "verify"]
