"""The Streamlit pages, run by Streamlit's AppTest (no browser): a chat turn, conversations after a reload, uploads,
deleting only after a confirmation, creating a corpus, the Inspector's table and weights. Each test has its own data
dir."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from sift.app.answering import DOES_NOT_ANSWER, MODEL_SUMMARY
from sift.app.config import Settings
from sift.app.evidence import sentences
from sift.app.generation import UNCITED, Citation
from sift.app.history import MessageDetails
from sift.app.model_choice import ModelChoice
from sift.app.models import language_model, packaged_llm
from sift.app.pipeline import Answer, RerankTrace, Sift, Status, Token
from sift.ui.markdown import escape
from sift.ui.uploads import upload_jobs
from tests.conftest import REPO, SAMPLE_CORPUS, log_in
from tests.openai_standin import serve

HOME = str(REPO / "ui" / "Home.py")
QUESTION = "Who designed the Pharos of Alexandria?"


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory) -> Path:
    """A data dir holding the sample corpus, ingested once; tests work on copies."""
    data = tmp_path_factory.mktemp("ui-sample") / "data"
    Sift(Settings(data_dir=data)).ingest_paths(sorted(SAMPLE_CORPUS.iterdir()), "sample")
    return data


@pytest.fixture
def data_dir(sample_data, tmp_path, monkeypatch) -> Path:
    """This test's own copy of the sample data, where the app's Settings() will look (SIFT_DATA_DIR)."""
    data = tmp_path / "data"
    shutil.copytree(sample_data, data)
    monkeypatch.setenv("SIFT_DATA_DIR", str(data))
    # Most tests here answer with a stand-in: the real models, loaded in the background, would only compete for the
    # cores (test_the_app_loads_its_models_before_the_first_question turns it back on).
    monkeypatch.setenv("SIFT_APP_PRELOAD_MODELS", "false")
    st.cache_resource.clear()  # the app's Sift must be built from this test's settings
    # Auth is off in these tests, which Home.py allows only on loopback (`make run` passes the address).
    listening_on = st.get_option("server.address")
    st.config.set_option("server.address", "127.0.0.1")
    yield data
    st.config.set_option("server.address", listening_on)
    st.cache_resource.clear()


def open_app(page: str | None = None) -> AppTest:
    """A fresh browser session on the app (Home.py, then ``page``), like a reload."""
    at = AppTest.from_file(HOME, default_timeout=60).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def texts(block) -> list[str]:
    return [t.value for t in block.text]


# ------------------------------------------------------------------------------------------------ chat


def kept(stream):
    """A stand-in ``ask_stream`` that keeps the question and its answer in the conversation as the real one does:
    the page reads the answer back from there once it is written."""

    def ask_stream(self, question, corpus, history=None, conversation_id=None, **options):
        self.history.add_message(conversation_id, "user", question)
        for event in stream(self, question, corpus, history, conversation_id=conversation_id, **options):
            if isinstance(event, Answer):
                self.history.add_message(conversation_id, "assistant", event.text, event.details())
            yield event

    return ask_stream


@pytest.mark.slow
def test_the_app_loads_its_models_before_the_first_question(data_dir, monkeypatch):
    monkeypatch.setenv("SIFT_APP_PRELOAD_MODELS", "true")
    open_app()
    log = data_dir / "logs" / "sift.log"
    deadline = time.monotonic() + 300
    while "Models loaded in the background" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the models were not loaded in the background within 300 s"
        time.sleep(1)
    assert "LLM prefill measured at" in log.read_text()  # the first question's budget will be sized by this machine
    assert not Sift(Settings(data_dir=data_dir)).traces("sample")  # and no question was asked


@pytest.mark.slow
def test_chat_turn_answers_with_citations_and_comes_back_after_a_reload(data_dir):
    at = open_app()
    at.sidebar.selectbox(key="kept-mode").set_value("none")  # not a rerank test: retrieval order is enough
    at.sidebar.number_input(key="kept-k").set_value(5)
    at.chat_input(key="question").set_value(QUESTION).run(timeout=300)
    assert not at.exception and not at.error, (at.exception, at.error)

    user, assistant = at.chat_message
    assert (user.name, texts(user)) == ("user", [QUESTION])
    assert assistant.name == "assistant"
    # The default answer quotes the packaged model's best sentence of the Pharos passage (which sentence is the
    # quote scorer's measured choice: README "Answer styles"); the checks here are of the chat turn and its reload.
    answer = " ".join(texts(assistant))
    assert "Pharos" in answer and any("Quoted" in c.value for c in assistant.caption)
    assert at.status[0].label.startswith("Answered in")
    citations = [e for e in assistant.expander if e.label.startswith("\\[1\\]")]
    # the passage, shown as escaped text with its supporting sentences highlighted
    assert citations and "Sostratus" in " ".join(m.value for m in citations[0].markdown)

    # A reload is a new session: the conversation is picked in the sidebar and its turns come back from SQL.
    at = open_app()
    conversation = at.sidebar.selectbox(key="kept-conversation")
    assert conversation.value == 0 and len(conversation.options) == 2  # "New conversation" and this one
    conversation.select_index(1).run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert " ".join(texts(at.chat_message[1])) == answer
    assert any(e.label.startswith("\\[1\\]") for e in at.chat_message[1].expander)


def test_follow_up_sends_the_conversation_and_the_sidebar_settings(data_dir, monkeypatch):
    sift = Sift(Settings())
    conversation = sift.start_conversation("sample", "Pharos")
    sift.history.add_message(conversation, "user", QUESTION)
    sift.history.add_message(
        conversation,
        "assistant",
        "Sostratus of Cnidus [1].",
        MessageDetails(citations=[], trace_id=None, answered=True, standalone_question=None),
    )
    calls = []

    def fake_ask_stream(self, question, corpus, history=None, **options):
        calls.append((question, corpus, history, options))
        yield Status("Reranking 4 passages…")
        yield Token("Four hundred feet.")
        yield Answer(question, corpus, "Four hundred feet.", timings_ms={"generate": 1.0})

    monkeypatch.setattr(Sift, "ask_stream", kept(fake_ask_stream))
    at = open_app()
    at.sidebar.selectbox(key="kept-conversation").set_value(conversation)
    at.sidebar.selectbox(key="kept-mode").set_value("rebel-one-turn").run()  # draws that mode's sliders
    at.sidebar.slider(key="kept-weight-rebel-one-turn-recency").set_value(1.5)
    at.sidebar.number_input(key="kept-k").set_value(4)
    at.sidebar.number_input(key="kept-llm_k").set_value(2)
    at.sidebar.selectbox(key="kept-answer_style").set_value("generative")
    at.chat_input(key="question").set_value("How tall was it?").run()

    assert not at.exception and not at.error
    ((question, corpus, history, options),) = calls
    assert (question, corpus) == ("How tall was it?", "sample")
    assert history == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Sostratus of Cnidus [1]."},
    ]
    assert options["conversation_id"] == conversation
    assert (options["mode"], options["k"], options["llm_k"], options["top_n"]) == ("rebel-one-turn", 4, 2, 3)
    assert options["answer_style"] == "generative"
    assert options["weights"]["recency"] == 1.5 and options["weights"]["relevance"] == 1.0
    assert texts(at.chat_message[-1])[-1] == "Four hundred feet."


def test_a_question_whose_answer_was_stopped_says_so(data_dir):
    """A newer question sent while an answer is written stops it (seen in a browser): the first question is stored,
    its answer never is. The conversation says so under it, and only under it."""
    sift = Sift(Settings())
    conversation = sift.start_conversation("sample", "Pharos")
    sift.history.add_message(conversation, "user", QUESTION)  # its answer was stopped
    sift.history.add_message(conversation, "user", "How tall was it?")
    details = MessageDetails(citations=[], trace_id=None, answered=True, standalone_question=None)
    sift.history.add_message(conversation, "assistant", "Four hundred feet.", details)
    sift.history.add_message(conversation, "user", "Who built it?")  # the last, stopped too
    at = open_app()
    at.sidebar.selectbox(key="kept-conversation").set_value(conversation).run()
    assert [m.name for m in at.chat_message] == ["user", "user", "assistant", "user"]
    stopped = [any(c.value.startswith("Not answered") for c in m.caption) for m in at.chat_message]
    assert stopped == [True, False, False, True]


def test_a_failed_question_is_one_readable_line(data_dir, monkeypatch):
    def failing_ask_stream(self, question, corpus, history=None, **options):
        yield Status("Retrieving passages…")
        raise RuntimeError("The model server at http://gpu-box:8000 did not answer.")

    monkeypatch.setattr(Sift, "ask_stream", kept(failing_ask_stream))
    at = open_app()
    at.chat_input(key="question").set_value("Anything?").run()
    assert not at.exception  # no traceback
    assert "did not answer" in at.error[0].value


def test_a_question_over_the_limit_is_refused_and_kept(data_dir, monkeypatch):
    monkeypatch.setenv("SIFT_MAX_QUESTION_CHARS", "40")
    long_question = "Who designed the Pharos of Alexandria, and when?"
    at = open_app()
    at.chat_input(key="question").set_value(long_question).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        escape("The question is 48 characters long; the limit is 40 (SIFT_MAX_QUESTION_CHARS).")
    ]
    assert [c.value for c in at.code] == [long_question]  # to copy, shorten and ask again
    assert not at.chat_message and Sift(Settings(data_dir=data_dir)).conversations("sample") == []


def test_an_answer_without_citations_says_it_is_not_from_the_documents(data_dir, monkeypatch):
    def uncited(self, question, corpus, history=None, **options):
        yield Answer(question, corpus, "Bananas grow in bunches.", answered=False, timings_ms={"generate": 1.0})

    monkeypatch.setattr(Sift, "ask_stream", kept(uncited))
    at = open_app()
    at.chat_input(key="question").set_value("Anything?").run()
    assistant = at.chat_message[-1]
    assert "Bananas grow in bunches." in texts(assistant)
    assert any(c.value.endswith(escape(UNCITED)) for c in assistant.caption)


def test_a_quote_and_the_model_s_summary_it_replaced_are_labelled(data_dir, monkeypatch):
    def replaced(self, question, corpus, history=None, **options):
        quote, summary = (
            "The SCOBY ferments the tea for one to three weeks. [1]",
            "The Falkirk Wheel is a boat lift [1].",
        )
        yield Answer(
            question,
            corpus,
            quote,
            style="extractive",
            addresses_question=True,
            verified=True,
            model_summary=summary,
            timings_ms={"quote": 1.0},
        )

    monkeypatch.setattr(Sift, "ask_stream", kept(replaced))
    at = open_app()
    at.sidebar.selectbox(key="kept-answer_style").set_value("auto")
    at.chat_input(key="question").set_value("How long does a SCOBY ferment the tea?").run()
    captions = [c.value for c in at.chat_message[-1].caption]
    assert any("Quoted" in c for c in captions)
    assert any(c.endswith(escape(f"{MODEL_SUMMARY}: The Falkirk Wheel is a boat lift [1].")) for c in captions)
    assert not any(escape(DOES_NOT_ANSWER) in c for c in captions)


def test_an_answer_that_does_not_answer_the_question_says_so(data_dir, monkeypatch):
    def off_topic(self, question, corpus, history=None, **options):
        yield Answer(
            question,
            corpus,
            "The Falkirk Wheel is a boat lift [1].",
            style="generative",
            addresses_question=False,
            verified=False,
            timings_ms={"generate": 1.0},
        )

    monkeypatch.setattr(Sift, "ask_stream", kept(off_topic))
    at = open_app()
    at.sidebar.selectbox(key="kept-answer_style").set_value("generative")
    at.chat_input(key="question").set_value("How long does a SCOBY ferment the tea?").run()
    captions = [c.value for c in at.chat_message[-1].caption]
    assert any("Does not answer this question" in c and c.endswith(escape(DOES_NOT_ANSWER)) for c in captions)


def test_document_text_and_names_are_shown_as_typed(data_dir, monkeypatch):
    hostile = "<img src=x onerror=alert(1)> **bold** [link](http://evil.example)"
    citation = Citation(1, 7, 3, "[click](http://evil.example).md", None, hostile, 0.9, 1)

    def fake_ask_stream(self, question, corpus, history=None, **options):
        yield Token(hostile)
        yield Answer(question, corpus, f"{hostile} [1]", citations=[citation], timings_ms={"generate": 1.0})

    monkeypatch.setattr(Sift, "ask_stream", kept(fake_ask_stream))
    at = open_app()
    at.chat_input(key="question").set_value("Anything?").run()
    assistant = at.chat_message[-1]
    assert f"{hostile} [1]" in texts(assistant)  # st.text: neither Markdown nor HTML
    source = assistant.expander[-1]
    assert source.label == escape("[1] [click](http://evil.example).md")
    assert [m.value for m in source.markdown] == [escape(hostile)]  # every character escaped: shown as typed
    rendered = [m.value for m in [*at.markdown, *at.caption]]
    assert rendered and not [v for v in rendered if re.search(r"(?<!\\)(\]\(|<img)", v)]


def test_answer_shows_its_evidence_what_was_searched_and_its_document(data_dir, monkeypatch):
    passage = Sift(Settings()).search(QUESTION, "sample")[0]
    evidence = [(s, e) for s, e in sentences(passage.text) if "Sostratus" in passage.text[s:e]]
    citation = Citation(
        1,
        passage.chunk_id,
        passage.document_id,
        passage.source,
        passage.title,
        passage.text,
        0.9,
        1,
        evidence=evidence,
    )
    unsupported = "It was painted purple."

    def fake_ask_stream(self, question, corpus, history=None, conversation_id=None, **options):
        answer = Answer(
            question,
            corpus,
            f"Sostratus designed it [1]. {unsupported} [1]",
            citations=[citation],
            standalone_question="Who designed the Pharos of Alexandria?",
            unsupported=[unsupported],
            timings_ms={"generate": 1.0},
        )
        # Kept like the real one does, so the answer is still there on the rerun that opens the document.
        self.history.add_message(conversation_id, "user", question)
        details = MessageDetails(
            citations=answer.citations,
            trace_id=None,
            answered=True,
            standalone_question=answer.standalone_question,
            verified=False,
            unsupported=answer.unsupported,
        )
        self.history.add_message(conversation_id, "assistant", answer.text, details)
        yield answer

    monkeypatch.setattr(Sift, "ask_stream", fake_ask_stream)
    at = open_app()
    at.chat_input(key="question").set_value("Who designed it?").run()
    assert not at.exception and not at.error
    captions = [c.value for c in at.chat_message[-1].caption]
    assert escape("Searched for: Who designed the Pharos of Alexandria?") in captions
    assert any("Not verified" in c and escape(unsupported) in c for c in captions)
    source = at.chat_message[-1].expander[0]
    (shown,) = [m.value for m in source.markdown]
    start, end = evidence[0]
    assert f":orange-background[{escape(passage.text[start:end])}]" in shown  # the sentence about Sostratus

    at.chat_message[-1].expander[0].toggle[0].set_value(True).run()  # "Open in document"
    assert not at.exception
    document = at.chat_message[-1].expander[0].markdown[-1].value
    assert document != shown and ":orange-background[" in document and escape("Sostratus") in document


# ------------------------------------------------------------------------------------------------ corpora


# ------------------------------------------------------------------------------------------------ answering model

SECRET = "sk-test-0123456789abcdef"


def pick_server(at: AppTest, user: str, base_url: str, model: str, api_key: str = "") -> AppTest:
    """Pick "An OpenAI-compatible server" in the sidebar's model picker and fill in its fields (not yet saved)."""
    at.sidebar.radio(key=f"model-kind-{user}").set_value("server").run()
    at.sidebar.text_input(key=f"model-url-{user}").set_value(base_url)
    at.sidebar.text_input(key=f"model-name-{user}").set_value(model)
    at.sidebar.text_input(key=f"model-key-{user}").set_value(api_key)
    return at


