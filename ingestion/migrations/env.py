"""Alembic environment: Sift runs migrations in-process on the connection the store hands over."""

from alembic import context

from sift.ingestion.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
