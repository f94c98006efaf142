"""A button that asks before it destroys: the first click only asks; the second, explicit one acts."""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from sift.ui.state import leave_notice, notice_failure

logger = logging.getLogger(__name__)

PENDING = "confirm-pending"  # session-state key: the action waiting for its "Yes"


def confirm_button(label: str, key: str, question: str, action: Callable[[], str]) -> None:
    """``label`` asks ``question``; "Yes, delete" runs ``action``, whose return value is shown as a success.

    Actions run in button callbacks, before the next page run draws anything, so the sidebar's corpus list is
    already up to date when a corpus is deleted.
    """
    if st.session_state.get(PENDING) != key:
        st.button(label, key=key, on_click=_ask, args=(key,))
        return
    st.warning(question)
    with st.container(horizontal=True):
        st.button("Yes, delete", key=f"{key}-yes", type="primary", on_click=_run, args=(action,))
        st.button("Cancel", key=f"{key}-cancel", on_click=_ask, args=(None,))


def _ask(key: str | None) -> None:
    st.session_state[PENDING] = key


def _run(action: Callable[[], str]) -> None:
    st.session_state[PENDING] = None
    try:
        leave_notice("success", action())
    except Exception as exc:  # a readable line for the user, the traceback to the log
        notice_failure(exc, "a delete")
