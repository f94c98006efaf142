"""Chat: questions to the picked corpus in a conversation kept in SQL; answers stream in and cite their passages.

The page owns the sidebar's conversation picker and retrieval and rerank settings; Sift does the asking and the storing.
"""

import logging
from contextlib import closing

import streamlit as st

from sift.app.documents import DocumentNotFound, passage_place
from sift.app.pipeline import (
    CANNOT_ANSWER,
    DOES_NOT_ANSWER,
    MODEL_SUMMARY,
    QUOTE_UNSURE,
    UNCITED,
    Answer,
    Citation,
    MessageDetails,
    Status,
    Token,
)
from sift.ui.markdown import escape, highlighted
from sift.ui.model_picker import answer_model_line, model_picker
from sift.ui.state import KEPT, current_corpus, current_user, sift

logger = logging.getLogger("sift.ui.app_pages.chat")  # run as a script: __name__ is "__main__"

CONVERSATION = KEPT + "conversation"
NEW = 0  # the conversation picked when none is: a new one, started by its first question (ids start at 1)
QUESTION = "question"
# Under a question whose answer was never stored: it failed, or a newer question or a change of page or setting
# stopped it while it was written.
NOT_ANSWERED = "Not answered: the answer stopped before it was complete. Ask again to get one."
# The question being answered: set when it is sent, so the input is disabled while its answer is written (a question
# sent meanwhile would stop it); the page reruns once the answer is stored, which enables the input again.
ASKED = "asked"
# What the rerun shows of the answer just written: its status line and failure, by (conversation, message position).
ANSWERED, FAILED = "answered", "failed"

st.title("Chat")
corpus = current_corpus()
if corpus is None:
    st.info("No corpus yet: create one and add files on the Corpora page.")
    st.page_link("app_pages/corpora.py", label="Go to Corpora", icon=":material/library_books:")
    st.stop()


def ask_options() -> dict:
    """The sidebar's retrieval, rerank and answer settings (the user's answering model among them), as
    ``ask_stream`` keyword arguments."""
    settings = sift().settings
    for key, default in [
        ("retrieval", settings.retrieval_mode),
        ("mode", settings.rerank_mode),
        ("strategy", settings.rerank_strategy),
        ("k", settings.candidates_k),
        ("llm_k", settings.rerank_llm_k or min(settings.candidates_k, settings.max_rerank_llm_k)),
        ("llm_budget_s", settings.rerank_llm_budget_s or 0.0),
        ("top_n", settings.answer_top_n),
        ("answer_style", settings.answer_style),
    ]:
        st.session_state.setdefault(KEPT + key, default)
    st.subheader("Retrieval")
    retrieval = st.selectbox(
        "Retrieval",
        sift().retrieval_modes,
        key=KEPT + "retrieval",
        help="dense: meaning (embeddings). lexical: exact words (BM25), for names, identifiers and flags. "
        "hybrid: both, fused.",
    )
    st.subheader("Reranking")
    mode = st.selectbox(
        "Mode",
        sift().rerank_modes,
        key=KEPT + "mode",
        help="none: retrieval order. relevance: the LLM judges relevance. rebel-one-turn: relevance "
        "and five fixed criteria. rebel-two-turn: criteria inferred per question.",
    )
    strategy = st.selectbox(
        "Strategy",
        sift().rerank_strategies,
        key=KEPT + "strategy",
        disabled=mode not in sift().llm_rerank_modes,
        help="logits: scores read from next-token probabilities (fast). generative: the model writes its scores.",
    )
    # The widgets stop at the settings' limits (sift.app.limits), which the pipeline would refuse past.
    k = st.number_input(
        "Candidates k", 1, settings.max_candidates_k, key=KEPT + "k", help="Passages retrieval hands to the reranker."
    )
    llm_k = st.number_input(
        "LLM-scored",
        1,
        settings.max_rerank_llm_k,
        key=KEPT + "llm_k",
        disabled=mode == "none",
        help="Of the k candidates, the best this many by embedding and BM25 are scored by the reranker's model; "
        "the rest keep that cheaper order below them.",
    )
    llm_budget_s = st.number_input(
        "LLM budget (s)",
        0.0,
        settings.max_rerank_llm_budget_s or 600.0,
        step=0.5,
        key=KEPT + "llm_budget_s",
        disabled=mode not in sift().llm_rerank_modes,
        help="Seconds the LLM's scoring may take: of the LLM-scored passages, it scores as many, best first, as "
        "its measured speed on this machine allows; the rest keep the cheaper order. 0: no budget, or the admin's "
        "ceiling (max_rerank_llm_budget_s) where one is set.",
    )
    top_n = st.number_input(
        "Top n", 1, settings.max_answer_top_n, key=KEPT + "top_n", help="Passages the answer is written from."
    )
    st.subheader("Answer")
    model = model_picker()
    answer_style = st.selectbox(
        "Answer style",
        sift().answer_styles,
        key=KEPT + "answer_style",
        help="extractive: the answer quotes the sentence of the passages that answers the question. generative: the "
        "model writes it. auto: a quote with a small model, or wherever the model's answer does not answer the "
        "question; the model's words with a larger one.",
    )
    st.caption(answer_model_line(model))
    weights = {}
    if defaults := sift().rerank_weights(mode):
        st.caption("Criterion weights")
        for name, default in defaults.items():
            key = f"{KEPT}weight-{mode}-{name}"
            st.session_state.setdefault(key, float(default))
            weights[name] = st.slider(name, 0.0, max(2.0, 2 * float(default)), step=0.05, key=key)
    if mode == "rebel-two-turn":
        st.caption("More criteria, and their weights, are inferred for each question.")
    return {
        "retrieval": retrieval,
        "mode": mode,
        "strategy": strategy,
        "k": int(k),
        "llm_k": int(llm_k),
        "llm_budget_s": float(llm_budget_s),
        "top_n": int(top_n),
        "answer_style": answer_style,
        "weights": weights,
        "model": model,
    }


