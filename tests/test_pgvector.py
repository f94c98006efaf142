"""pgvector on a real PostgreSQL (pgserver): HNSW search against exact search, one transaction for passages and
vectors, several processes sharing one store, clear errors where pgvector cannot be used, and
``sift migrate-vectors`` both ways (resumable, verified, the source kept until verified)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sift.app.config import Settings
from sift.app.pipeline import Sift, open_store
from sift.ingestion.ingest import IngestItem
from sift.ingestion.migrate_vectors import MigrationReport, migrate_vectors
from sift.ingestion.store import Chunk, DocumentMeta, StoreError
from sift.ingestion.vector_store import PgVectors
from tests.conftest import SAMPLE_CORPUS, settings_for
from tests.test_cli import sift as run_sift

DIM = 32


def unit_vectors(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(count, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def write_vectors(store, corpus: str, matrix: np.ndarray, source: str = "vectors.txt") -> list[int]:
    """One document whose passages carry the given vectors; returns their chunk ids in row order."""
    corpus_id = store.corpus(corpus, create=True).id
    chunks = [Chunk(i, f"passage {i}", 0, 1, 1, vector) for i, vector in enumerate(matrix)]
    meta = DocumentMeta(source, f"{len(matrix):064x}", "text/plain", 1, None, None)
    _, document_id = store.write_document(corpus_id, meta, chunks)
    return [c.id for c in store.document_chunks(document_id)]


@pytest.fixture
def pg_settings(request, tmp_path) -> Settings:
    return settings_for("pgvector", request, tmp_path)


def test_hnsw_recall_and_a_small_corpus_beside_a_large_one(pg_settings):
    store = open_store(pg_settings)
    data = unit_vectors(3000, seed=0)
    ids = np.array(write_vectors(store, "large", data))
    small = write_vectors(store, "small", unit_vectors(3, seed=1))
    large_id = store.corpus("large").id
    assert store.vector_count(large_id) == 3000

    queries = data[:40] + 0.05 * unit_vectors(40, seed=2)
    exact = ids[np.argsort(-(queries @ data.T), axis=1)[:, :10]]
    found = [[i for i, _ in store.vector_hits(large_id, q[None, :], 10)] for q in queries]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95, recall
    # the HNSW walk over the whole table meets the small corpus's 3 vectors rarely: the exact scan answers
    hits = store.vector_hits(store.corpus("small").id, queries[:1], 10)
    assert sorted(i for i, _ in hits) == sorted(small)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    with store.engine.connect() as connection:
        indexes = connection.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'chunk_vectors'"))
        assert any("hnsw" in d and f"vector({DIM})" in d and "m='16'" in d for d in indexes.scalars())


def test_passages_and_vectors_commit_together(pg_settings):
    """A vector PostgreSQL refuses (NaN) rolls its passages back with it: no passage without its vector."""
    store = open_store(pg_settings)
    write_vectors(store, "c", unit_vectors(2, seed=0), "kept.txt")
    broken = unit_vectors(3, seed=1)
    broken[2, 0] = np.nan
    with pytest.raises(SQLAlchemyError, match="NaN"):
        write_vectors(store, "c", broken, "broken.txt")
    corpus_id = store.corpus("c").id
    assert [d.source for d in store.documents("c")] == ["kept.txt"]
    assert len(store.chunk_ids(corpus_id)) == store.vector_count(corpus_id) == 2
    assert not (pg_settings.data_dir / "indexes").exists()


def test_two_processes_share_one_store(pg_settings, embedder):
    reader = with_model(pg_settings, embedder)
    reader.ingest([IngestItem.from_bytes("a.txt", b"Granite towers resist the waves.")], "shared")
    assert reader.search("granite", "shared", k=5)[0].source == "a.txt"

    # another process (another host would do the same) adds a document through the same database
    env = {"SIFT_DATABASE_URL": pg_settings.database_url, "SIFT_VECTOR_STORE": "pgvector"}
    run_sift(
        pg_settings.data_dir.parent / "other",
        "ingest",
        str(SAMPLE_CORPUS / "history-of-lighthouses.md"),
        "--corpus",
        "shared",
        env=env,
    )

    hits = reader.search("Who designed the Pharos of Alexandria?", "shared", k=3)  # no reopen, no file to reload
    assert hits[0].source.endswith("history-of-lighthouses.md")
    lexical = reader.search("Pharos Alexandria", "shared", k=3, retrieval="lexical")  # BM25 rebuilt from SQL
    assert lexical[0].source.endswith("history-of-lighthouses.md")
    assert not (pg_settings.data_dir / "indexes").exists()


def test_pgvector_refused_where_it_cannot_work(tmp_path, postgres_url):
    with pytest.raises(ValueError, match="database_url to a PostgreSQL URL"):
        Settings(data_dir=tmp_path, vector_store="pgvector")
    # Debian's PostgreSQL here has no pgvector: the store opens for FAISS, and says so for pgvector
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    assert open_store(settings).vectors.kind == "faiss"
    with pytest.raises(StoreError, match="no pgvector extension"):
        open_store(settings, "pgvector")


def migrate(settings: Settings, *args: str, check: bool = True):
    """`sift migrate-vectors ARGS --json` as a user runs it: status and report."""
    env = {"SIFT_DATABASE_URL": settings.database_url}
    process = run_sift(settings.data_dir, "migrate-vectors", *args, "--json", check=check, env=env)
    return process.returncode, json.loads(process.stdout)


def migrate_here(settings: Settings, to: str, **options) -> MigrationReport:
    """The same move in this process (what the command runs), for the steps between the command's runs."""
    source = "faiss" if to == "pgvector" else "pgvector"
    return migrate_vectors(open_store(settings, source), open_store(settings, to), "sample", **options)


