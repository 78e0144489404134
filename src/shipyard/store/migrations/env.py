"""Alembic environment: always run on the connection Shipyard hands over."""

from __future__ import annotations

from alembic import context

from shipyard.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Shipyard always passes a connection
    raise RuntimeError("Run migrations through 'shipyard db upgrade', not the alembic CLI.")

# render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
