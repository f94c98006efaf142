"""Who is calling, and what they may do: the API's side of ``sift.app.accounts``.

With auth on, every route needs ``Authorization: Bearer <key>`` (401 without a valid one), checked by
``authenticate`` at the edge (``sift.app.api.edge``) before the body is read. A corpus the caller cannot read answers
404, the same as one that does not exist, so that names of other users' corpora are not given away; a corpus they can
read but not change, or a role that lacks the right, answers 403. With auth off every caller is ``LOCAL_ADMIN``.

Example (a route that reads a corpus)::

    @router.get("/corpora/{name}/documents")
    def list_documents(name: str, request: Request, user: CurrentUser) -> list[DocumentOut]:
        readable(request, user, name)  # 404 unless the key's user can read it
        ...
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from sift.app.accounts import LOCAL_ADMIN, Accounts, User
from sift.app.pipeline import Sift
from sift.ingestion.store import CorpusNotFound

logger = logging.getLogger(__name__)

# auto_error off: a missing key is answered 401 here (HTTPBearer's own answer is 403), and not at all with auth off.
bearer = HTTPBearer(auto_error=False, description="An API key: `sift key create --user NAME`.")


def sift_of(request: Request) -> Sift:
    """The app's one Sift (``server.create_app`` keeps it in the app's state), for any route."""
    return request.app.state.sift


def _accounts(request: Request) -> Accounts:
    return sift_of(request).accounts


def authenticate(request: Request) -> User:
    """The caller named by the request's ``Authorization: Bearer <key>`` (``LOCAL_ADMIN`` with auth off), kept in the
    request's state for ``current_user``; 401 without a valid key. The edge (``sift.app.api.edge``) calls it on the
    headers alone, before the body is read."""
    if sift_of(request).settings.auth:
        scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
        sent = scheme.lower() == "bearer" and bool(key)  # as HTTPBearer reads it: another scheme is no key
        user = _accounts(request).user_for_key(key) if sent else None
        if user is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "A valid API key is required: Authorization: Bearer <key>." if sent else "No API key was sent.",
                headers={"WWW-Authenticate": "Bearer"},
            )
    else:
        user = LOCAL_ADMIN
    request.state.user = user
    return user


def current_user(request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
    """The caller, as ``authenticate`` found them at the edge. Every route depends on it (``server.create_app``), so
    none is reachable without a key, and ``bearer`` declares the scheme on each in the schema."""
    return request.state.user


CurrentUser = Annotated[User, Depends(current_user)]


def readable(request: Request, user: User, corpus: str) -> None:
    """Raise CorpusNotFound (404) unless ``user`` can read the corpus: missing and hidden look the same."""
    if not _accounts(request).can_read(user, corpus):
        raise CorpusNotFound(f"No corpus named {corpus!r} that you can read.")


def editable(request: Request, user: User, corpus: str) -> None:
    """404 as ``readable``; 403 when the user reads the corpus but may not change it."""
    readable(request, user, corpus)
    if not _accounts(request).can_edit(user, corpus):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{user.name} ({user.role}) cannot change corpus {corpus!r}.")


def manageable(request: Request, user: User, corpus: str) -> None:
    """404 as ``readable``; 403 unless the user owns the corpus (or is an admin): deleting a whole corpus."""
    readable(request, user, corpus)
    if not _accounts(request).can_manage(user, corpus):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Only the owner of {corpus!r} or an admin can delete it.")


def readable_id(request: Request, user: User, corpus_id: int) -> bool:
    """Whether ``user`` reads the corpus of that id (a job's, a trace's)."""
    return _accounts(request).can_read_corpus_id(user, corpus_id)


def readable_corpora(request: Request, user: User) -> list[str]:
    return _accounts(request).readable_corpora(user)
