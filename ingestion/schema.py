"""The corpus store's SQL schema: corpora, documents and passages (chunks).

Alembic owns the schema's history (``ingestion/migrations``); these ORM classes describe its current state.
A chunk's primary key is also its id in the corpus's FAISS index, and its embedding is kept here too, so the
FAISS file is derived data that can always be rebuilt from SQL. Layers above may keep tables of their own in the
same database (pointing at ``corpora.id``); they describe and migrate those themselves.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Corpus(Base):
    __tablename__ = "corpora"
    # A deleted corpus's id is never handed out again (SQLite would reuse the largest): an ingest still holding it
    # must find its corpus gone, not commit into a newer one.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Bumped in the same transaction as every change to the corpus's chunks; the FAISS file carries the version
    # it was built from, so a reader can tell a stale or missing file from a current one.
    index_version: Mapped[int] = mapped_column(Integer, default=0)

    documents: Mapped[list[Document]] = relationship(
        back_populates="corpus", cascade="all, delete-orphan", passive_deletes=True
    )


class Document(Base):
    __tablename__ = "documents"
    # Document and passage ids are never handed out again either: citations and traces keep them, and a deleted
    # one's id given to a newer passage (of any corpus) would show that passage in their place.
    __table_args__ = (
        UniqueConstraint("corpus_id", "source", name="uq_document_source"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(1000))
    document_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The original file, so the document can be re-extracted after an extraction change (``sift reindex``);
    # None for documents ingested before Sift kept it. Deferred: listing documents never reads it.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    corpus: Mapped[Corpus] = relationship(back_populates="documents")
    chunks: Mapped[list[ChunkRow]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True, order_by="ChunkRow.ordinal"
    )


class ChunkRow(Base):
    """A passage of a document. ``id`` is its vector id in the corpus's FAISS index."""

    __tablename__ = "chunks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start_char: Mapped[int] = mapped_column(Integer)
    end_char: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    # Pages (1-based) the passage spans and its section's heading path; None for formats without them and for
    # passages stored before Sift recorded them.
    page_start: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="chunks")