def everything_shown(at: AppTest) -> str:
    """What the page sends the browser: every element, and every field's value (a password field's value is left
    out of the elements' repr)."""
    return repr(at._tree) + " ".join(str(field.value) for field in at.text_input)


def test_the_model_picker_keeps_the_choice_masks_the_key_and_asks_with_it(data_dir, monkeypatch):
    at = open_app()
    assert at.sidebar.radio(key="model-kind-local").value == "configured"
    lines = " ".join(c.value for c in at.sidebar.caption)
    assert escape("Answers: SmolLM2-135M-Instruct (packaged)") in lines  # until a choice is made
    assert escape("Reranking: SmolLM2-135M-Instruct (packaged) (the configured model)") in lines

    pick_server(at, "local", "http://gpu-box:8000/v1/", "qwen", SECRET)
    button(at, "Use this model").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    chosen = Sift(Settings()).model_choice()
    assert (chosen.kind, chosen.base_url, chosen.model, chosen.api_key) == (
        "server",
        "http://gpu-box:8000/v1",
        "qwen",
        SECRET,
    )
    lines = " ".join(c.value for c in at.sidebar.caption)
    assert escape("Auto: written by the model (a server's, whose size is not known)") in lines
    assert escape("Answers: qwen at http://gpu-box:8000/v1") in lines

    # A reload is a new session: the fields come back from SQL, the key only masked, and nowhere in full.
    at = open_app()
    assert at.sidebar.radio(key="model-kind-local").value == "server"
    assert at.sidebar.text_input(key="model-url-local").value == "http://gpu-box:8000/v1"
    key_field = at.sidebar.text_input(key="model-key-local")
    assert key_field.value == "" and key_field.placeholder == "Kept: sk-…cdef (empty: keep it)"
    assert SECRET not in everything_shown(at)
    # Saved again with the key field empty, for the same server: the key stays.
    at.sidebar.text_input(key="model-name-local").set_value("qwen-2")
    button(at, "Use this model").click().run()
    assert Sift(Settings()).model_choice() == ModelChoice("server", "", "http://gpu-box:8000/v1", "qwen-2", SECRET)

    calls = []

    def fake_ask_stream(self, question, corpus, history=None, **options):
        calls.append(options)
        yield Answer(question, corpus, "Sostratus [1].", timings_ms={"generate": 1.0})

    monkeypatch.setattr(Sift, "ask_stream", kept(fake_ask_stream))
    at.chat_input(key="question").set_value(QUESTION).run()
    assert [options["model"] for options in calls] == [Sift(Settings()).model_choice()]


