"""Where a store keeps its passages' vectors: FAISS files beside the database (the default) or pgvector rows in it.

Both hold, per corpus, one normalised vector per chunk under the chunk's id, and answer inner-product top-k searches.
The store calls ``write`` inside the transaction that writes a document's passages and ``committed`` after it:

- :class:`FaissVectors` keeps a FAISS file per corpus, derived from the vectors in SQL and carrying the corpus's
  ``index_version`` (``vectors.py``); ``write`` does nothing, ``committed`` patches or drops the cached index, and a
  stale or damaged file is rebuilt from SQL. Embedded, one host.
- :class:`PgVectors` keeps the vectors in PostgreSQL's ``chunk_vectors`` table (migration 0005) under an HNSW index:
  ``write`` inserts them in the document's own transaction, so passages and vectors commit together, there is no
  file to rebuild, and any number of processes on any hosts share them.

Example::

    >>> HnswParams(m=16, ef_construction=64, ef_search=100).search_width(k=500)
    500
    >>> vector_store_kinds()
    ('faiss', 'pgvector')
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    cast,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session

from sift.ingestion import vectors
from sift.ingestion.schema import ChunkRow, Document

if TYPE_CHECKING:
    from sift.ingestion.store import Store

logger = logging.getLogger(__name__)

# pgvector refuses a wider search list (hnsw.ef_search's upper bound).
_MAX_EF_SEARCH = 1000
# Any fixed number shared by every Sift process: held while one of them creates a dimension's HNSW index.
_INDEX_LOCK_KEY = 0x51F8

# As migration 0005 creates it (with foreign keys to chunks and corpora, ON DELETE CASCADE); apart from the ORM's
# metadata, which SQLite databases are built from too.
chunk_vectors = Table(
    "chunk_vectors",
    MetaData(),
    Column("chunk_id", Integer, primary_key=True),
    Column("corpus_id", Integer, nullable=False),
    # The column has no fixed dimension (a corpus's embedding model sets it); each dimension gets its own partial
    # HNSW index over ``embedding::vector(dims)``, and searches name the same expression so the planner uses it.
    Column("dims", SmallInteger, nullable=False),
    Column("embedding", Vector(), nullable=False),
)


def matrix_of(blobs: list[bytes]) -> np.ndarray:
    """Vectors as SQL keeps them (float32 bytes, one blob a passage) as one (n, dim) matrix."""
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)


def vector_store_kinds() -> tuple[str, ...]:
    return ("faiss", "pgvector")


@dataclass(frozen=True)
class HnswParams:
    """pgvector's HNSW build (``m``, ``ef_construction``) and search (``ef_search``) parameters."""

    m: int = 16
    ef_construction: int = 64
    ef_search: int = 100

    def search_width(self, k: int) -> int:
        """hnsw.ef_search for a top-``k`` search: HNSW returns at most ef_search rows, so never fewer than k."""
        return min(_MAX_EF_SEARCH, max(self.ef_search, k))


