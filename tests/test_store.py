"""The store's schema and bookkeeping on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, text

from ingestion.store import Store


def test_schema_is_migrated_once(any_db_settings):
    store = Store.open(any_db_settings)
    Store.open(any_db_settings)  # a second open is a no-op upgrade
    tables = set(inspect(store.engine).get_table_names())
    assert {"corpora", "documents", "chunks", "rerank_traces", "alembic_version"} <= tables
    with store.engine.connect() as connection:
        assert connection.execute(text("select version_num from alembic_version")).scalars().all() == ["0001"]


def test_corpora_and_traces(any_db_settings):
    store = Store.open(any_db_settings)
    corpus = store.corpus("notes", create=True)
    assert store.corpus("notes").id == corpus.id and store.corpus_names() == ["notes"]
    trace = {"query": "tides", "candidates": [{"chunk_id": 1, "final_rank": 1}], "unicode": "Ünïcödé 文件"}
    store.save_trace(corpus.id, "tides", "relevance", "logits", trace)
    saved = store.traces("notes")
    assert [(t.query, t.mode, t.strategy, t.trace) for t in saved] == [("tides", "relevance", "logits", trace)]
    store.delete_corpus("notes")
    assert store.corpus_names() == []
    with store.engine.connect() as connection:
        assert connection.execute(text("select count(*) from rerank_traces")).scalar() == 0