def test_a_local_path_without_a_model_is_refused_in_words(data_dir, tmp_path):
    at = open_app()
    at.sidebar.radio(key="model-kind-local").set_value("local").run()
    at.sidebar.text_input(key="model-path-local").set_value(str(tmp_path / "nowhere"))
    button(at, "Use this model").click().run()
    assert [e.value for e in at.sidebar.error] == [
        escape(f"There is no folder or file {tmp_path / 'nowhere'} on the server.")
    ]
    assert Sift(Settings()).model_choice() == ModelChoice()  # nothing was kept


@pytest.mark.slow
def test_a_local_gguf_file_is_loaded_when_picked_and_auto_follows_its_size(data_dir):
    folder, gguf = packaged_llm()  # a GGUF file on this machine's disk, named by its path
    at = open_app()
    at.sidebar.radio(key="model-kind-local").set_value("local").run()
    at.sidebar.text_input(key="model-path-local").set_value(str(folder / gguf))
    button(at, "Use this model").click().run(timeout=300)
    assert not at.exception and not at.sidebar.error, (at.exception, at.sidebar.error)
    lines = " ".join(c.value for c in at.sidebar.caption)
    assert escape("Auto: quotes (the model has 135M parameters, under 1B)") in lines  # loaded, so its size is known
    assert escape(f"Answers: {folder / gguf} (local)") in lines
    assert Sift(Settings()).model_choice() == ModelChoice("local", path=str(folder / gguf))


