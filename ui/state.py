"""What every page shares: the one Sift (models load once per server process), the corpus picked in the sidebar,
messages left by button callbacks, and widget values kept across pages."""

from __future__ import annotations

import logging
import threading

import streamlit as st

from sift.app.accounts import User
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift
from sift.ui.markdown import escape

logger = logging.getLogger(__name__)

CORPUS = "corpus"  # session-state key of the sidebar's corpus picker (ui/Home.py)
USER = "user"  # session-state key of the user this run is for (ui/Home.py sets it on every run)
NOTICE = "notice"  # session-state key of a message a callback leaves for the next page run
KEPT = "kept-"  # prefix of the widget keys whose values outlive a visit to another page


@st.cache_resource(show_spinner="Loading Sift…")
def sift() -> Sift:
    sift = Sift()
    configure_logging(sift.settings)
    return sift


PRELOAD_AFTER_S = 3.0


@st.cache_resource(show_spinner=False)
def models_loading(_sift: Sift) -> threading.Thread | None:
    """Start loading the models in the background, once per app process (``app_preload_models``): the first
    question then finds them loaded, and the LLM's prefill rate measured, instead of waiting for both. A question
    asked sooner waits for the loading (``Sift.load_models`` holds the models' lock), never loads twice."""
    if not _sift.settings.app_preload_models:
        return None
    # A few seconds after the first page: the loading holds the GIL much of the time, and started at once it made the
    # first page of a fresh app appear 2.5 s later (7.7 s instead of 5.2 s); a question takes longer than that to type.
    thread = threading.Timer(PRELOAD_AFTER_S, _load_models, args=(_sift,))
    thread.name, thread.daemon = "sift-load-models", True
    thread.start()
    return thread


def _load_models(sift: Sift) -> None:
    try:
        logger.info("Models loaded in the background in %s s", sift.load_models())
    except Exception:  # the first question loads them again and shows the reason
        logger.exception("Loading the models in the background failed")


def current_user() -> User:
    """Who is logged in (``ui.login``; ``LOCAL_ADMIN`` with auth off): Home.py has checked before any page runs."""
    return st.session_state[USER]


def current_corpus() -> str | None:
    return st.session_state.get(CORPUS)


def leave_notice(kind: str, text: str) -> None:
    """Keep a message for the page to show: callbacks run before the page is drawn, so they cannot show it."""
    st.session_state[NOTICE] = (kind, text)


def notice_failure(exc: Exception, doing: str) -> None:
    """Leave the user one readable line about what failed; its traceback goes to the log."""
    logger.error("%s failed", doing, exc_info=exc)
    leave_notice("error", str(exc))


def show_notice() -> None:
    kind, text = st.session_state.pop(NOTICE, (None, None))
    if kind == "error":
        st.error(escape(text))  # notices name files and corpora: shown as typed, not as Markdown
    elif kind == "success":
        st.success(escape(text))


def keep_widget_values() -> None:
    """Streamlit forgets the value of a widget that the current page does not draw; writing it back on every run
    (Streamlit's documented workaround) keeps e.g. the Chat page's rerank settings across a visit to the Inspector."""
    for key in [k for k in st.session_state if str(k).startswith(KEPT)]:
        st.session_state[key] = st.session_state[key]
