"""Ingestion jobs: a heartbeat, written by the worker while a job runs, so a job whose worker died is seen to be
stale and queued again (``Jobs.requeue_stale``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:  # batch: SQLite cannot alter a table in place
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.drop_column("heartbeat_at")