@pytest.mark.slow
def test_a_question_is_answered_by_the_server_picked(data_dir):
    base_url, server = serve(language_model(Settings()), model_name="smollm2", api_key="k")  # records what it is sent
    try:
        at = pick_server(open_app(), "local", base_url, "smollm2", "k")
        button(at, "Use this model").click().run()
        at.sidebar.selectbox(key="kept-mode").set_value("none")  # the reranker stays local; not what is tested here
        at.sidebar.number_input(key="kept-k").set_value(5)
        at.chat_input(key="question").set_value(QUESTION).run(timeout=300)
        assert not at.exception and not at.error, (at.exception, at.error)
        written = [body for path, body in server.requests if path == "/v1/chat/completions" and body.get("stream")]
        assert written and QUESTION in written[0]["messages"][-1]["content"]  # the server wrote the answer
        assert at.status[0].label.startswith("Answered in")
    finally:
        server.shutdown()


@pytest.mark.slow
def test_test_connection_says_what_a_real_server_gives(data_dir, llama_server):
    at = pick_server(open_app(), "local", llama_server.url, "smollm2")
    button(at, "Test connection").click().run(timeout=120)
    assert not at.exception, at.exception
    shown = texts(at.sidebar)
    assert shown[:3] == [
        "✓ Serves smollm2.",
        "✓ Chat: yes, it can write answers.",
        "✓ Streaming: yes, a written answer appears as the model writes it.",
    ]
    assert "✓ Token counts: yes, timings and traces count its tokens." in shown
    # llama-cpp-python's echoed log-probabilities are a token off (README): refused, and what that costs is said.
    echo = next(t for t in shown if "(echo)" in t)
    assert echo.startswith("✗ Prompt log-probabilities (echo): no, so the quote scorer's likelihood signal")
    assert any(t.startswith("✗ Note: echo: the server's log-probabilities of the prompt") for t in shown)
    assert Sift(Settings()).model_choice() == ModelChoice()  # a test keeps nothing

    at.sidebar.text_input(key="model-name-local").set_value("llama-3-70b")
    button(at, "Test connection").click().run(timeout=120)
    assert texts(at.sidebar) == [f"✗ Sift cannot use this server: {llama_server.url} serves smollm2, not llama-3-70b."]


