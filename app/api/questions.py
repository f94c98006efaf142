"""Search, ask (JSON, or streamed as server-sent events), conversations and rerank traces.

``POST /ask/stream`` (or ``POST /ask`` with ``Accept: text/event-stream``) sends ``status`` events ({"text"}) as the
work goes on, ``token`` events ({"text"}) as the model writes, then one ``answer`` event: the same JSON ``POST /ask``
returns, with the citations, their evidence and the trace id. The answer event's text is the one to keep: it is the
streamed text checked against the passages (an uncited or unsupported ending is cut).

Example::

    curl -N localhost:8000/ask/stream -H 'Content-Type: application/json' \\
         -d '{"corpus": "sample", "question": "Who designed the Pharos of Alexandria?"}'
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from contextlib import closing
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from sift.app.accounts import User
from sift.app.api.access import CurrentUser, readable, readable_id, sift_of
from sift.app.api.model_slots import BUSY, holding, take_model_slot
from sift.app.api.schemas import (
    AnswerOut,
    AskRequest,
    ConversationCreate,
    Created,
    Error,
    SearchRequest,
    SearchResponse,
    TraceSummary,
)
from sift.app.api.sse import MEDIA_TYPE, EventStream, sse_event
from sift.app.history import Conversation, StoredMessage, StoredTrace
from sift.app.pipeline import Answer, Status, Token

logger = logging.getLogger(__name__)

REFUSED = {
    400: {"model": Error, "description": "The question is empty, or it or its options are past a limit (named)."},
    404: {"model": Error, "description": "No such corpus or conversation, or not one the key can read."},
}
STREAM = {200: {"content": {MEDIA_TYPE: {}}, "description": "status, token, then one answer event."}}

router = APIRouter(tags=["questions"])


@router.post(
    "/search",
    summary="Passages retrieval finds for a query, with their scores",
    responses=REFUSED,
)
def search(body: SearchRequest, request: Request, user: CurrentUser) -> SearchResponse:
    readable(request, user, body.corpus)
    candidates = sift_of(request).search(body.query, body.corpus, body.k, body.retrieval)
    return SearchResponse(query=body.query, corpus=body.corpus, passages=[asdict(c) for c in candidates])


def checked_ask(request: Request, user: User, body: AskRequest) -> Generator[Status | Token | Answer]:
    """``Sift.ask_stream`` for a request, refused (400/404/429/503) before the first event rather than in the middle
    of a stream: the user's access to the corpus, the question and its options within the limits, the conversation
    belonging to the corpus and to the user, and a turn on the model within the user's share (held until the events
    end or are closed)."""
    readable(request, user, body.corpus)
    sift = sift_of(request)
    history = [m.model_dump() for m in body.history]
    given = history if body.conversation_id is None else None  # with a conversation, its stored turns are used
    sift.check_ask(body.question, given, body.k, body.llm_k, body.top_n, body.strategy)
    if body.conversation_id is not None:
        sift.conversation(body.corpus, body.conversation_id, user)
    else:
        sift.store.corpus(body.corpus)
    release = take_model_slot(request, user)
    events = sift.ask_stream(
        body.question,
        body.corpus,
        history,
        k=body.k,
        top_n=body.top_n,
        mode=body.mode,
        strategy=body.strategy,
        llm_k=body.llm_k,
        llm_budget_s=body.llm_budget_s,
        conversation_id=body.conversation_id,
        retrieval=body.retrieval,
        user=user,
        answer_style=body.answer_style,
        model=sift.model_choice(user) if body.answer_model == "picked" else None,
    )
    return holding(events, release)


def _answer_events(events: Generator[Status | Token | Answer]) -> Generator[str]:
    try:
        with closing(events):  # closed with this stream: a client that leaves stops the answer behind it
            for event in events:
                if isinstance(event, Token) and not event.text:
                    continue  # the model's empty pieces tell a client nothing
                if isinstance(event, Answer):
                    yield sse_event("answer", event.to_dict())
                else:
                    yield sse_event("status" if isinstance(event, Status) else "token", {"text": event.text})
    except Exception as exc:  # the 200 is sent: the failure can only be told as an event
        logger.exception("Streamed answer failed")
        yield sse_event("error", {"detail": f"{type(exc).__name__}: {exc}"})


@router.post(
    "/ask",
    summary="Answer a question with citations (JSON, or SSE with Accept: text/event-stream)",
    responses={**REFUSED, **BUSY, **STREAM},
)
def ask(body: AskRequest, request: Request, user: CurrentUser) -> AnswerOut:
    events = checked_ask(request, user, body)
    if MEDIA_TYPE in request.headers.get("accept", ""):
        return EventStream(_answer_events(events))
    answer = next(e for e in events if isinstance(e, Answer))
    return AnswerOut(**answer.to_dict())


@router.post(
    "/ask/stream",
    summary="Answer a question, streamed as server-sent events",
    response_class=StreamingResponse,  # what the schema says; EventStream is one
    responses={**REFUSED, **BUSY, **STREAM},
)
def ask_stream(body: AskRequest, request: Request, user: CurrentUser) -> EventStream:
    return EventStream(_answer_events(checked_ask(request, user, body)))


# ---------------------------------------------------------------------------------------------- conversations
# A conversation is the user's who started it: another user's answers 404, as one that does not exist.


@router.get(
    "/corpora/{name}/conversations",
    tags=["conversations"],
    summary="The key's user's conversations in a corpus, newest first",
    responses=REFUSED,
)
def list_conversations(name: str, request: Request, user: CurrentUser) -> list[Conversation]:
    readable(request, user, name)
    return sift_of(request).conversations(name, user)


@router.post(
    "/corpora/{name}/conversations",
    tags=["conversations"],
    status_code=201,
    summary="Start a conversation (pass its id to /ask as conversation_id)",
    responses=REFUSED,
)
def create_conversation(name: str, body: ConversationCreate, request: Request, user: CurrentUser) -> Created:
    readable(request, user, name)
    return Created(id=sift_of(request).start_conversation(name, body.title, user))


@router.get(
    "/corpora/{name}/conversations/{conversation_id}/messages",
    tags=["conversations"],
    summary="A conversation's messages, in order",
    responses=REFUSED,
)
def list_messages(name: str, conversation_id: int, request: Request, user: CurrentUser) -> list[StoredMessage]:
    readable(request, user, name)
    return sift_of(request).messages(name, conversation_id, user)


# ---------------------------------------------------------------------------------------------- traces


@router.get(
    "/corpora/{name}/traces", tags=["traces"], summary="A corpus's rerank traces, newest first", responses=REFUSED
)
def list_traces(
    name: str, request: Request, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[TraceSummary]:
    readable(request, user, name)
    return [TraceSummary(**t.model_dump(exclude={"trace"})) for t in sift_of(request).traces(name, limit)]


@router.get(
    "/traces/{trace_id}",
    tags=["traces"],
    summary="One rerank trace: every candidate's criteria and ranks",
    responses={404: {"model": Error, "description": "No such trace."}},
)
def get_trace(trace_id: int, request: Request, user: CurrentUser) -> StoredTrace:
    history = sift_of(request).history
    corpus_id = history.trace_corpus_id(trace_id)
    allowed = corpus_id is not None and readable_id(request, user, corpus_id)
    trace = history.trace(corpus_id, trace_id) if allowed else None
    if trace is None:
        raise HTTPException(404, f"No trace {trace_id}.")
    return trace
