"""Alembic environment of the app's own tables (conversations, messages, rerank traces, ingestion jobs, accounts).

They share the store's database but keep their own history, recorded in their own version table, so the store and
the app migrate independently: the store's migrations run first (``Store.open``), then these (``History.open``).
"""

from alembic import context

from sift.app import accounts, jobs  # noqa: F401  (their tables join HistoryBase's metadata)
from sift.app.history import VERSION_TABLE, HistoryBase

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=HistoryBase.metadata, version_table=VERSION_TABLE, render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