def test_each_user_s_model_survives_a_new_login_and_leaves_others_alone(data_dir, monkeypatch):
    accounts = Sift(Settings()).accounts
    for name in ("alice", "bob"):
        accounts.add_user(name, f"{name}'s password", "reader")
        accounts.share("sample", name, "read")
    monkeypatch.setenv("SIFT_AUTH", "true")
    monkeypatch.setenv("SIFT_ANSWER_MODEL_PICKERS", "everyone")  # by default only admins name a URL or a path
    st.cache_resource.clear()

    at = log_in("alice")
    pick_server(at, "alice", "http://gpu-box:8000/v1", "qwen", SECRET)
    button(at, "Use this model").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)

    at = log_in("alice")  # a new session, a new login
    assert at.sidebar.radio(key="model-kind-alice").value == "server"
    assert at.sidebar.text_input(key="model-url-alice").value == "http://gpu-box:8000/v1"
    assert SECRET not in everything_shown(at)
    at = log_in("bob")
    assert at.sidebar.radio(key="model-kind-bob").value == "configured"
    assert escape("Answers: SmolLM2-135M-Instruct (packaged)") in " ".join(c.value for c in at.sidebar.caption)

    monkeypatch.delenv("SIFT_ANSWER_MODEL_PICKERS")  # back to the default: admins only
    st.cache_resource.clear()
    at = log_in("alice")
    assert not at.sidebar.radio and "only admins pick another" in " ".join(c.value for c in at.sidebar.caption)
    assert escape("Answers: SmolLM2-135M-Instruct (packaged)") in " ".join(c.value for c in at.sidebar.caption)


