"""Document and passage ids are never handed out twice: SQLite's AUTOINCREMENT for the documents and chunks tables.

Citations and rerank traces keep a passage's and its document's ids. Without AUTOINCREMENT SQLite gives a new row the
largest id + 1, so after the newest document was deleted, the next one uploaded (to any corpus) took its ids, and an
old citation or trace showed that other passage. PostgreSQL's sequences never reuse a number: nothing to do there.

As in 0004, each table is rebuilt (batch mode) with foreign keys off (``upgrade_schema``), keeping its rows, keys and
indexes; the rows' ids stay as they were. Ids deleted before this upgrade, above the largest one left, can still be
handed out once: SQLite kept no record of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("documents", "chunks")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
