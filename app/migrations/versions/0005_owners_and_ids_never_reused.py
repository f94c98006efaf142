"""Conversations get an owner, and the ids of traces, conversations, messages and users are never handed out twice.

``conversations.owner_id``: the user who started it (NULL with auth off, from the CLI, and for every conversation
made before this revision; SET NULL when the user is removed): another user's conversation is not found, so a
reader can neither read nor append to it.

SQLite gives a new row the largest id + 1, so after the newest trace, conversation or message was deleted (with its
corpus), the next one made (in any corpus) took its id: an old answer's trace id named another user's trace. Each
table is rebuilt with AUTOINCREMENT (batch mode, foreign keys off: ``upgrade_schema``), keeping its rows, keys and
indexes. PostgreSQL's sequences never reuse a number; there only the column is added.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REBUILT = ("rerank_traces", "messages", "users")  # and conversations, with its new column


def upgrade() -> None:
    _rebuild(autoincrement=True)
    with _conversations(autoincrement=True) as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_conversations_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_conversations_owner_id", ["owner_id"])


def downgrade() -> None:
    with _conversations(autoincrement=False) as batch:
        batch.drop_index("ix_conversations_owner_id")
        batch.drop_constraint("fk_conversations_owner_id_users", type_="foreignkey")
        batch.drop_column("owner_id")
    _rebuild(autoincrement=False)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _rebuild(autoincrement: bool) -> None:
    if not _sqlite():
        return
    for table in REBUILT:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def _conversations(autoincrement: bool):
    if not _sqlite():
        return op.batch_alter_table("conversations")
    return op.batch_alter_table(
        "conversations", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    )