def test_create_a_corpus_and_pick_it(data_dir):
    at = open_app("corpora")
    at.text_input(key="new-corpus").set_value("harbour")
    button(at, "Create").click().run()
    assert "harbour" in Sift(Settings()).corpora()
    assert at.sidebar.selectbox(key="corpus").value == "harbour"
    assert "harbour" in at.success[0].value


def test_upload_lists_each_file_with_its_result(data_dir, monkeypatch):
    monkeypatch.setenv("SIFT_JOB_WORKER_IDLE_SECONDS", "2")  # the worker started on demand exits soon after
    at = open_app("corpora")
    at.file_uploader[0].set_value(
        [
            ("harbour-notes.md", b"# Harbour notes\n\nThe Quillmere Light stands on Varrow Point.\n", "text/markdown"),
            ("history-of-lighthouses.md", (SAMPLE_CORPUS / "history-of-lighthouses.md").read_bytes(), "text/markdown"),
            ("empty.txt", b"", "text/plain"),
        ]
    ).run()
    assert "50 MB" in at.file_uploader[0].help  # the limit, before anyone tries
    button(at, "Add 3 files").click().run(timeout=120)
    assert not at.exception and len(at.file_uploader) == 1 and not at.file_uploader[0].value  # a fresh uploader
    assert at.get("progress")  # queued; a worker started on demand runs it

    sift = Sift(Settings())
    deadline = time.monotonic() + 240
    while not all(job.finished for job in upload_jobs(sift, "sample")) and time.monotonic() < deadline:
        time.sleep(0.5)
    at.run(timeout=120)  # as after a reload: the job's results are read back from SQL
    assert not at.exception and not at.get("progress")
    assert at.caption[0].value == "Last upload: 1 added, 0 replaced, 1 unchanged, 1 failed"
    results = at.dataframe[0].value
    assert list(results["file"]) == ["harbour-notes.md", "history-of-lighthouses.md", "empty.txt"]
    assert list(results["result"]) == ["added", "unchanged", "failed"]
    assert results["reason"].iloc[2]  # why it failed, in words
    assert len(sift.documents("sample")) == 7


