"""The store: SQL rows (through SQLAlchemy) and, per corpus, a vector store and a BM25 index, kept in agreement.

SQL is the source of truth. Each document is written in one transaction that also bumps its corpus's
``index_version``. With FAISS (the default, ``vector_store.FaissVectors``) the corpus's FAISS file is then brought to
that version (in place for flat indexes, rebuilt from the vectors in SQL otherwise) and the BM25 index rebuilt from
the passages' texts; a crash between the two leaves files of an older version, which the next reader replaces by
rebuilding from SQL, so SQL rows, FAISS vectors and BM25 rows always agree once the store is reopened. With pgvector
(``vector_store.PgVectors``, PostgreSQL only) the vectors are rows written in the document's own transaction and the
BM25 index is kept in memory only, rebuilt by each process from SQL when the corpus's version moves: no file at all.

Only ingestion writes through this module; retrieval and the app read through it. Layers above may keep tables of
their own in the same database, on the store's engine, under migrations (and a version table) of their own.

Example::

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> store = Store.open(f"sqlite:///{folder}/sift.db", folder)
    >>> store.corpus("notes", create=True).name
    'notes'
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from alembic import command
from alembic.config import Config
from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker, undefer

from sift.ingestion import lexical, vectors
from sift.ingestion.lexical import LexicalIndex
from sift.ingestion.schema import ChunkRow, Corpus, Document, utcnow
from sift.ingestion.vector_store import FaissVectors, HnswParams, PgVectors, VectorStore, matrix_of

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_CORPUS_NAME = 100
# Any fixed number shared by every Sift process: the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK_KEY = 0x51F7
_MIGRATION_WAIT_S = 600


class StoreError(RuntimeError):
    """A request the store cannot carry out, with a message a user can act on."""


class CorpusNotFound(StoreError):
    pass


class DocumentNotFound(StoreError):
    pass


class InvalidText(StoreError, ValueError):
    """Text no database can store (a NUL, a lone surrogate): refused where it comes in, with what is wrong."""


class CorpusDeleted(StoreError):
    """The corpus a write was meant for was deleted meanwhile (by another user or process): nothing was written."""

    def __init__(self) -> None:
        super().__init__("corpus was deleted while this ran; nothing more was written to it")


def text_problem(text: str) -> str | None:
    """What keeps ``text`` out of the database, or None: a NUL (PostgreSQL refuses it), or a lone surrogate (half of
    a UTF-16 pair, e.g. from the JSON escape ``"\\ud800"``: not Unicode text, so no database, tokenizer or UTF-8
    stream takes it).

    >>> text_problem("tides and moons") is None
    True
    >>> text_problem("tides\\x00")
    'contains a NUL character (U+0000), which Sift does not store'
    """
    if "\x00" in text:
        return "contains a NUL character (U+0000), which Sift does not store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate (U+{ord(text[exc.start]):04X}), which is not Unicode text"
    return None


def check_text(text: str, what: str) -> str:
    """``text`` unchanged, or InvalidText saying what is wrong with it (``what`` names it: "The question").

    >>> check_text("Who lit the lamp?\\ud800", "The question")
    Traceback (most recent call last):
    ...
    sift.ingestion.store.InvalidText: The question contains a lone surrogate (U+D800), which is not Unicode text.
    """
    if (problem := text_problem(text)) is not None:
        raise InvalidText(f"{what} {problem}.")
    return text


def corpus_name(name: str) -> str:
    """A corpus name as stored and looked up: trimmed, in Unicode NFC (so "café" typed either way is one corpus),
    at most MAX_CORPUS_NAME characters, without control or invisible formatting characters (a bell, a right-to-left
    override). Raises StoreError saying what is wrong, the same on every database.

    >>> corpus_name("  Cafe\u0301 notes ") == "Caf\u00e9 notes"
    True
    >>> corpus_name("bell\arock")
    Traceback (most recent call last):
    ...
    sift.ingestion.store.StoreError: A corpus name cannot contain control or invisible formatting characters (U+0007).
    """
    name = unicodedata.normalize("NFC", check_text(str(name), "A corpus name")).strip()
    if not name:
        raise StoreError("A corpus needs a name.")
    if len(name) > MAX_CORPUS_NAME:
        raise StoreError(f"A corpus name has at most {MAX_CORPUS_NAME} characters; this one has {len(name):,}.")
    if hidden := [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf")]:
        raise StoreError(
            f"A corpus name cannot contain control or invisible formatting characters (U+{ord(hidden[0]):04X})."
        )
    return name


def readable_database_error(exc: SQLAlchemyError) -> str:
    """A database error as one line for a user: the database's own first line, without the SQL statement and the
    parameters SQLAlchemy appends (long, and they can hold document text)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"database error: {(lines[0] if lines else type(cause).__name__)[:200]}"


