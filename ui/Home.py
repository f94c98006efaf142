"""Sift's entry point (`streamlit run ui/Home.py`): the page navigation and the corpus every page works on.

Widgets drawn here appear on every page and keep their value across pages, hence the corpus picker lives here.
With auth on, nothing is shown before a login, and every page sees only the user's corpora.
The pages live in ui/app_pages/, not ui/pages/: Streamlit runs a folder named "pages" next to the entry file as an
old-style multipage app for the first session after start-up, bypassing this file.
"""

import logging

import streamlit as st

from sift.ui.login import logged_in_user, refuse_unless_allowed_to_listen
from sift.ui.markdown import escape
from sift.ui.state import CORPUS, keep_widget_values, models_loading, sift

logger = logging.getLogger("sift.ui.Home")  # run as a script, so __name__ is "__main__"

st.set_page_config(page_title="Sift", page_icon="🔎", layout="wide")
keep_widget_values()
refuse_unless_allowed_to_listen()
user = logged_in_user()  # with auth on, the login form until someone logs in

page = st.navigation(
    [
        st.Page("app_pages/chat.py", title="Chat", icon=":material/forum:", default=True),
        st.Page("app_pages/corpora.py", title="Corpora", icon=":material/library_books:"),
        st.Page("app_pages/inspector.py", title="Inspector", icon=":material/insights:"),
        st.Page("app_pages/evaluation.py", title="Evaluation", icon=":material/monitoring:"),
    ]
)

try:
    corpora = sift().accounts.readable_corpora(user)
    if st.session_state.get(CORPUS) not in corpora:  # first visit, or the picked corpus was just deleted
        st.session_state[CORPUS] = corpora[0] if corpora else None
    st.sidebar.selectbox("Corpus", corpora, key=CORPUS, placeholder="No corpus yet")
    page.run()
    models_loading(sift())  # once per process, in the background: the first question should not wait for them
except Exception as exc:  # whatever a page did not handle: one readable line; the traceback goes to the log
    logger.exception("The page failed")
    st.error(escape(f"Sift ran into a problem: {exc}"))