def with_model(settings: Settings, embedder) -> Sift:
    sift = Sift(settings)
    sift.__dict__["embedder"] = embedder  # the session's model, not a second copy
    return sift


def test_migrate_vectors_there_and_back(pg_settings, embedder):
    faiss_settings = pg_settings.model_copy(update={"vector_store": "faiss"})
    faiss_sift = with_model(faiss_settings, embedder)
    faiss_sift.ingest_paths(sorted(SAMPLE_CORPUS.iterdir()), "sample")
    question = "How does a Fresnel lens bend light?"
    before = [h.chunk_id for h in faiss_sift.search(question, "sample", k=5)]
    passages = len(faiss_sift.store.chunk_ids(faiss_sift.store.corpus("sample").id))
    pg = PgVectors(faiss_sift.store.engine)
    corpus_id = faiss_sift.store.corpus("sample").id

    # switched to pgvector before moving the vectors: a search says what to run, rather than finding nothing
    with pytest.raises(StoreError, match=r"has \d+ passages but none .*sift migrate-vectors --to pgvector"):
        with_model(pg_settings, embedder).search(question, "sample", k=5)

    # a copy killed midway: its batches committed in chunk-id order, so the first ones are there, the rest not
    first = pg.fill_from_sql(corpus_id, batch=10)
    assert first == passages
    with faiss_sift.store.engine.begin() as connection:
        connection.execute(
            text(
                "DELETE FROM chunk_vectors WHERE chunk_id IN (SELECT chunk_id FROM chunk_vectors ORDER BY chunk_id "
                "DESC LIMIT :n)"
            ),
            {"n": first // 2},
        )

    status, report = migrate(faiss_settings, "--to", "pgvector", "--corpus", "sample")
    assert status == 0 and report["verified"], report
    assert report["copied"] == first // 2  # continued, nothing copied twice
    assert report["passages"] == report["source_count"] == report["target_count"] == passages
    assert report["sampled"] == min(200, passages) and report["mismatched"] == 0
    assert not report["source_removed"] and list((faiss_settings.data_dir / "indexes").glob("*.faiss"))

    again = migrate_here(faiss_settings, "pgvector")
    assert again.verified and again.copied == 0 and again.target_count == passages
    assert [h.chunk_id for h in with_model(pg_settings, embedder).search(question, "sample", k=5)] == before

    # a vector that differs is caught: not verified, exit 1, and nothing removed
    with faiss_sift.store.engine.begin() as connection:
        low, high = connection.execute(text("SELECT min(chunk_id), max(chunk_id) FROM chunk_vectors")).one()
        original = connection.scalar(text("SELECT embedding::text FROM chunk_vectors WHERE chunk_id = :i"), {"i": low})
        swap = "UPDATE chunk_vectors SET embedding = CAST(:v AS vector) WHERE chunk_id = :i"
        connection.execute(
            text(swap),
            {
                "v": connection.scalar(
                    text("SELECT embedding::text FROM chunk_vectors WHERE chunk_id = :i"), {"i": high}
                ),
                "i": low,
            },
        )
    bad = migrate_here(pg_settings, "faiss", remove_source=True)
    assert not bad.verified and bad.mismatched == 1 and not bad.source_removed
    assert "verified: NO" in bad.lines()[-1]
    assert pg.count(corpus_id) == passages

    with faiss_sift.store.engine.begin() as connection:
        connection.execute(text(swap), {"v": original, "i": low})
    status, back = migrate(pg_settings, "--to", "faiss", "--corpus", "sample", "--remove-source")
    assert status == 0 and back["verified"] and back["source_removed"] and back["target_count"] == passages
    assert pg.count(corpus_id) == 0
    assert [h.chunk_id for h in with_model(faiss_settings, embedder).search(question, "sample", k=5)] == before
