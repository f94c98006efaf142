"""Where each passage sits (its pages and section path) and each document's original bytes.

All nullable: passages stored before this revision read with no page or section, and documents ingested before it
kept no original file (they cannot be re-extracted by ``sift reindex``; uploading them again keeps it). Batch mode,
so SQLite gets the columns too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("page_start", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("page_end", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("section", sa.Text(), nullable=True))
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("content")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("section")
        batch.drop_column("page_end")
        batch.drop_column("page_start")
