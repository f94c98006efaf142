"""Corpus ids are never handed out twice: SQLite's AUTOINCREMENT for the corpora table.

Without it SQLite gives a new row the largest id + 1, so a corpus created after the newest one was deleted got the
deleted corpus's id, and an ingest still holding that id committed its files into the new corpus. PostgreSQL's
sequences never reuse a number, so there is nothing to do there.

SQLite cannot add AUTOINCREMENT in place: the table is rebuilt (batch mode), with foreign keys off while it runs
(``upgrade_schema`` turns them off), or dropping the old table would cascade into every document.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rebuild_corpora(autoincrement=True)


def downgrade() -> None:
    _rebuild_corpora(autoincrement=False)


def _rebuild_corpora(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("corpora", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass
