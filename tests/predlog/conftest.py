"""Fixtures of the prediction log tests; the helpers live in ``predlog_stores`` (a unique
module name: several test folders have a conftest.py)."""

from predlog_stores import log_store  # noqa: F401 - fixtures are found by name
