"""The app's history: conversations with their messages, and rerank traces, kept in the store's database.

These are the app's tables, not the corpus store's: they live beside it in the same database (each row points at
its corpus, ON DELETE CASCADE) and are migrated by the app's own alembic history (``sift.app.migrations``, version
table ``sift_app_version``), after the store's. ``History`` takes corpus ids; ``Sift`` maps corpus names to them.

Every lookup by id takes the corpus the caller is in, and finds nothing of another corpus; a conversation is its
owner's (the user who started it): another user's is not found, as if it did not exist. Ids are never handed out
twice (AUTOINCREMENT on SQLite; PostgreSQL's sequences never reuse), so an answer's trace id never names a newer trace.

Example::

    >>> store = Store.open("sqlite:////tmp/sift-doc/sift.db", Path("/tmp/sift-doc"))      # doctest: +SKIP
    >>> history = History.open(store.engine)                                               # doctest: +SKIP
    >>> notes = store.corpus("notes", create=True).id                                      # doctest: +SKIP
    >>> conversation = history.start_conversation(notes, "Tides", owner_id=None)           # doctest: +SKIP
    >>> history.add_message(conversation, "user", "Why are there two tides a day?")       # doctest: +SKIP
    >>> [m.role for m in history.messages(notes, conversation, LOCAL_ADMIN)]               # doctest: +SKIP
    ['user']
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, ColumnElement, DateTime, Engine, ForeignKey, String, Text, delete, or_, select, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from sift.app.followup import FollowUp
from sift.app.generation import Citation
from sift.ingestion.schema import Corpus, utcnow
from sift.ingestion.store import upgrade_schema
from sift.rerank import RerankTrace

if TYPE_CHECKING:
    from sift.app.accounts import User  # accounts' tables join this module's metadata: it imports this module

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "sift_app_version"  # the store's migrations keep alembic's default table, alembic_version

Role = Literal["user", "assistant"]


class HistoryBase(DeclarativeBase):
    pass


class ConversationNotFound(LookupError):
    """No such conversation in the corpus, or not one the user may see (the same answer: 404)."""

    def __init__(self, conversation_id: int, corpus: str):
        super().__init__(f"No conversation {conversation_id} in corpus {corpus!r}.")


# Ids are never handed out twice on SQLite either (the app's migration 0005): an answer keeps its trace's id, a client
# its conversation's, and a deleted one's id given to a newer row (of any corpus) would name that row instead.
NEVER_REUSED = {"sqlite_autoincrement": True}


class RerankTraceRow(HistoryBase):
    """Why the reranker ordered a query's passages as it did (the trace is the reranker's own JSON)."""

    __tablename__ = "rerank_traces"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The column object, not "corpora.id": the corpora table belongs to the store's metadata, not to this one.
    corpus_id: Mapped[int] = mapped_column(ForeignKey(Corpus.id, ondelete="CASCADE"), index=True)
    query: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(50))
    strategy: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    trace: Mapped[dict] = mapped_column(JSON)


class ConversationRow(HistoryBase):
    __tablename__ = "conversations"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey(Corpus.id, ondelete="CASCADE"), index=True)
    # Who started it (``sift.app.accounts``' users); None with auth off, from the CLI, or from before conversations had
    # owners, and for one whose owner was removed: such a conversation is an admin's, as a corpus with no owner is.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageRow(HistoryBase):
    __tablename__ = "messages"
    __table_args__ = (NEVER_REUSED,)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey(ConversationRow.id, ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON)  # MessageDetails, as JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageDetails(BaseModel):
    """What an answer carries besides its text: the passages it cites (with their evidence), its rerank trace,
    whether the passages answered the question, the question as rewritten to stand alone (None when it was not
    rewritten), how the question was read in its conversation, and whether every sentence is supported by a cited
    passage (None: stored before answers were checked) with the sentences that are not. ``interrupted``: there is
    no answer, the text says why (the reader went away, or answering failed)."""

    citations: list[Citation]
    trace_id: int | None
    answered: bool
    standalone_question: str | None
    verified: bool | None = None
    unsupported: list[str] = []
    followup: FollowUp | None = None
    interrupted: bool = False
    style: str | None = None  # extractive or generative (None: stored before answers had styles)
    addresses_question: bool | None = None
    model_summary: str | None = None


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class Conversation(_Read):
    """A chat about one corpus; its messages come back after a reload."""

    id: int
    title: str
    created_at: datetime


class StoredMessage(_Read):
    """One turn: the user's question (no details), or Sift's answer with its details."""

    id: int
    role: Role
    content: str
    details: MessageDetails | None
    created_at: datetime


class StoredTrace(_Read):
    """A kept rerank trace, as the Inspector lists it (traces kept by earlier releases read the same)."""

    id: int
    query: str
    mode: str
    strategy: str
    created_at: datetime
    trace: RerankTrace


class History:
    """Conversations, messages and rerank traces, on the store's engine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, engine: Engine) -> History:
        """The history over a database the store has opened (and migrated): brings the app's tables up to date."""
        upgrade_schema(engine, MIGRATIONS)
        return cls(engine)

    # ------------------------------------------------------------------------------------------ conversations

    def start_conversation(self, corpus_id: int, title: str, owner_id: int | None) -> int:
        with self._sessions() as session:
            conversation = ConversationRow(corpus_id=corpus_id, title=title[:300] or "Conversation", owner_id=owner_id)
            session.add(conversation)
            session.commit()
            return conversation.id

    def add_message(self, conversation_id: int, role: Role, content: str, details: MessageDetails | None = None) -> int:
        """Append a turn (the caller found the conversation with ``conversation``, in its corpus and the user's)."""
        with self._sessions() as session:
            message = MessageRow(
                conversation_id=conversation_id,
                role=role,
                content=content,
                details=details.model_dump(mode="json") if details is not None else None,
            )
            session.add(message)
            session.commit()
            return message.id

    def conversations(self, corpus_id: int, user: User) -> list[Conversation]:
        """A corpus's conversations that ``user`` may see, newest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ConversationRow)
                .where(ConversationRow.corpus_id == corpus_id, _visible_to(user))
                .order_by(ConversationRow.id.desc())
            )
            return [Conversation.model_validate(row) for row in rows]

    def conversation(self, corpus_id: int, conversation_id: int, user: User) -> Conversation | None:
        """The conversation, if it is in that corpus and ``user`` may see it; else None."""
        with self._sessions() as session:
            row = session.scalar(
                select(ConversationRow).where(
                    ConversationRow.id == conversation_id, ConversationRow.corpus_id == corpus_id, _visible_to(user)
                )
            )
            return Conversation.model_validate(row) if row is not None else None

    def messages(self, corpus_id: int, conversation_id: int, user: User) -> list[StoredMessage] | None:
        """A conversation's messages in the order they were written; None unless ``conversation`` finds it."""
        if self.conversation(corpus_id, conversation_id, user) is None:
            return None
        with self._sessions() as session:
            rows = session.scalars(
                select(MessageRow).where(MessageRow.conversation_id == conversation_id).order_by(MessageRow.id)
            )
            return [StoredMessage.model_validate(row) for row in rows]

    # ------------------------------------------------------------------------------------------ traces

    def save_trace(self, corpus_id: int, trace: RerankTrace) -> int:
        with self._sessions() as session:
            row = RerankTraceRow(
                corpus_id=corpus_id,
                query=trace.query,
                mode=trace.mode,
                strategy=trace.strategy or "-",
                trace=trace.model_dump(mode="json"),
            )
            session.add(row)
            session.commit()
            return row.id

    def traces(self, corpus_id: int, limit: int = 50) -> list[StoredTrace]:
        """A corpus's latest traces, newest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(RerankTraceRow)
                .where(RerankTraceRow.corpus_id == corpus_id)
                .order_by(RerankTraceRow.id.desc())
                .limit(limit)
            )
            return [StoredTrace.model_validate(row) for row in rows]

    def trace_corpus_id(self, trace_id: int) -> int | None:
        """The id of the corpus a trace was made in (who may read it depends on it); None for no such trace."""
        with self._sessions() as session:
            return session.scalar(select(RerankTraceRow.corpus_id).where(RerankTraceRow.id == trace_id))

    def trace(self, corpus_id: int, trace_id: int) -> StoredTrace | None:
        """The trace, if it was made in that corpus; else None."""
        with self._sessions() as session:
            row = session.scalar(
                select(RerankTraceRow).where(RerankTraceRow.id == trace_id, RerankTraceRow.corpus_id == corpus_id)
            )
            return StoredTrace.model_validate(row) if row is not None else None

    # ------------------------------------------------------------------------------------------ corpora

    def delete_corpus(self, corpus_id: int) -> None:
        """Remove a corpus's conversations, their messages and its traces, in one transaction."""
        with self._sessions() as session:
            # Explicit deletes, children first, so this holds on databases without ON DELETE CASCADE enforcement.
            conversation_ids = select(ConversationRow.id).where(ConversationRow.corpus_id == corpus_id)
            session.execute(delete(MessageRow).where(MessageRow.conversation_id.in_(conversation_ids)))
            session.execute(delete(ConversationRow).where(ConversationRow.corpus_id == corpus_id))
            session.execute(delete(RerankTraceRow).where(RerankTraceRow.corpus_id == corpus_id))
            session.commit()
        logger.info("Removed the conversations and traces of corpus %d", corpus_id)


def _visible_to(user: User) -> ColumnElement[bool]:
    """Which conversations ``user`` sees: their own; an admin also those with no owner; ``LOCAL_ADMIN`` (auth off,
    the CLI: whoever runs this machine) every one."""
    if user.id is None:
        return true()
    own = ConversationRow.owner_id == user.id
    return or_(own, ConversationRow.owner_id.is_(None)) if user.is_admin else own