@dataclass(frozen=True)
class Chunk:
    """A passage: its text, where it sits in the document (characters, pages, section path), its normalised
    embedding, and its id once stored (which is also its vector id)."""

    ordinal: int
    text: str
    start_char: int
    end_char: int
    token_count: int
    embedding: np.ndarray
    page_start: int | None = None
    page_end: int | None = None
    section: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class DocumentMeta:
    """A document's metadata and, when kept, its original file (``content``) for re-extraction."""

    source: str
    sha256: str
    media_type: str
    size_bytes: int
    title: str | None
    document_date: datetime | None
    content: bytes | None = None


@dataclass(frozen=True)
class StoredDocument:
    """A document as listed to users (``sift docs``, the Corpora page)."""

    id: int
    source: str
    title: str | None
    media_type: str
    size_bytes: int
    sha256: str
    document_date: datetime | None
    chunks: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredPassage:
    """A chunk with its document's metadata, as retrieval returns it."""

    chunk_id: int
    text: str
    document_id: int
    source: str
    title: str | None
    document_date: datetime | None
    media_type: str
    page_start: int | None = None
    page_end: int | None = None
    section: str | None = None


@dataclass
class _CachedIndex:
    version: int
    index: LexicalIndex | None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets the app read while the CLI ingests; synchronous=FULL keeps every commit across a power cut.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade_schema(engine: Engine, migrations: Path = MIGRATIONS) -> None:
    """Bring the database to the newest schema of a migrations folder with alembic (a no-op when it is there).

    The store's own folder by default; a layer with tables of its own runs its folder after, with a version table
    of its own (set in that folder's env.py). One process migrates at a time (several opening a fresh store at once
    raced to create alembic's version table): SQLite under a lock file beside the database, PostgreSQL under an
    advisory lock held by the migrating transaction.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations))
    with _migration_lock(engine), engine.connect() as connection, _foreign_keys_off(connection), connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    try:
        with FileLock(f"{database}.migrate.lock", timeout=_MIGRATION_WAIT_S):
            yield
    except Timeout as exc:
        raise StoreError(f"Another Sift process has been upgrading {database} for {_MIGRATION_WAIT_S} s.") from exc


@contextlib.contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite migrations rebuild tables (batch mode); with foreign keys on, dropping the old table would cascade
    into its children. The pragma only takes effect outside a transaction, hence the commits."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


class Store:
    """SQL metadata + a vector store (FAISS files or pgvector rows) for all corpora under one data directory."""

    def __init__(self, engine: Engine, index_folder: Path, index_type: str):
        self.engine = engine
        self.index_folder = index_folder
        self.index_type = index_type
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.vectors: VectorStore = FaissVectors(self, index_type)
        self._lexical: dict[int, _CachedIndex] = {}
        self._unsaved: set[int] = set()
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        database_url: str,
        data_dir: Path,
        index_type: str = "flat",
        *,
        vector_store: str = "faiss",
        hnsw: HnswParams | None = None,
        device: str = "cpu",
    ) -> Store:
        """The store over a database (migrated to the newest schema) with its index files under ``data_dir``.

        ``vector_store`` is faiss (a file per corpus; ``index_type`` the kind of FAISS index: flat (exact), ivf or
        hnsw; searched on ``device``) or pgvector (PostgreSQL only; HNSW with ``hnsw``'s parameters).
        """
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        engine = _engine(database_url)
        upgrade_schema(engine)
        store = cls(engine, data_dir / "indexes", index_type)
        if vector_store == "pgvector":
            try:
                store.vectors = PgVectors(engine, hnsw)
            except ValueError as exc:
                raise StoreError(str(exc)) from exc
        elif vector_store == "faiss":
            store.vectors = FaissVectors(store, index_type, device)
        else:
            raise StoreError(f"Unknown vector store {vector_store!r}; use faiss or pgvector.")
        store.remove_orphaned_indexes()
        return store

    def session(self) -> Session:
        return self._sessions()

    # ------------------------------------------------------------------------------------------ corpora

    def corpus(self, name: str, create: bool = False) -> Corpus:
        """The corpus of that name, looked up in NFC form; with ``create``, made when missing, its name checked by
        :func:`corpus_name` first. Creating a name another process creates at the same moment gives both the one
        corpus. Names are checked only on creation (a corpus made before the checks stays reachable), except for what no
        database holds (``check_text``), refused before the lookup: PostgreSQL refuses a NUL even in a WHERE clause."""
        name = unicodedata.normalize("NFC", check_text(str(name), "A corpus name")).strip()
        if create:
            name = corpus_name(name)
        with self.session() as session:
            found = session.scalar(select(Corpus).where(Corpus.name == name))
            if found is not None:
                return found
            if not name:
                raise StoreError("A corpus needs a name.")
            if not create:
                # Not the names there are: whoever asks may not be allowed to see them all.
                raise CorpusNotFound(f"No corpus named {name!r}.")
            corpus = Corpus(name=name, index_version=0)
            session.add(corpus)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                found = session.scalar(select(Corpus).where(Corpus.name == name))
                if found is None:
                    raise
                return found
            return corpus

    def corpus_names(self) -> list[str]:
        with self.session() as session:
            return list(session.scalars(select(Corpus.name).order_by(Corpus.name)))

    def delete_corpus(self, name: str) -> int:
        """Remove a corpus, its documents, chunks and index files. Returns the number of documents.

        Rows other layers keep about the corpus are theirs to remove first; their foreign keys cascade on databases
        that enforce them.
        """
        corpus = self.corpus(name)
        with self._lock, self.session() as session:
            # The version bump locks the corpus row first (as every write does), so a write in flight either commits
            # before this delete, which then removes it, or finds the corpus gone.
            try:
                self._bump_version(session, corpus.id)
            except CorpusDeleted as exc:
                raise CorpusNotFound(f"Corpus {corpus.name!r} was deleted meanwhile.") from exc
            count = session.scalar(select(func.count(Document.id)).where(Document.corpus_id == corpus.id)) or 0
            # Explicit deletes, children first, so this holds on databases without ON DELETE CASCADE enforcement.
            document_ids = select(Document.id).where(Document.corpus_id == corpus.id)
            session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(document_ids)))
            session.execute(delete(Document).where(Document.corpus_id == corpus.id))
            session.execute(delete(Corpus).where(Corpus.id == corpus.id))
            session.commit()
            self._forget(corpus.id)
        return count

    # ------------------------------------------------------------------------------------------ documents

    def document_fingerprint(self, corpus_id: int, source: str) -> str | None:
        """The SHA-256 stored for ``source`` in the corpus, or None if it is not there."""
        with self.session() as session:
            return session.scalar(
                select(Document.sha256).where(Document.corpus_id == corpus_id, Document.source == source)
            )

    def write_document(
        self, corpus_id: int, meta: DocumentMeta, chunks: list[Chunk], *, if_sha256: str | None = None
    ) -> tuple[str, int]:
        """Add the document, or replace the one with the same source, in one transaction.

        With ``if_sha256`` (re-extraction) only a document still holding that file is replaced; one deleted or
        changed meanwhile raises DocumentNotFound; a corpus deleted meanwhile raises CorpusDeleted (checked in this
        transaction: the corpus's id is never reused). Returns ("added" | "replaced", document id).
        """
        with self._lock, self.session() as session:
            version = self._bump_version(session, corpus_id)
            document = session.scalar(
                select(Document).where(Document.corpus_id == corpus_id, Document.source == meta.source)
            )
            if if_sha256 is not None and (document is None or document.sha256 != if_sha256):
                raise DocumentNotFound(f"{meta.source} was changed or deleted meanwhile.")
            removed_ids: list[int] = []
            if document is None:
                status = "added"
                document = Document(
                    corpus_id=corpus_id,
                    source=meta.source,
                    sha256=meta.sha256,
                    media_type=meta.media_type,
                    size_bytes=meta.size_bytes,
                )
                session.add(document)
            else:
                status = "replaced"
                removed_ids = list(session.scalars(select(ChunkRow.id).where(ChunkRow.document_id == document.id)))
                session.execute(delete(ChunkRow).where(ChunkRow.document_id == document.id))
            document.sha256 = meta.sha256
            document.media_type = meta.media_type
            document.size_bytes = meta.size_bytes
            document.title = meta.title
            document.document_date = meta.document_date
            document.content = meta.content
            document.updated_at = utcnow()
            session.flush()
            rows = [
                ChunkRow(
                    document_id=document.id,
                    ordinal=c.ordinal,
                    text=c.text,
                    start_char=c.start_char,
                    end_char=c.end_char,
                    token_count=c.token_count,
                    embedding=np.ascontiguousarray(c.embedding, dtype=np.float32).tobytes(),
                    page_start=c.page_start,
                    page_end=c.page_end,
                    section=c.section,
                )
                for c in chunks
            ]
            session.add_all(rows)
            session.flush()
            added = np.array([r.id for r in rows], dtype=np.int64)
            matrix = np.stack([c.embedding for c in chunks]).astype(np.float32) if chunks else None
            self.vectors.write(session, corpus_id, added, matrix)
            session.commit()
            self._committed(corpus_id, version, np.array(removed_ids, dtype=np.int64), added, matrix)
            return status, document.id

    def delete_document(self, corpus_name: str, document_id: int) -> str:
        """Remove one document with its chunks and vectors. Returns its source name."""
        corpus = self.corpus(corpus_name)
        with self._lock, self.session() as session:
            document = session.scalar(
                select(Document).where(Document.id == document_id, Document.corpus_id == corpus.id)
            )
            if document is None:
                raise DocumentNotFound(f"No document with id {document_id} in corpus {corpus_name!r}.")
            source = document.source
            version = self._bump_version(session, corpus.id)
            removed = np.array(
                list(session.scalars(select(ChunkRow.id).where(ChunkRow.document_id == document_id))), dtype=np.int64
            )
            session.execute(delete(ChunkRow).where(ChunkRow.document_id == document_id))
            session.execute(delete(Document).where(Document.id == document_id))
            session.commit()
            self._committed(corpus.id, version, removed, np.array([], dtype=np.int64), None)
        self.save_indexes()
        return source

    def documents(self, corpus_name: str) -> list[StoredDocument]:
        corpus = self.corpus(corpus_name)
        with self.session() as session:
            counts = (
                select(ChunkRow.document_id, func.count(ChunkRow.id).label("n"))
                .group_by(ChunkRow.document_id)
                .subquery()
            )
            rows = session.execute(
                select(Document, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.document_id == Document.id)
                .where(Document.corpus_id == corpus.id)
                .order_by(Document.source)
            ).all()
            return [
                StoredDocument(
                    id=d.id,
                    source=d.source,
                    title=d.title,
                    media_type=d.media_type,
                    size_bytes=d.size_bytes,
                    sha256=d.sha256,
                    document_date=d.document_date,
                    chunks=n,
                    created_at=d.created_at,
                    updated_at=d.updated_at,
                )
                for d, n in rows
            ]

    def document_ids(self, corpus_id: int) -> list[int]:
        with self.session() as session:
            return list(
                session.scalars(select(Document.id).where(Document.corpus_id == corpus_id).order_by(Document.id))
            )

    def document_meta(self, corpus_id: int, document_id: int) -> DocumentMeta:
        """A document's metadata with its original file (None where it was not kept); DocumentNotFound for an id
        not in that corpus."""
        with self.session() as session:
            document = session.scalar(
                select(Document)
                .where(Document.id == document_id, Document.corpus_id == corpus_id)
                .options(undefer(Document.content))
            )
            if document is None:
                raise DocumentNotFound(f"No document with id {document_id} in this corpus.")
            date = document.document_date
            return DocumentMeta(
                document.source,
                document.sha256,
                document.media_type,
                document.size_bytes,
                document.title,
                # SQLite gives back the UTC time it stored without its zone; the loaders' dates carry it.
                date.replace(tzinfo=UTC) if date is not None and date.tzinfo is None else date,
                document.content,
            )

    def document_chunks(self, document_id: int) -> list[Chunk]:
        """A document's passages in order, with their ids and embeddings."""
        with self.session() as session:
            rows = session.scalars(
                select(ChunkRow).where(ChunkRow.document_id == document_id).order_by(ChunkRow.ordinal)
            ).all()
        return [
            Chunk(
                r.ordinal,
                r.text,
                r.start_char,
                r.end_char,
                r.token_count,
                np.frombuffer(r.embedding, dtype=np.float32),
                r.page_start,
                r.page_end,
                r.section,
                r.id,
            )
            for r in rows
        ]

    # ------------------------------------------------------------------------------------------ passages

    def passages(self, corpus_id: int, chunk_ids: list[int]) -> dict[int, StoredPassage]:
        """Chunks by id, with their documents' metadata; ids not in that corpus are left out."""
        if not chunk_ids:
            return {}
        with self.session() as session:
            rows = session.execute(
                select(
                    ChunkRow.id,
                    ChunkRow.text,
                    Document.id,
                    Document.source,
                    Document.title,
                    Document.document_date,
                    Document.media_type,
                    ChunkRow.page_start,
                    ChunkRow.page_end,
                    ChunkRow.section,
                )
                .join(Document, Document.id == ChunkRow.document_id)
                .where(ChunkRow.id.in_(chunk_ids), Document.corpus_id == corpus_id)
            ).all()
        return {row[0]: StoredPassage(*row) for row in rows}

    def embeddings(self, corpus_id: int, chunk_ids: list[int]) -> dict[int, np.ndarray]:
        """Stored passage vectors by chunk id (any index type; an IVF index cannot give its vectors back); ids not in
        that corpus are left out."""
        if not chunk_ids:
            return {}
        with self.session() as session:
            rows = session.execute(
                select(ChunkRow.id, ChunkRow.embedding)
                .join(Document, Document.id == ChunkRow.document_id)
                .where(ChunkRow.id.in_(chunk_ids), Document.corpus_id == corpus_id)
            ).all()
        return {chunk_id: np.frombuffer(blob, dtype=np.float32) for chunk_id, blob in rows}

    def chunk_ids(self, corpus_id: int) -> set[int]:
        with self.session() as session:
            return set(
                session.scalars(
                    select(ChunkRow.id)
                    .join(Document, Document.id == ChunkRow.document_id)
                    .where(Document.corpus_id == corpus_id)
                )
            )

    # ------------------------------------------------------------------------------------------ vectors

    def vector_hits(self, corpus_id: int, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The corpus's top ``k`` (chunk id, inner product) for a (1, dim) normalised query, from its vector store."""
        self.committed_version_of(corpus_id)  # a deleted corpus is an error in every backend, not an empty list
        hits = self.vectors.search(corpus_id, query, k)
        if not hits and not self.vectors.keeps_files:
            self._check_vectors_moved(corpus_id)
        return hits

    def _check_vectors_moved(self, corpus_id: int) -> None:
        """Raise StoreError when the corpus has passages but pgvector none of their vectors: a store switched to
        pgvector before ``sift migrate-vectors`` moved them (FAISS files are rebuilt from SQL, pgvector rows not)."""
        with self.session() as session:
            name = session.scalar(select(Corpus.name).where(Corpus.id == corpus_id))
            passages = session.scalar(
                select(func.count(ChunkRow.id))
                .join(Document, Document.id == ChunkRow.document_id)
                .where(Document.corpus_id == corpus_id)
            )
        if passages:
            raise StoreError(
                f"Corpus {name!r} has {passages} passages but none of their vectors is in pgvector yet: run "
                f"`sift migrate-vectors --to pgvector --corpus {shlex.quote(name)}`, or set vector_store = 'faiss'."
            )

    def vector_count(self, corpus_id: int) -> int:
        """How many vectors the corpus has in its vector store (one per passage once it is up to date); 0 once the
        corpus is deleted, in either store (FAISS asks SQL for the corpus's version, which is gone with it)."""
        try:
            return self.vectors.count(corpus_id)
        except CorpusNotFound:
            return 0

    def vector_index(self, corpus_id: int):
        """The corpus's FAISS index at the version SQL records (FAISS store only), or None without passages."""
        if not isinstance(self.vectors, FaissVectors):
            raise StoreError(f"The {self.vectors.kind} vector store has no FAISS index.")
        return self.vectors.index(corpus_id)

    def lexical_index(self, corpus_id: int) -> LexicalIndex | None:
        """The corpus's BM25 index at the version SQL records, or None for a corpus without passages.

        With FAISS, loaded from its folder when current, else rebuilt from the passages' texts in SQL and saved;
        with pgvector, kept in this process's memory only and rebuilt from SQL when the version moved.
        """
        with self._lock, self.session() as session:
            version = self.committed_version(session, corpus_id)
            if (cached := self._lexical.get(corpus_id)) is not None and cached.version == version:
                return cached.index
            files = self.vectors.keeps_files
            index = lexical.load_index(self.index_folder, corpus_id, version) if files else None
            if index is None:
                rows = self._chunk_column(session, corpus_id, ChunkRow.text)
                if rows:
                    index = LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows])
                    if files:
                        lexical.save_index(index, self.index_folder, corpus_id, version)
                        self.forget_if_deleted(corpus_id)
            self._lexical[corpus_id] = _CachedIndex(version, index)
            return index

    def committed_version(self, session: Session, corpus_id: int) -> int:
        """The index version SQL records for the corpus (the one its index files must carry)."""
        version = session.scalar(select(Corpus.index_version).where(Corpus.id == corpus_id))
        if version is None:
            raise CorpusNotFound(f"No corpus with id {corpus_id}.")
        return version

    def committed_version_of(self, corpus_id: int) -> int:
        with self.session() as session:
            return self.committed_version(session, corpus_id)

    def save_indexes(self) -> None:
        """Write every index changed in memory since the last save (ingestion calls this after a batch)."""
        with self._lock:
            for corpus_id in sorted(self._unsaved):
                try:
                    self.vectors.save(corpus_id)
                    if self.vectors.keeps_files:
                        self.lexical_index(corpus_id)  # rebuilt whole: BM25's statistics are corpus-wide
                except CorpusNotFound:  # deleted meanwhile: nothing to save, and no file may stay
                    self._forget(corpus_id)
            self._unsaved.clear()

    def remove_orphaned_indexes(self) -> None:
        """Remove the index files of corpora SQL no longer has (a delete killed between its commit and its file
        removal). Files are listed before SQL is read: a file can only exist once its corpus was committed."""
        on_disk = vectors.corpus_ids_on_disk(self.index_folder)
        if not on_disk:
            return
        with self.session() as session:
            known = set(session.scalars(select(Corpus.id).where(Corpus.id.in_(on_disk))))
        for corpus_id in on_disk - known:
            logger.info("removing the index files of deleted corpus %d", corpus_id)
            self._forget(corpus_id)

    def forget_if_deleted(self, corpus_id: int) -> None:
        """Drop a corpus's cached indexes and files when SQL no longer has it (a delete committed meanwhile)."""
        with self.session() as session:
            if session.get(Corpus, corpus_id) is None:
                self._forget(corpus_id)

    def _forget(self, corpus_id: int) -> None:
        """Drop a deleted corpus's cached indexes and their files."""
        self._lexical.pop(corpus_id, None)
        self._unsaved.discard(corpus_id)
        self.vectors.forget(corpus_id)
        vectors.remove_indexes(self.index_folder, corpus_id)
        lexical.remove_indexes(self.index_folder, corpus_id)

    def _bump_version(self, session: Session, corpus_id: int) -> int:
        """The corpus's next index version, in the caller's transaction. The update is the transaction's first write
        and locks the corpus row (PostgreSQL) or the database (SQLite) until commit; no row means the corpus is gone."""
        bumped = session.execute(
            update(Corpus)
            .where(Corpus.id == corpus_id)
            .values(index_version=Corpus.index_version + 1)
            .execution_options(synchronize_session=False)
        )
        if bumped.rowcount == 0:
            raise CorpusDeleted
        return session.scalar(select(Corpus.index_version).where(Corpus.id == corpus_id))

    def _committed(
        self, corpus_id: int, version: int, removed: np.ndarray, added: np.ndarray, matrix: np.ndarray | None
    ) -> None:
        self.vectors.committed(corpus_id, version, removed, added, matrix)
        self._unsaved.add(corpus_id)

    def _chunk_column(self, session: Session, corpus_id: int, column) -> list:
        """(chunk id, ``column``) for every passage of the corpus, by chunk id: what both indexes are rebuilt from."""
        return session.execute(
            select(ChunkRow.id, column)
            .join(Document, Document.id == ChunkRow.document_id)
            .where(Document.corpus_id == corpus_id)
            .order_by(ChunkRow.id)
        ).all()

    def stored_vectors(self, session: Session, corpus_id: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The corpus's chunk ids and their vectors as kept in SQL (None without passages), by chunk id."""
        rows = self._chunk_column(session, corpus_id, ChunkRow.embedding)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, None
        return ids, matrix_of([r[1] for r in rows])