def show_checks(text: str, details: MessageDetails):
    """Under an answer: what was searched for when the question was rewritten, a warning when the answer cites no
    passage, one when it does not answer the question, one when the passages it cites do not support it (None: an
    answer stored before answers were checked), and the model's own words where a quote replaced them."""
    if details.standalone_question:
        st.caption(escape(f"Searched for: {details.standalone_question}"))
    if details.style == "extractive" and details.answered:
        st.caption(":blue-badge[:material/format_quote: Quoted] A sentence of the passage it cites, word for word.")
    if not details.answered and text != CANNOT_ANSWER:
        st.caption(":orange-badge[:material/warning: No citation] " + escape(UNCITED))
    if details.answered and details.addresses_question is False:
        st.caption(":orange-badge[:material/warning: Does not answer this question] " + escape(DOES_NOT_ANSWER))
    elif details.answered and details.style == "extractive" and details.verified is False:
        st.caption(":gray-badge[:material/help: Check the passage] " + escape(QUOTE_UNSURE))
    elif details.answered and details.verified is False:
        unsupported_text = " · ".join(f"“{s}”" for s in details.unsupported) or "the answer"
        st.caption(
            ":orange-badge[:material/warning: Not verified] "
            + escape(f"No passage it cites supports {unsupported_text}.")
        )
    if details.model_summary:
        st.caption(escape(f"{MODEL_SUMMARY}: {details.model_summary}"))


def show_document(citation: Citation) -> None:
    """The citation's whole document, with the passage highlighted where it sits (looked up in this corpus only)."""
    try:
        document = sift().document_view(corpus, citation.document_id)
    except DocumentNotFound:
        st.warning("This document is no longer in the corpus.")
        return
    span = next((p for p in document.passages if p.chunk_id == citation.chunk_id), None)
    where = passage_place(span.page_start, span.page_end, span.section) if span else None
    st.caption(escape(" · ".join(x for x in [document.title or document.source, where] if x)))
    with st.container(height=400):
        st.markdown(highlighted(document.text, [(span.start_char, span.end_char)] if span else []))


def show_sources(citations: list[Citation], trace_id: int | None, key: str) -> None:
    """Citations under an answer; each expands to its passage as text, the sentences that support the answer
    highlighted, and can open its document. ``key`` tells one answer's controls from another's."""
    for c in citations:
        with st.expander(escape(f"[{c.number}] {c.title or c.source}")):
            where = passage_place(c.page_start, c.page_end, c.section)
            st.caption(
                escape(
                    f"{c.source} · {where + ' · ' if where else ''}document {c.document_id} · passage {c.chunk_id} "
                    f"· rank {c.rank} · score {c.score:.3f}"
                )
            )
            st.markdown(highlighted(c.text, c.evidence))
            if st.toggle("Open in document", key=f"document-{key}-{c.number}"):
                show_document(c)
    if trace_id is not None:
        st.page_link(
            "app_pages/inspector.py",
            label="Why these passages?",
            icon=":material/insights:",
            query_params={"trace": trace_id},
        )