class VectorStore(Protocol):
    """A corpus's vectors under their chunk ids: written with the passages, searched by inner product."""

    kind: str
    keeps_files: bool  # whether derived files live under the data directory (and the lexical index beside them)

    def write(self, session: Session, corpus_id: int, added: np.ndarray, matrix: np.ndarray | None) -> None:
        """Inside the document's transaction, after its old chunks were deleted: store the new chunks' vectors."""

    def committed(
        self, corpus_id: int, version: int, removed: np.ndarray, added: np.ndarray, matrix: np.ndarray | None
    ) -> None:
        """After that transaction committed at corpus ``version``: bring derived copies up to date."""

    def search(self, corpus_id: int, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The top ``k`` (chunk id, inner product) for a (1, dim) query, best first."""

    def count(self, corpus_id: int) -> int:
        """How many vectors the corpus has here."""

    def stored(self, corpus_id: int, chunk_ids: list[int]) -> dict[int, np.ndarray]:
        """The vectors kept here for those chunks, as this store would search them."""

    def save(self, corpus_id: int) -> None:
        """Write whatever changed in memory for the corpus since the last save."""

    def forget(self, corpus_id: int) -> None:
        """The corpus was deleted: drop what is cached for it (the store removes its files)."""


class FaissVectors:
    """FAISS files per corpus, versioned, rebuilt from the vectors in SQL when stale or damaged."""

    kind = "faiss"
    keeps_files = True

    def __init__(self, store: Store, index_type: str = "flat", device: str = "cpu"):
        self.store = store
        self.index_type = index_type
        self.device = device
        self._indexes: dict[int, tuple[int, object]] = {}  # corpus id -> (version, faiss index or None)
        self._device_copies: dict[int, tuple[int, object]] = {}  # corpus id -> (version, its GPU copy)
        self._unsaved: set[int] = set()
        self._lock = threading.RLock()

    def index(self, corpus_id: int):
        """The corpus's FAISS index at the version SQL records, or None for a corpus without passages.

        Loaded from its file when current, else rebuilt from the vectors in SQL and saved.
        """
        with self._lock, self.store.session() as session:
            version = self.store.committed_version(session, corpus_id)
            if (cached := self._indexes.get(corpus_id)) is not None and cached[0] == version:
                return cached[1]
            index = vectors.load_index(self.store.index_folder, corpus_id, version, self.index_type)
            if index is None:
                index = self._rebuild(session, corpus_id)
                if index is not None:
                    self._save(index, corpus_id, version)
            self._indexes[corpus_id] = (version, index)
            self._unsaved.discard(corpus_id)
            return index

    def write(self, session: Session, corpus_id: int, added: np.ndarray, matrix: np.ndarray | None) -> None:
        """Nothing: SQL's vector column is this store's source; the file follows in ``committed``."""

    def committed(
        self, corpus_id: int, version: int, removed: np.ndarray, added: np.ndarray, matrix: np.ndarray | None
    ) -> None:
        with self._lock:
            incremental = vectors.supports_incremental_updates(self.index_type)
            cached = self._indexes.get(corpus_id)
            if cached is None and incremental:
                # A fresh process: start from the file of the previous version rather than rebuilding from SQL.
                previous = vectors.load_index(self.store.index_folder, corpus_id, version - 1, self.index_type)
                if previous is not None:
                    cached = self._indexes[corpus_id] = (version - 1, previous)
            if incremental and cached is not None and cached[0] == version - 1 and cached[1] is not None:
                if len(removed):
                    cached[1].remove_ids(removed)
                if matrix is not None:
                    cached[1].add_with_ids(matrix, added)
                self._indexes[corpus_id] = (version, cached[1])
            else:
                self._indexes.pop(corpus_id, None)  # rebuilt from SQL at the next search or save
            self._unsaved.add(corpus_id)

    def search(self, corpus_id: int, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        index = self.index(corpus_id)
        if index is None or index.ntotal == 0:
            return []
        scores, ids = self._searchable(corpus_id, index).search(query, min(k, index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=False) if i >= 0]

    def _searchable(self, corpus_id: int, index):
        if self.device != "cuda":
            return index
        version = self._indexes[corpus_id][0]
        cached = self._device_copies.get(corpus_id)
        if cached is None or cached[0] != version:  # the corpus changed: copy the new index
            cached = self._device_copies[corpus_id] = (version, vectors.on_device(index, self.device))
        return cached[1]

    def count(self, corpus_id: int) -> int:
        index = self.index(corpus_id)
        return 0 if index is None else int(index.ntotal)

    def stored(self, corpus_id: int, chunk_ids: list[int]) -> dict[int, np.ndarray]:
        """From the FAISS index itself where it can give vectors back (flat, HNSW), else from SQL (IVF)."""
        index = self.index(corpus_id)
        if index is None:
            return {}
        try:
            return {int(i): index.reconstruct(int(i)) for i in chunk_ids}
        except RuntimeError:  # IVF keeps no id -> vector map
            return self.store.embeddings(corpus_id, chunk_ids)

    def save(self, corpus_id: int) -> None:
        with self._lock:
            cached = self._indexes.get(corpus_id)
            if cached is not None and cached[1] is not None:
                self._save(cached[1], corpus_id, cached[0])
            elif corpus_id in self._unsaved:
                self.index(corpus_id)  # rebuilds from SQL and saves
            self._unsaved.discard(corpus_id)

    def forget(self, corpus_id: int) -> None:
        with self._lock:
            self._indexes.pop(corpus_id, None)
            self._device_copies.pop(corpus_id, None)
            self._unsaved.discard(corpus_id)

    def _save(self, index, corpus_id: int, version: int) -> None:
        """Write the corpus's index file, then make sure the corpus still exists: a delete that committed while the
        file was written may have removed the old files before this one appeared."""
        vectors.save_index(index, self.store.index_folder, corpus_id, version, self.index_type)
        self.store.forget_if_deleted(corpus_id)

    def _rebuild(self, session: Session, corpus_id: int):
        ids, matrix = self.store.stored_vectors(session, corpus_id)
        return None if matrix is None else vectors.build_index(ids, matrix, matrix.shape[1], self.index_type)


class PgVectors:
    """Vectors in PostgreSQL (pgvector), written in the passages' transaction, searched through HNSW indexes."""

    kind = "pgvector"
    keeps_files = False

    def __init__(self, engine: Engine, hnsw: HnswParams | None = None):
        if engine.dialect.name != "postgresql":
            raise ValueError(f"pgvector needs a PostgreSQL database, not {engine.dialect.name}.")
        if not inspect(engine).has_table(chunk_vectors.name):
            raise ValueError(
                "This PostgreSQL database has no pgvector extension (`CREATE EXTENSION vector` needs it installed "
                "on the server): install pgvector there and reopen Sift, or set vector_store = 'faiss'."
            )
        self.engine = engine
        self.hnsw = hnsw or HnswParams()
        self._indexed_dims: set[int] = set()

    def write(self, session: Session, corpus_id: int, added: np.ndarray, matrix: np.ndarray | None) -> None:
        """Insert the new chunks' vectors (the old ones went with their chunks, by ON DELETE CASCADE)."""
        if matrix is None or not len(added):
            return
        self.ensure_index(matrix.shape[1])
        session.execute(
            insert(chunk_vectors),
            [
                {"chunk_id": int(i), "corpus_id": corpus_id, "dims": matrix.shape[1], "embedding": row}
                for i, row in zip(added, matrix, strict=True)
            ],
        )

    def committed(
        self, corpus_id: int, version: int, removed: np.ndarray, added: np.ndarray, matrix: np.ndarray | None
    ) -> None:
        """Nothing: the vectors committed with the passages."""

    def search(self, corpus_id: int, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """HNSW first; when its filtered walk found fewer than k of this corpus's vectors (a small corpus among large
        ones), the exact scan of the corpus's rows, so a search never comes back short."""
        dims = int(query.shape[-1])
        distance = cast(chunk_vectors.c.embedding, Vector(dims)).max_inner_product(query.reshape(-1).tolist())
        statement = (
            select(chunk_vectors.c.chunk_id, distance)
            .where(chunk_vectors.c.corpus_id == corpus_id, chunk_vectors.c.dims == literal_column(str(dims)))
            .order_by(distance)
            .limit(k)
        )
        with self.engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {self.hnsw.search_width(k)}")
            rows = connection.execute(statement).all()
            if len(rows) < k and len(rows) < self.count(corpus_id, connection):
                connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
                rows = connection.execute(statement).all()
        # <#> is the negative inner product.
        return [(int(chunk_id), -float(negative)) for chunk_id, negative in rows]

    def count(self, corpus_id: int, connection=None) -> int:
        statement = select(func.count()).select_from(chunk_vectors).where(chunk_vectors.c.corpus_id == corpus_id)
        if connection is not None:
            return int(connection.scalar(statement))
        with self.engine.connect() as own:
            return int(own.scalar(statement))

    def save(self, corpus_id: int) -> None:
        """Nothing: every write committed in its transaction."""

    def forget(self, corpus_id: int) -> None:
        """Nothing: the corpus's vectors went with its rows."""

    def stored(self, corpus_id: int, chunk_ids: list[int]) -> dict[int, np.ndarray]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(chunk_vectors.c.chunk_id, chunk_vectors.c.embedding).where(
                    chunk_vectors.c.corpus_id == corpus_id, chunk_vectors.c.chunk_id.in_(chunk_ids)
                )
            ).all()
        return {int(chunk_id): np.asarray(vector, dtype=np.float32) for chunk_id, vector in rows}

    def fill_from_sql(self, corpus_id: int, batch: int = 1000) -> int:
        """Copy the vectors SQL keeps with the corpus's passages into this store, those not here yet, a batch per
        transaction: an interrupted copy continues where it stopped and never duplicates. Returns how many."""
        missing = (
            select(ChunkRow.id, ChunkRow.embedding)
            .join(Document, Document.id == ChunkRow.document_id)
            .where(Document.corpus_id == corpus_id)
            .where(~select(chunk_vectors.c.chunk_id).where(chunk_vectors.c.chunk_id == ChunkRow.id).exists())
            .order_by(ChunkRow.id)
            .limit(batch)
        )
        copied = 0
        while True:
            with Session(self.engine) as session, session.begin():
                rows = session.execute(missing).all()
                if not rows:
                    return copied
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                self.write(session, corpus_id, ids, matrix_of([r[1] for r in rows]))
            copied += len(rows)

    def remove_corpus(self, corpus_id: int) -> int:
        """Delete a corpus's vectors here (its passages stay); returns how many went."""
        with self.engine.begin() as connection:
            return connection.execute(delete(chunk_vectors).where(chunk_vectors.c.corpus_id == corpus_id)).rowcount

    def ensure_index(self, dims: int) -> None:
        """The HNSW index over vectors of ``dims`` dimensions, created once (by one process: an advisory lock) in its
        own transaction, so a document's transaction never holds the table's index-build lock."""
        if dims in self._indexed_dims:
            return
        name = f"chunk_vectors_hnsw_{dims}"
        with self.engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INDEX_LOCK_KEY})
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON chunk_vectors "
                f"USING hnsw ((embedding::vector({dims})) vector_ip_ops) "
                f"WITH (m = {int(self.hnsw.m)}, ef_construction = {int(self.hnsw.ef_construction)}) "
                f"WHERE dims = {dims}"
            )
        self._indexed_dims.add(dims)
