"""The FastAPI application: Sift's routes, and Sift's errors turned into JSON with the status that fits.

One ``Sift`` per process (``sift serve --workers N`` runs N of them over one database), made at start-up with its
models loaded, and shared by the requests, which run in threads. Requests keep their state in their own locals:
nothing of one request is stored where another could see it, and the models, shared, are used under their lock
(``sift.rerank.llm.local``).

Example::

    >>> app = create_app(Settings(data_dir="/tmp/sift-doc"))
    >>> sorted(path for path in app.openapi()["paths"] if path.startswith("/v1"))
    ['/v1/chat/completions', '/v1/models', '/v1/rerank']
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from sift.app.accounts import CorpusNameTaken
from sift.app.api import corpora, openai_compat, questions, rerank
from sift.app.api.access import current_user
from sift.app.api.edge import Edge
from sift.app.api.model_slots import ModelRequestRefused, ModelSlots, answer_busy
from sift.app.config import Settings
from sift.app.history import ConversationNotFound
from sift.app.jobs import Jobs
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift
from sift.ingestion.store import CorpusNotFound, DocumentNotFound, StoreError, readable_database_error, text_problem
from sift.rerank.llm import ModelBusy, ModelNotFound, ServerError

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over one settings object (default: from the environment, as ``sift serve``'s workers read it)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        sift = Sift(settings)
        app.state.sift = sift
        app.state.jobs = Jobs.of(sift)  # opens the database and brings its tables up to date
        if settings.auth and not sift.accounts.users():
            logger.warning(
                "Auth is on and there are no users yet: create an admin with `sift user add NAME --role admin`"
            )
        try:
            loaded = f"models loaded in {sift.load_models()} s"
        except ModelNotFound as exc:  # the server still lists, uploads and searches; questions answer 503 with this
            loaded = f"models not loaded: {exc}"
            logger.warning("The models could not be loaded: %s", exc)
        logger.info(
            "API ready in worker %d over %s, auth %s, %s",
            os.getpid(),
            settings.data_dir,
            "on" if settings.auth else "off",
            loaded,
        )
        yield

    app = FastAPI(
        title="Sift",
        version="0.1.0",
        summary="Chat with a document collection: corpora, uploads as jobs, search, cited answers, an "
        "OpenAI-compatible chat endpoint and a rerank endpoint.",
        lifespan=lifespan,
    )
    app.state.model_slots = ModelSlots.of(settings)  # each user's share of this process's models
    app.add_exception_handler(ModelRequestRefused, answer_busy)
    for router in (corpora.router, questions.router, openai_compat.router, rerank.router):
        # On every route, so none can be added without the caller the edge authenticated; the schema declares the
        # bearer scheme on each.
        app.include_router(router, dependencies=[Depends(current_user)])
    public = [app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url]
    app.add_middleware(Edge, settings=settings, public_paths=public, upload_paths=[corpora.UPLOADS])
    if not settings.auth:
        _declare_no_keys(app)
    _add_error_handlers(app)
    return app


def _declare_no_keys(app: FastAPI) -> None:
    """With auth off no request needs a key, so the schema asks for none: clients and schema-driven tools
    (schemathesis, generated clients) read the schema as a promise of what the server accepts."""
    declared = app.openapi

    def openapi() -> dict:
        schema = declared()  # FastAPI builds it once and caches it; removing the keys again changes nothing
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.pop("security", None)
        schema.get("components", {}).pop("securitySchemes", None)
        return schema

    app.openapi = openapi


def _add_error_handlers(app: FastAPI) -> None:
    def handle(status: int, message=str, headers: dict[str, str] | None = None):
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            if status >= 500:
                logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
            return JSONResponse({"detail": message(exc)}, status_code=status, headers=headers)

        return handler

    async def refuse_invalid_text(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A NUL or a lone surrogate in a string field (schemas.Text, or one pydantic refuses itself): 400, with the
        field and what is wrong; other validation errors are FastAPI's 422 (which would fail to encode a surrogate)."""
        for error in exc.errors():
            value = error.get("input")
            if isinstance(value, str) and (problem := text_problem(value)):
                field = ".".join(str(part) for part in error["loc"][1:])  # after "body"
                return JSONResponse({"detail": f"{field} {problem}."}, status_code=400)
        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(RequestValidationError, refuse_invalid_text)
    app.add_exception_handler(CorpusNameTaken, handle(409))
    app.add_exception_handler(CorpusNotFound, handle(404))
    app.add_exception_handler(DocumentNotFound, handle(404))
    app.add_exception_handler(ConversationNotFound, handle(404))  # also another user's
    app.add_exception_handler(StoreError, handle(400))  # e.g. a corpus name that cannot be one
    app.add_exception_handler(ValueError, handle(400))  # e.g. Sift.check_question's reasons
    app.add_exception_handler(PermissionError, handle(403))  # e.g. a reader creating a corpus
    app.add_exception_handler(ModelNotFound, handle(503))
    app.add_exception_handler(ModelBusy, handle(503, headers={"Retry-After": "10"}))
    app.add_exception_handler(ServerError, handle(502))
    app.add_exception_handler(SQLAlchemyError, handle(500, readable_database_error))