def test_deleting_a_document_asks_first(data_dir):
    at = open_app("corpora")
    first = Sift(Settings()).documents("sample")[0]
    button(at, "Delete document").click().run()
    assert len(Sift(Settings()).documents("sample")) == 6  # the first click only asks
    assert first.source in at.warning[0].value.replace("\\", "")
    button(at, "Cancel").click().run()
    assert len(Sift(Settings()).documents("sample")) == 6 and not at.warning

    button(at, "Delete document").click().run()
    button(at, "Yes, delete").click().run()
    remaining = [d.id for d in Sift(Settings()).documents("sample")]
    assert len(remaining) == 5 and first.id not in remaining
    assert at.success and "Deleted" in at.success[0].value


def test_deleting_a_corpus_asks_first(data_dir):
    at = open_app("corpora")
    button(at, "Delete corpus sample").click().run()
    assert Sift(Settings()).corpora() == ["sample"]  # the first click only asks
    button(at, "Yes, delete").click().run()
    assert Sift(Settings()).corpora() == []
    assert at.sidebar.selectbox(key="corpus").value is None
    assert "Deleted corpus sample" in at.success[0].value


# ------------------------------------------------------------------------------------------------ inspector


@pytest.mark.slow
def test_inspector_table_has_a_row_per_candidate_and_the_stage_that_placed_it(data_dir):
    sift = Sift(Settings())
    for event in sift.ask_stream(QUESTION, "sample", k=6, llm_k=4, llm_budget_s=0, mode="relevance"):
        if isinstance(event, Status) and event.text.startswith("Writing the answer"):
            break  # the trace is kept once reranking is done: stop before the answer is written
    trace = sift.traces("sample")[0].trace
    at = open_app("inspector")

    table = at.dataframe[0].value
    assert len(table) == 6
    assert list(table.columns) == [
        "final rank",
        "retrieval rank",
        "change",
        "passage",
        "stage",
        "dense",
        "lexical",
        "relevance",
        "composite",
    ]
    assert list(table["final rank"]) == [1, 2, 3, 4, 5, 6]
    assert sorted(table["retrieval rank"]) == [1, 2, 3, 4, 5, 6]
    by_final = {c.final_rank: c for c in trace.candidates}
    assert list(table["retrieval rank"]) == [by_final[n].retrieval_rank for n in range(1, 7)]
    assert list(table["stage"]) == ["llm"] * 4 + ["first-stage"] * 2
    assert list(table["relevance"].isna()) == [False] * 4 + [True] * 2  # shown as "–": the LLM did not score them
    assert [m.value for m in at.metric][2:4] == ["6", "4"]
    assert any("The LLM scored the best 4 of 6 passages" in c.value for c in at.caption)
    assert [w["criterion"] for w in at.dataframe[1].value.to_dict("records")] == list(trace.weights)
    # The passage picked below the table is shown as text.
    top = by_final[1]
    assert sift.passage_texts("sample", [top.chunk_id])[top.chunk_id] == at.text[-1].value


