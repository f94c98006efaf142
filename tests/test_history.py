"""The app's history (conversations, messages, rerank traces) beside the corpus store: its own migrations, typed
messages, deleting a corpus, and upgrading stores made by Sift 0.1 on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from sift.app import history as app_history
from sift.app.config import Settings
from sift.app.generation import Citation
from sift.app.history import History, MessageDetails
from sift.app.pipeline import RerankTrace, Sift
from sift.ingestion import store as corpus_store
from sift.ingestion.store import CorpusNotFound, Store
from sift.ui.inspector_view import candidate_rows

FIXTURES = Path(__file__).parent / "fixtures"
APP_TABLES = {"conversations", "messages", "rerank_traces"}
QUESTION = "Who built the first Eddystone lighthouse?"
CITATION = Citation(
    number=1,
    chunk_id=7,
    document_id=3,
    source="tides.md",
    title="Tides",
    text="The moon raises two bulges of water.",
    score=0.81,
    rank=2,
)


def open_sift(settings: Settings, embedder) -> Sift:
    sift = Sift(settings)
    sift.embedder = embedder  # the session's model: loaded once for the whole test run
    return sift


def head(migrations: Path) -> str:
    return ScriptDirectory(str(migrations)).get_current_head()


def versions(sift: Sift) -> tuple[list[str], list[str]]:
    """The store's and the app's revisions, each from its own version table."""
    with sift.store.engine.connect() as connection:
        return (
            connection.execute(text("select version_num from alembic_version")).scalars().all(),
            connection.execute(text(f"select version_num from {app_history.VERSION_TABLE}")).scalars().all(),
        )


def count(sift: Sift, table: str) -> int:
    with sift.store.engine.connect() as connection:
        return connection.execute(text(f"select count(*) from {table}")).scalar()


# ------------------------------------------------------------------------------------------ a store from Sift 0.1


def assert_store_from_0_1_is_upgraded(sift: Sift) -> None:
    """The fixture's corpus, conversation, messages and trace, all readable after the upgrade."""
    # The corpus: searchable, its FAISS index rebuilt from the vectors in SQL (the fixture has no index file).
    assert [d.source for d in sift.documents("lighthouses")] == ["eddystone.txt"]
    (hit,) = sift.search(QUESTION, "lighthouses", k=3)
    assert hit.source == "eddystone.txt" and "Henry Winstanley" in hit.text and hit.score > 0.5
    assert (sift.settings.data_dir / "indexes" / "corpus-1.v1.flat.faiss").is_file()

    # The conversation and both its messages, the answer's details typed.
    assert [(c.id, c.title) for c in sift.conversations("lighthouses")] == [(1, "Eddystone")]
    user, assistant = sift.messages("lighthouses", 1)
    assert (user.id, user.role, user.content, user.details) == (1, "user", QUESTION, None)
    assert (assistant.id, assistant.role, assistant.content) == (2, "assistant", "Henry Winstanley built it [1].")
    assert (assistant.details.trace_id, assistant.details.answered, assistant.details.standalone_question) == (
        1,
        True,
        None,
    )
    (citation,) = assistant.details.citations
    assert isinstance(citation, Citation)
    assert (citation.number, citation.chunk_id, citation.document_id, citation.source) == (1, 1, 1, "eddystone.txt")
    assert citation.text == hit.text

    # The trace the answer points at, as the Inspector lists and opens it.
    assert [(t.id, t.query, t.mode, t.strategy) for t in sift.traces("lighthouses")] == [(1, QUESTION, "none", "-")]
    trace = sift.trace("lighthouses", 1)
    assert [c.chunk_id for c in trace.trace.candidates] == [1]
    assert (trace.trace.llm_k, trace.trace.candidates[0].stage) == (None, None)  # from before the cascade
    assert [row["stage"] for row in candidate_rows(trace.trace)] == ["–"]  # the Inspector's table shows it unknown

    # The conversation goes on: the next message takes the next id.
    assert sift.history.add_message(1, "user", "And the second tower?") == 3
    assert [m.content for m in sift.messages("lighthouses", 1)][-1] == "And the second tower?"

    # Both histories at their newest revision, each in its own version table.
    assert versions(sift) == ([head(corpus_store.MIGRATIONS)], [head(app_history.MIGRATIONS)])

    # The corpora table was rebuilt to never reuse an id (SQLite) without cascading into the rows above; deleting
    # the corpus (the newest id) and creating another gives a new id.
    old_id = sift.store.corpus("lighthouses").id
    sift.delete_corpus("lighthouses")
    assert sift.store.corpus("lighthouses", create=True).id > old_id


def test_a_sqlite_store_from_0_1_keeps_its_rows(tmp_path, embedder):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(FIXTURES / "store-from-0.1.db", data_dir / "sift.db")
    assert_store_from_0_1_is_upgraded(open_sift(Settings(data_dir=data_dir), embedder))


