"""The Streamlit app with auth on, run by AppTest: nothing before a login, a wrong password refused, the right one
shows the chat with only the user's corpora, a reader sees no upload or delete controls, and logging out; with auth
off, the app refuses to serve beyond loopback."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ui.markdown import escape
from tests.conftest import REPO

HOME = str(REPO / "ui" / "Home.py")


@pytest.fixture
def auth_app(tmp_path, monkeypatch):
    """alice (editor) owns "lights", bob (reader) is shared it to read, carol (editor) owns "vault"."""
    data = tmp_path / "data"
    accounts = Sift(Settings(data_dir=data)).accounts
    for name, role in [("alice", "editor"), ("bob", "reader"), ("carol", "editor")]:
        accounts.add_user(name, f"{name}'s password", role)
    accounts.create_corpus(accounts.user("alice"), "lights")
    accounts.create_corpus(accounts.user("carol"), "vault")
    accounts.share("lights", "bob", "read")
    monkeypatch.setenv("SIFT_DATA_DIR", str(data))
    monkeypatch.setenv("SIFT_AUTH", "true")
    st.cache_resource.clear()  # the app's Sift must be built from this test's settings
    yield
    st.cache_resource.clear()


def log_in(name: str, password: str) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert [t.label for t in at.text_input] == ["User name", "Password"] and at.title[0].value != "Chat"
    at.text_input[0].input(name)
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_a_wrong_password_is_refused(auth_app):
    at = log_in("alice", "bob's password")
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert [t.value for t in at.title] == ["Sift"] and not at.sidebar.selectbox


def test_too_many_wrong_passwords_refuse_even_the_right_one_for_a_while(auth_app, monkeypatch):
    monkeypatch.setenv("SIFT_LOGIN_MAX_FAILURES", "2")
    st.cache_resource.clear()
    for _ in range(2):
        assert [e.value for e in log_in("alice", "a guess").error] == ["Wrong user name or password."]
    at = log_in("alice", "alice's password")
    assert len(at.error) == 1 and at.error[0].value.startswith("Too many failed logins")
    assert "wait" in at.error[0].value and [t.value for t in at.title] == ["Sift"]
    assert log_in("bob", "bob's password").title[0].value == "Chat"  # her failures lock only her name


def test_the_right_password_shows_the_chat_with_only_the_users_corpora(auth_app):
    at = log_in("alice", "alice's password")
    assert not at.error and [t.value for t in at.title] == ["Chat"]
    assert at.sidebar.selectbox(key="corpus").options == ["lights"]
    assert at.sidebar.caption[0].value == escape("Logged in as alice (editor)")

    at.switch_page("app_pages/corpora.py").run()
    assert at.get("file_uploader") and any(b.label == "Create" for b in at.button)

    next(b for b in at.sidebar.button if b.label == "Log out").click().run()
    assert [t.label for t in at.text_input] == ["User name", "Password"] and not at.sidebar.selectbox


def test_a_reader_sees_shared_corpora_without_the_controls_to_change_them(auth_app):
    at = log_in("bob", "bob's password")
    assert at.sidebar.selectbox(key="corpus").options == ["lights"]
    at.switch_page("app_pages/corpora.py").run()
    assert not at.exception, at.exception
    assert not at.get("file_uploader")
    assert not any(b.label in ("Create", "Delete corpus lights") for b in at.button)


def test_beyond_loopback_the_app_refuses_to_serve_without_auth(tmp_path, monkeypatch):
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path / "data"))
    st.cache_resource.clear()
    listening_on = st.get_option("server.address")
    st.config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(HOME, default_timeout=60).run()
    finally:
        st.config.set_option("server.address", listening_on)
        st.cache_resource.clear()
    assert at.error[0].value.startswith(escape("Refusing to listen on 0.0.0.0 with auth off"))
    assert not at.sidebar.selectbox and not at.chat_input