def test_inspector_shows_the_weights_and_what_two_turn_inferred(data_dir):
    sift = Sift(Settings())
    passages = sift.search("lighthouse keepers", "sample", k=3)
    inferred = {
        "criteria": {"recency": 0.5},
        "importance": {"recency": 2.0},
        "fallback": False,
        "raw_importance": None,
        "raw_text": "recency: 2",
    }
    trace = {
        "query": "lighthouse keepers",
        "mode": "rebel-two-turn",
        "strategy": "logits",
        "model": "m",
        "weights": {"relevance": 1.0, "recency": 0.5},
        "criteria_methods": {"recency": "logits"},
        "inferred": inferred,
        "timings_ms": {"total": 1500.0},
        "tokens_processed": 0,
        "notes": [
            "The LLM's scores were not used (relevance: the server gives no log-probabilities); first-stage order."
        ],
        "candidates": [
            {
                "chunk_id": p.chunk_id,
                "document_id": p.document_id,
                "source": p.source,
                "title": p.title,
                "document_date": None,
                "retrieval_rank": p.rank,
                "retrieval_score": p.score,
                "composite": 1.0 / final,
                "criteria": [
                    {
                        "name": "recency",
                        "score": None,
                        "normalized": 0.0,
                        "weight": 0.5,
                        "fallback": True,
                        "note": "no date",
                    }
                ],
                "final_rank": final,
                "rank_change": p.rank - final,
            }
            for p, final in zip(passages, [2, 3, 1], strict=False)
        ],
    }
    sift.history.save_trace(sift.store.corpus("sample").id, RerankTrace.model_validate(trace))
    at = open_app("inspector")

    # A trace stored before the cascade: no stage, no count of LLM-scored passages; shown as unknown.
    assert [m.value for m in at.metric] == ["rebel-two-turn", "logits", "3", "–", "1 / 2", "1.5 s"]
    assert list(at.dataframe[0].value["change"]) == ["▲2", "▼1", "▼1"]
    assert list(at.dataframe[0].value["stage"]) == ["–", "–", "–"]
    assert at.dataframe[1].value.to_dict("records") == [
        {"criterion": "relevance", "weight": 1.0, "scored by": ""},
        {"criterion": "recency", "weight": 0.5, "scored by": "logits"},
    ]
    assert json.loads(at.json[0].value) == inferred  # what the first turn inferred
    assert [w.value for w in at.warning] == [escape(n) for n in trace["notes"]]  # a fallback is said, above the table


# ------------------------------------------------------------------------------------------------ evaluation


def test_evaluation_page_without_reports_says_how_to_make_one(data_dir):
    at = open_app("evaluation")
    assert "make bench" in at.info[0].value
    assert [r.value for r in at.radio] == ["rerank"]


def test_evaluation_page_runs_a_small_eval_and_shows_its_report(data_dir, datasets, monkeypatch):
    monkeypatch.setenv("SIFT_DATASETS_DIR", str(datasets))
    at = open_app("evaluation")
    assert at.text_input[0].value == str(datasets / "trec-dl19")
    at.multiselect[0].set_value(["none"])
    at.number_input[0].set_value(2)
    button(at, "Run").click().run(timeout=120)
    assert not at.exception and not at.error, (at.exception, at.error)
    assert "Report written to" in at.success[0].value

    table = at.dataframe[0].value
    assert list(table["mode:strategy"]) == ["none"] and list(table["queries"]) == [2]
    assert table["ndcg@10"][0] == table["ndcg@10 bm25"][0] > 0  # mode none keeps the BM25 order
    assert at.get("image"), "the quality-vs-time plot is shown"
    assert len(list((data_dir / "results").glob("rerank-trec-dl19-*.png"))) == 1
