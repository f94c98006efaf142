"""Streamlit's own OIDC login (``st.login``) for the app, when the settings name an identity provider.

Streamlit reads a provider only from its secrets (an ``[auth]`` table); ``sift streamlit-secrets`` writes that table
from Sift's settings (``oidc_*``) into a file only its owner reads, and ``make run`` starts Streamlit with it. With no
provider configured the file has no ``[auth]`` table and the app keeps its password login. A person who logs in at
the provider is the Sift user named by their ``oidc_user_claim`` (their e-mail address by default): an admin creates
that user first (``sift user add ada@example.com --role editor``), and so decides their role; nobody else gets in.

Example::

    >>> settings = Settings(oidc_client_id="sift", oidc_client_secret="s3cret", oidc_cookie_secret="c" * 32,
    ...                     oidc_server_metadata_url="https://idp.example/.well-known/openid-configuration")
    >>> streamlit_secrets(settings)["auth"]["redirect_uri"]
    'http://localhost:8501/oauth2callback'
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import tomli_w

from sift.app.config import Settings

logger = logging.getLogger(__name__)

SECRETS_FILE = "streamlit-secrets.toml"
_COOKIE_SECRET_FILE = "oidc-cookie-secret"


def streamlit_secrets(settings: Settings) -> dict:
    """Streamlit's secrets for the settings: an ``[auth]`` table when a provider is configured, else nothing."""
    if not settings.oidc_enabled:
        return {}
    return {
        "auth": {
            "redirect_uri": settings.oidc_redirect_uri,
            "cookie_secret": settings.oidc_cookie_secret or _kept_cookie_secret(settings.data_dir),
            "client_id": settings.oidc_client_id,
            "client_secret": settings.oidc_client_secret,
            "server_metadata_url": settings.oidc_server_metadata_url,
        }
    }


def write_streamlit_secrets(settings: Settings) -> Path:
    """Write ``streamlit_secrets`` to ``data_dir/streamlit-secrets.toml`` (mode 600: it holds the client secret)."""
    path = settings.data_dir / SECRETS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        tomli_w.dump(streamlit_secrets(settings), file)
    os.chmod(path, 0o600)  # a file made by an earlier version may have had wider rights
    logger.info("Streamlit secrets written to %s (OIDC %s)", path, "on" if settings.oidc_enabled else "off")
    return path


def _kept_cookie_secret(data_dir: Path) -> str:
    """A random secret that signs Streamlit's identity cookie, made once and kept in the data directory, so that a
    restart does not log everybody out."""
    path = data_dir / _COOKIE_SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made before (or by another process just now)
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
