"""Who is using the app: with auth on, a login form (user name and password, checked by ``Accounts.authenticate``,
which refuses a name from an address, or an address, after too many failures), the identity kept in the browser
session, and a log-out button, or, where an identity provider is configured, Streamlit's own OIDC login
(``sift.app.oidc``); with auth off, ``LOCAL_ADMIN``.

Before that, the loopback rule: auth may be off only while Streamlit listens on loopback (``make run HOST=...``
passes ``--server.address``; without one Streamlit listens on every interface).

Example (ui/Home.py)::

    refuse_unless_allowed_to_listen()
    user = logged_in_user()        # draws the login form and stops the page until someone logs in
    corpora = sift().accounts.readable_corpora(user)
"""

from __future__ import annotations

import logging

import streamlit as st

from sift.app.accounts import LOCAL_ADMIN, AccountError, User
from sift.app.login_limits import TooManyAttempts
from sift.ui.markdown import escape
from sift.ui.state import CORPUS, USER, sift

logger = logging.getLogger(__name__)

USER_NAME = "user-name"  # session-state key: who logged in, looked up again on every run (a role may change)


def refuse_unless_allowed_to_listen() -> None:
    """Show why and stop every page when the app is reachable beyond loopback with auth off."""
    address = st.get_option("server.address") or "0.0.0.0"  # unset: Streamlit listens on every interface
    try:
        sift().settings.check_listening(address)
    except ValueError as refused:
        logger.error("%s", refused)
        st.error(escape(str(refused)))
        st.stop()


def logged_in_user() -> User:
    """The session's user, also kept for the pages (``state.current_user``); with auth on and nobody logged in, the
    login form, and the page stops there."""
    st.session_state.pop(USER, None)
    if not sift().settings.auth:
        st.session_state[USER] = LOCAL_ADMIN
        return LOCAL_ADMIN
    if sift().settings.oidc_enabled:
        return _provider_user()
    name = st.session_state.get(USER_NAME)
    if name is not None:
        try:
            user = sift().accounts.user(name)
        except AccountError:  # removed since logging in
            log_out()
        else:
            st.sidebar.caption(escape(f"Logged in as {user.name} ({user.role})"))
            st.sidebar.button("Log out", on_click=log_out)
            st.session_state[USER] = user
            return user
    _login_form()
    st.stop()  # raises: the rest of the page is not drawn
    raise AssertionError("st.stop() returned")


def _provider_user() -> User:
    """The Sift user the identity provider vouches for (Streamlit's ``st.login``): the one its ``oidc_user_claim``
    names, which an admin created; anyone else is told so, and stops here."""
    if not st.user.is_logged_in:
        st.title("Sift")
        st.button("Log in with your identity provider", type="primary", on_click=st.login)
        st.stop()
    claim = sift().settings.oidc_user_claim
    name = str(st.user.get(claim) or "")
    try:
        user = sift().accounts.user(name)
    except AccountError:
        logger.warning("Identity %r (%s) has no Sift user", name, claim)
        who = name or "Your identity"
        st.error(escape(f"{who} has no Sift account yet: an admin creates it with `sift user add {name} --role ...`."))
        st.button("Log out", on_click=st.logout)
        st.stop()
        raise AssertionError("st.stop() returned") from None
    st.sidebar.caption(escape(f"Logged in as {user.name} ({user.role})"))
    if st.sidebar.button("Log out"):
        st.session_state.pop(CORPUS, None)
        st.logout()
    st.session_state[USER] = user
    return user


def _login_form() -> None:
    st.title("Sift")
    with st.form("login", clear_on_submit=True):  # the password does not stay in the session's widget state
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        try:
            # The connection's address (None on localhost), or the one a trusted proxy forwarded: `make run` hands
            # Streamlit's uvicorn the settings' trusted_proxies.
            user = sift().accounts.authenticate(name, password, st.context.ip_address)
        except TooManyAttempts as refused:
            st.error(escape(str(refused)))
            return
        if user is None:
            st.error("Wrong user name or password.")  # which of the two is not told
            return
        logger.info("%s logged in", user.name)
        st.session_state[USER_NAME] = user.name
        st.rerun()


def log_out() -> None:
    st.session_state.pop(USER_NAME, None)
    st.session_state.pop(CORPUS, None)  # the next user must not start on this one's corpus
