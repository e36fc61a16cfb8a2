"""Alembic environment: runs against the connection authgate hands in."""

from __future__ import annotations

from alembic import context

from authgate.store.sqlalchemy.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="authgate_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
