"""Streamlit's OIDC login (``sift.app.oidc``), tested without an identity provider: the secrets Streamlit reads are
written from the settings (and only when a provider is configured), a half-configured provider is refused by name,
and the app, run by AppTest with the identity Streamlit would hold after ``st.login``, maps it to its Sift user, refuses
an identity with no user, and keeps the password login when no provider is configured."""

from __future__ import annotations

import stat
import tomllib

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from sift.app.config import Settings
from sift.app.oidc import streamlit_secrets, write_streamlit_secrets
from sift.app.pipeline import Sift
from sift.ui.markdown import escape
from tests.conftest import REPO
from tests.test_cli import sift as run_sift

HOME = str(REPO / "ui" / "Home.py")
PROVIDER = {
    "oidc_client_id": "sift-app",
    "oidc_client_secret": "client-s3cret",
    "oidc_server_metadata_url": "https://idp.example/.well-known/openid-configuration",
}


def test_the_auth_table_is_written_only_for_a_configured_provider(tmp_path):
    plain = Settings(data_dir=tmp_path / "plain")
    assert not plain.oidc_enabled and streamlit_secrets(plain) == {}
    assert tomllib.loads(write_streamlit_secrets(plain).read_text()) == {}

    settings = Settings(data_dir=tmp_path / "data", **PROVIDER)
    path = write_streamlit_secrets(settings)
    auth = tomllib.loads(path.read_text())["auth"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the client secret
    assert {key: auth[key] for key in ("client_id", "client_secret", "server_metadata_url")} == {
        "client_id": "sift-app",
        "client_secret": "client-s3cret",
        "server_metadata_url": PROVIDER["oidc_server_metadata_url"],
    }
    assert auth["redirect_uri"] == "http://localhost:8501/oauth2callback"
    # A random cookie secret, kept: a restart must not log everybody out.
    assert len(auth["cookie_secret"]) >= 32
    assert streamlit_secrets(settings)["auth"]["cookie_secret"] == auth["cookie_secret"]
    assert (
        streamlit_secrets(Settings(data_dir=tmp_path / "other", **PROVIDER))["auth"]["cookie_secret"]
        != (auth["cookie_secret"])
    )


def test_a_half_configured_provider_is_refused_by_name():
    with pytest.raises(ValueError, match="oidc_client_secret, oidc_server_metadata_url is not set"):
        Settings(oidc_client_id="sift-app")
    with pytest.raises(ValueError, match="must end in /oauth2callback"):
        Settings(**PROVIDER, oidc_redirect_uri="https://sift.example/")


def test_the_streamlit_secrets_command_prints_the_file_make_run_passes(tmp_path):
    env = {f"SIFT_{name.upper()}": value for name, value in PROVIDER.items()}
    printed = run_sift(tmp_path / "data", "streamlit-secrets", env=env).stdout.strip()
    assert printed == str(tmp_path / "data" / "streamlit-secrets.toml")
    assert tomllib.loads((tmp_path / "data" / "streamlit-secrets.toml").read_text())["auth"]["client_id"] == "sift-app"


@pytest.fixture
def provider_app(tmp_path, monkeypatch):
    """Auth on with a provider configured; alice@example.com is an editor who owns "lights"."""
    data = tmp_path / "data"
    accounts = Sift(Settings(data_dir=data)).accounts
    accounts.add_user("alice@example.com", "unused password", "editor")
    accounts.create_corpus(accounts.user("alice@example.com"), "lights")
    monkeypatch.setenv("SIFT_DATA_DIR", str(data))
    monkeypatch.setenv("SIFT_AUTH", "true")
    for name, value in PROVIDER.items():
        monkeypatch.setenv(f"SIFT_{name.upper()}", value)
    st.cache_resource.clear()  # the app's Sift must be built from this test's settings
    yield
    st.cache_resource.clear()


def run_as(identity: dict) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60)
    at.user = identity
    at.run()
    assert not at.exception, at.exception
    return at


def test_logged_out_the_app_offers_the_provider_not_a_password(provider_app):
    at = run_as({"is_logged_in": False})
    assert [b.label for b in at.button] == ["Log in with your identity provider"]
    assert not at.text_input and not at.sidebar.selectbox


def test_the_providers_identity_is_its_sift_user(provider_app):
    at = run_as({"is_logged_in": True, "email": "alice@example.com", "name": "Alice"})
    assert not at.error and [t.value for t in at.title] == ["Chat"]
    assert at.sidebar.selectbox(key="corpus").options == ["lights"]
    assert at.sidebar.caption[0].value == escape("Logged in as alice@example.com (editor)")


def test_an_identity_without_a_sift_user_is_refused(provider_app):
    at = run_as({"is_logged_in": True, "email": "mallory@example.com"})
    assert len(at.error) == 1 and at.error[0].value.startswith(escape("mallory@example.com has no Sift account"))
    assert [b.label for b in at.button] == ["Log out"] and not at.sidebar.selectbox


def test_without_a_provider_the_app_keeps_its_password_login(provider_app, monkeypatch):
    for name in PROVIDER:
        monkeypatch.delenv(f"SIFT_{name.upper()}")
    st.cache_resource.clear()
    at = run_as({"is_logged_in": False})
    assert [t.label for t in at.text_input] == ["User name", "Password"]
