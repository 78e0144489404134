"""Fixtures of the alerting tests; the helpers live in ``alerting_support`` (a unique module
name: several test folders have a conftest.py, so ``from conftest import`` is ambiguous)."""

from alerting_support import (  # noqa: F401 - fixtures are found by name
    alert,
    hanging_port,
    harness,
    http_server,
    smtp_server,
)
