"""Conversations, their messages, and rerank traces.

Sift 0.1 created these tables in the store's migrations, so a store it made already has them, with rows: each is
created here only where it does not exist yet, and an existing one is kept as it is (same columns, same keys).

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "conversations" not in existing:
        op.create_table(
            "conversations",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("corpus_id", sa.Integer(), sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False),
            sa.Column("title", sa.String(300), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_conversations_corpus_id", "conversations", ["corpus_id"])
    if "messages" not in existing:
        op.create_table(
            "messages",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                      nullable=False),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("details", sa.JSON(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    if "rerank_traces" not in existing:
        op.create_table(
            "rerank_traces",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("corpus_id", sa.Integer(), sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False),
            sa.Column("query", sa.Text(), nullable=False),
            sa.Column("mode", sa.String(50), nullable=False),
            sa.Column("strategy", sa.String(50), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("trace", sa.JSON(), nullable=False),
        )
        op.create_index("ix_rerank_traces_corpus_id", "rerank_traces", ["corpus_id"])


def downgrade() -> None:
    op.drop_table("rerank_traces")
    op.drop_table("messages")
    op.drop_table("conversations")