def answer_key(trace_id: int | None, position: int) -> str:
    """The key of an answer's controls: its trace, or its place in the conversation for an answer without one."""
    return f"trace-{trace_id}" if trace_id is not None else f"message-{position}"


def stream_answer(question: str, history: list[dict], conversation_id: int, options: dict) -> None:
    """Ask, showing each step in a status line and the answer as it is written; then rerun the page, which shows
    the stored answer and enables the input again."""
    status = st.status("Retrieving passages…")
    text = st.empty()
    written = ""
    # Closed even when a rerun or a page change stops this script mid-answer: the model is freed at once, and the
    # conversation keeps the question as interrupted.
    events = sift().ask_stream(
        question, corpus, history, conversation_id=conversation_id, user=current_user(), **options
    )
    try:
        with closing(events):
            for event in events:
                if isinstance(event, Status):
                    status.update(label=event.text)
                    status.text(event.text)
                elif isinstance(event, Token):
                    written += event.text
                    text.text(written + " ▌")
                elif isinstance(event, Answer):
                    answer = event
    except Exception as exc:  # a readable line for the user, the traceback to the log
        logger.error("Answering %r failed", question[:100], exc_info=exc)
        st.session_state[FAILED] = (conversation_id, str(exc))
        st.rerun()
    seconds = sum(answer.timings_ms.values()) / 1000
    steps = " · ".join(f"{step} {ms / 1000:.1f} s" for step, ms in answer.timings_ms.items())
    # The rerun reads the answer back from the conversation, its citation markers checked and renumbered.
    st.session_state[ANSWERED] = ((conversation_id, len(history) + 1), f"Answered in {seconds:.1f} s", steps)
    st.rerun()


def question_problem(question: str) -> str | None:
    """Why Sift refuses a question, in words; None when it takes it."""
    try:
        sift().check_question(question)
    except ValueError as exc:
        return str(exc)
    return None


def take_question() -> None:
    # A chat_input callback runs before the sidebar is drawn, so the new conversation can be selected there.
    # A question Sift refuses (empty, too long) starts nothing: the page shows why, in the conversation picked.
    if question_problem(st.session_state[QUESTION]) is not None:
        return
    st.session_state[ASKED] = st.session_state[QUESTION]
    if st.session_state.get(CONVERSATION) == NEW:
        title = st.session_state[QUESTION].strip()[:80]
        st.session_state[CONVERSATION] = sift().start_conversation(corpus, title or "Conversation", current_user())


conversations = {c.id: c for c in sift().conversations(corpus, current_user())}  # the user's own
if st.session_state.get(CONVERSATION) not in conversations:  # first visit, or another corpus was picked
    st.session_state[CONVERSATION] = NEW
with st.sidebar:
    st.selectbox(
        "Conversation",
        [NEW, *conversations],
        key=CONVERSATION,
        format_func=lambda cid: (
            "New conversation"
            if cid == NEW
            else f"{conversations[cid].title} · {conversations[cid].created_at:%d %b %H:%M}"
        ),
    )
    options = ask_options()

st.caption(escape(f"Questions to “{corpus}”; every answer cites its passages."))
asked = st.session_state.pop(ASKED, None)
typed = st.chat_input("Ask a question", key=QUESTION, on_submit=take_question, disabled=asked is not None)
question = asked or typed
conversation_id = st.session_state[CONVERSATION]
past = sift().messages(corpus, conversation_id, current_user()) if conversation_id != NEW else []
answered, failed = st.session_state.pop(ANSWERED, None), st.session_state.pop(FAILED, None)
for position, message in enumerate(past):
    with st.chat_message(message.role):
        if answered and answered[0] == (conversation_id, position):
            st.status(answered[1], state="complete", expanded=False).caption(answered[2])
        st.text(message.content)  # answers quote documents: text, never Markdown or HTML
        if message.role == "user" and (position + 1 == len(past) or past[position + 1].role == "user"):
            st.caption(NOT_ANSWERED)  # the question is stored when asked, its answer once complete
        if (details := message.details) is not None and not details.interrupted:  # its checks, citations, trace
            show_checks(message.content, details)
            show_sources(details.citations, details.trace_id, answer_key(details.trace_id, position))
if failed and failed[0] == conversation_id:
    st.error(escape(failed[1]))
if question and (problem := question_problem(question)):
    st.error(escape(problem))
    with st.expander("Your question, to shorten and ask again"):
        st.code(question, language=None, wrap_lines=True)  # a copy button, and never Markdown
elif question:
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        history = [{"role": m.role, "content": m.content} for m in past]
        stream_answer(question, history, conversation_id, options)
