"""The sidebar's answering model: which model writes the user's answers (Sift keeps the choice per user), a test of
a server's connection, and what answer style "auto" gives with the model. The reranker stays on the configured model.

Example (ui/app_pages/chat.py, in the sidebar)::

    model = model_picker()   # the user's kept choice: ask_stream(..., model=model)
    st.caption(answer_model_line(model))
"""

from __future__ import annotations

import logging

import streamlit as st

from sift.app.model_choice import ModelChoice, capability_lines
from sift.ui.markdown import escape
from sift.ui.state import current_user, sift

logger = logging.getLogger(__name__)

LABELS = {
    "configured": "Sift's model",
    "local": "A folder or GGUF file on the server",
    "server": "An OpenAI-compatible server",
}
# Session-state keys, per user: a log-out and another user's login in the same browser session must not show the
# first user's fields.
KIND, PATH, URL, NAME, KEY, FORGET = "model-kind", "model-path", "model-url", "model-name", "model-key", "model-forget"
TESTED, PROBLEM, SAVED = "model-tested", "model-problem", "model-saved"


def _key(name: str) -> str:
    return f"{name}-{current_user().name}"


def model_picker() -> ModelChoice:
    """Draw the picker; returns the choice the user's questions are answered with (the one kept, not one being
    typed)."""
    kept = sift().model_choice(current_user())
    if not sift().may_pick_models(current_user()):
        st.caption("Answers are written by the configured model: here only admins pick another.")
        return kept
    for name, value in [(KIND, kept.kind), (PATH, kept.path), (URL, kept.base_url), (NAME, kept.model)]:
        st.session_state.setdefault(_key(name), value)
    with st.expander("Answering model", expanded=_key(PROBLEM) in st.session_state):
        kind = st.radio("Model", sift().model_kinds, format_func=LABELS.get, key=_key(KIND))
        if kind == "local":
            st.text_input(
                "Folder or .gguf file",
                key=_key(PATH),
                placeholder="/models/Qwen2.5-7B-Instruct",
                help="A Hugging Face model folder (config.json and weights) or a GGUF file, on the server's disk.",
            )
        elif kind == "server":
            st.text_input("Base URL", key=_key(URL), placeholder="http://gpu-box:8000/v1")
            st.text_input("Model name", key=_key(NAME), placeholder="Qwen/Qwen2.5-7B-Instruct")
            # The kept key is never put back into the field (a password field's value is still in the page).
            st.text_input(
                "API key",
                key=_key(KEY),
                type="password",
                placeholder=f"Kept: {kept.masked_key} (empty: keep it)" if kept.api_key else "None",
            )
            if kept.api_key:
                st.checkbox("Forget the kept key", key=_key(FORGET))
            st.button("Test connection", on_click=_test_connection, args=(kept,))
        st.button("Use this model", type="primary", on_click=_save, args=(kept,))
        if problem := st.session_state.pop(_key(PROBLEM), None):
            st.error(escape(problem))
        if tested := st.session_state.get(_key(TESTED)):
            for ok, line in tested:
                st.text(("✓ " if ok else "✗ ") + line)  # a server's own words: text, never Markdown
    return kept


def answer_model_line(model: ModelChoice) -> str:
    """Under the answer style: which model answers, what "auto" gives with it, and which model reranks (Markdown).
    A local model is loaded here once it was just picked (so a broken one says so at once), else only by the first
    question (the first page does not wait for it)."""
    just_saved = st.session_state.pop(_key(SAVED), False)
    try:
        with st.spinner("Loading the model…"):
            found = sift().answer_model(model, load=just_saved)
    except Exception as exc:  # a folder removed since it was picked, weights that do not load
        logger.error("The answering model %s failed to load", model.describe(sift().settings), exc_info=exc)
        return escape(f"The answering model {model.describe(sift().settings)} cannot be used: {exc}")
    return "  \n".join(
        escape(line)
        for line in (found.auto_line, f"Answers: {found.name}", f"Reranking: {found.reranker} (the configured model)")
    )


def _typed(kept: ModelChoice) -> ModelChoice:
    """The choice as the fields say. The kept key goes with the server it was kept for, unless it is forgotten or a
    new one typed: it is never sent to another server."""
    state = st.session_state
    kind, base_url = state[_key(KIND)], state.get(_key(URL), "").strip().rstrip("/")
    key = state.get(_key(KEY), "")
    if not key and kept.kind == "server" and base_url == kept.base_url and not state.get(_key(FORGET)):
        key = kept.api_key
    if kind == "local":
        return ModelChoice("local", path=state.get(_key(PATH), ""))
    if kind == "server":
        return ModelChoice("server", base_url=base_url, model=state.get(_key(NAME), ""), api_key=key)
    return ModelChoice()


def _save(kept: ModelChoice) -> None:
    try:
        saved = sift().save_model_choice(_typed(kept), current_user())
    except Exception as exc:  # a path that holds no model, a URL that is not one: said under the fields
        logger.info("Answering model not saved: %s", exc)
        st.session_state[_key(PROBLEM)] = str(exc)
        return
    st.session_state[_key(SAVED)] = True
    for name, value in [(PATH, saved.path), (URL, saved.base_url), (NAME, saved.model)]:
        st.session_state[_key(name)] = value
    st.session_state.pop(_key(KEY), None)  # the key is kept by Sift; the field empties
    st.session_state.pop(_key(FORGET), None)


def _test_connection(kept: ModelChoice) -> None:
    typed = _typed(kept)
    found = sift().test_model_connection(typed.base_url, typed.model.strip(), typed.api_key or None)
    st.session_state[_key(TESTED)] = capability_lines(found)
