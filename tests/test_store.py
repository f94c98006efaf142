"""The store's schema and bookkeeping on SQLite, PostgreSQL, and PostgreSQL with pgvector (store_settings)."""

from __future__ import annotations

from sqlalchemy import inspect, text

from sift.app.pipeline import open_store


def test_schema_is_migrated_once(store_settings):
    store = open_store(store_settings)
    open_store(store_settings)  # a second open is a no-op upgrade
    tables = set(inspect(store.engine).get_table_names())
    assert {"corpora", "documents", "chunks", "alembic_version"} <= tables
    # Only a server with the pgvector extension gets the vectors' table (Debian's PostgreSQL here has none).
    assert ("chunk_vectors" in tables) == (store_settings.vector_store == "pgvector")
    with store.engine.connect() as connection:
        assert connection.execute(text("select version_num from alembic_version")).scalars().all() == ["0006"]


def test_corpora_are_created_found_and_deleted(store_settings):
    store = open_store(store_settings)
    corpus = store.corpus("notes", create=True)
    assert store.corpus("notes").id == corpus.id and store.corpus_names() == ["notes"]
    assert store.delete_corpus("notes") == 0
    assert store.corpus_names() == []
    with store.engine.connect() as connection:
        assert connection.execute(text("select count(*) from corpora")).scalar() == 0


def test_a_deleted_corpus_id_is_never_handed_out_again(store_settings):
    """An ingest still holding a deleted corpus's id must find it gone (SQLite reused the largest id)."""
    store = open_store(store_settings)
    store.corpus("kept", create=True)
    deleted = store.corpus("deleted", create=True).id
    store.delete_corpus("deleted")
    assert store.corpus("newer", create=True).id > deleted
    assert open_store(store_settings).corpus("another", create=True).id > deleted
