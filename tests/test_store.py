"""The store's schema and bookkeeping on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, text

from sift.ingestion.store import Store


def test_schema_is_migrated_once(any_db_settings):
    store = Store.open(any_db_settings)
    Store.open(any_db_settings)  # a second open is a no-op upgrade
    tables = set(inspect(store.engine).get_table_names())
    assert {"corpora", "documents", "chunks", "rerank_traces", "conversations", "messages", "alembic_version"} <= tables
    with store.engine.connect() as connection:
        assert connection.execute(text("select version_num from alembic_version")).scalars().all() == ["0002"]


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


def test_conversations_come_back(any_db_settings):
    store = Store.open(any_db_settings)
    store.corpus("notes", create=True)
    conversation = store.start_conversation("notes", "Tides")
    store.add_message(conversation, "user", "Why are there two tides a day?")
    store.add_message(conversation, "assistant", "The moon and the sun [1].", {"citations": [{"number": 1}]})
    reopened = Store.open(any_db_settings)
    assert [c.title for c in reopened.conversations("notes")] == ["Tides"]
    messages = reopened.messages(conversation)
    assert [(m.role, m.content) for m in messages] == [("user", "Why are there two tides a day?"),
                                                       ("assistant", "The moon and the sun [1].")]
    assert messages[1].details == {"citations": [{"number": 1}]}
    store.delete_corpus("notes")
    assert reopened.messages(conversation) == []