def test_a_postgresql_store_from_0_1_keeps_its_rows(tmp_path, postgres_url, embedder):
    loader = create_engine(postgres_url)
    connection = loader.raw_connection()
    try:
        connection.cursor().execute((FIXTURES / "store-from-0.1.postgres.sql").read_text())
        connection.commit()
    finally:
        connection.close()
        loader.dispose()  # the dump emptied the connection's search_path: that connection is not reused
    assert_store_from_0_1_is_upgraded(
        open_sift(Settings(data_dir=tmp_path / "data", database_url=postgres_url), embedder)
    )


# ------------------------------------------------------------------------------------------ a fresh database


def test_the_app_tables_come_from_the_app_migrations_only(any_db_settings):
    store = Store.open(any_db_settings.resolved_database_url(), any_db_settings.data_dir)
    assert not APP_TABLES & set(inspect(store.engine).get_table_names())

    history = History.open(store.engine)
    History.open(store.engine)  # a second open is a no-op upgrade
    schema = inspect(store.engine)
    assert set(schema.get_table_names()) >= APP_TABLES
    keys = {
        table: sorted(
            (k["constrained_columns"], k["referred_table"], k["referred_columns"], k["options"].get("ondelete"))
            for k in schema.get_foreign_keys(table)
        )
        for table in ("conversations", "rerank_traces")
    }
    assert keys == {
        # A conversation's owner: removing the user leaves it ownerless (an admin's), not gone.
        "conversations": [(["corpus_id"], "corpora", ["id"], "CASCADE"), (["owner_id"], "users", ["id"], "SET NULL")],
        "rerank_traces": [(["corpus_id"], "corpora", ["id"], "CASCADE")],
    }

    # The foreign keys hold on their own: the store's delete cascades to rows it knows nothing of.
    corpus = store.corpus("notes", create=True)
    conversation = history.start_conversation(corpus.id, "Tides", owner_id=None)
    history.add_message(conversation, "user", "Why are there two tides a day?")
    history.save_trace(
        corpus.id,
        RerankTrace(
            query="tides", mode="none", strategy=None, model=None, weights={}, criteria_methods={}, candidates=[]
        ),
    )
    store.delete_corpus("notes")
    with store.engine.connect() as connection:
        for table in APP_TABLES:
            assert connection.execute(text(f"select count(*) from {table}")).scalar() == 0, table


def test_messages_come_back_typed(any_db_settings):
    sift = Sift(any_db_settings)
    sift.create_corpus("notes")
    conversation = sift.start_conversation("notes", "Tides")
    details = MessageDetails(
        citations=[CITATION],
        trace_id=None,
        answered=True,
        standalone_question="Why are there two tides a day on Earth?",
    )
    sift.history.add_message(conversation, "user", "Why two tides?")
    sift.history.add_message(conversation, "assistant", "The moon and the sun [1].", details)

    reopened = Sift(any_db_settings)
    assert [c.title for c in reopened.conversations("notes")] == ["Tides"]
    user, assistant = reopened.messages("notes", conversation)
    assert (user.role, user.content, user.details) == ("user", "Why two tides?", None)
    assert (assistant.role, assistant.content, assistant.details) == ("assistant", "The moon and the sun [1].", details)
    assert assistant.created_at >= user.created_at and assistant.id > user.id


def test_deleting_a_corpus_removes_its_conversations_messages_and_traces(any_db_settings):
    sift = Sift(any_db_settings)
    for corpus in ("notes", "almanac"):
        corpus_id = sift.store.corpus(corpus, create=True).id
        conversation = sift.start_conversation(corpus, f"About {corpus}")
        sift.history.add_message(conversation, "user", "When is high tide?")
        sift.history.add_message(
            conversation,
            "assistant",
            "At noon [1].",
            MessageDetails(citations=[CITATION], trace_id=None, answered=True, standalone_question=None),
        )
        sift.history.save_trace(
            corpus_id,
            RerankTrace(
                query="high tide",
                mode="none",
                strategy=None,
                model=None,
                weights={},
                criteria_methods={},
                candidates=[],
            ),
        )
    (kept,) = sift.conversations("almanac")

    assert sift.delete_corpus("notes") == 0
    assert sift.corpora() == ["almanac"]
    assert (count(sift, "conversations"), count(sift, "messages"), count(sift, "rerank_traces")) == (1, 2, 1)
    assert [m.content for m in sift.messages("almanac", kept.id)] == ["When is high tide?", "At noon [1]."]
    assert [t.query for t in sift.traces("almanac")] == ["high tide"]


def test_history_of_an_unknown_corpus_is_refused(settings):
    with pytest.raises(CorpusNotFound, match="No corpus named 'atlas'"):
        Sift(settings).conversations("atlas")
