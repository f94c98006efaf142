"""Vectors in PostgreSQL: the chunk_vectors table (pgvector), where the server has the extension.

One row per chunk (chunk_id, its corpus, the vector's dimension, the vector), deleted with its chunk or corpus by
ON DELETE CASCADE. The vector column has no fixed dimension; the store creates one HNSW index per dimension it
meets (``vector_store.PgVectors.ensure_index``), with the build parameters from the settings.

Nothing happens on SQLite, nor on a PostgreSQL server without pgvector installed: such a database keeps working
with FAISS files, and Sift says so if it is asked for pgvector.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _has_pgvector() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bind.scalar(sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")) > 0


def upgrade() -> None:
    if not _has_pgvector():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "chunk_vectors",
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("corpus_id", sa.Integer, sa.ForeignKey("corpora.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dims", sa.SmallInteger, nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
    )
    op.create_index("ix_chunk_vectors_corpus_id", "chunk_vectors", ["corpus_id"])


def downgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("chunk_vectors"):
        op.drop_table("chunk_vectors")
