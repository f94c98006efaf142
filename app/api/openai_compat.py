"""OpenAI-compatible chat: ``POST /v1/chat/completions`` and ``GET /v1/models``, so the ``openai`` client library, or a
chat front end that speaks that API, can chat with a corpus. The model is the corpus's name.

The last message is the question; the user and assistant messages before it are its conversation (a follow-up such
as "When was it built?" is read in it); system messages are ignored (Sift writes its own prompt). The answer's
citations come alongside the message: ``citations`` on the completion, and on the last chunk of a stream, with
``sift``: whether the corpus answered, whether every sentence is supported, and the rerank trace's id. With auth on,
the client's ``api_key`` is a Sift API key; ``/v1/models`` lists only the corpora it can read.

Example::

    >>> from openai import OpenAI                                                     # doctest: +SKIP
    >>> client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=SIFT_KEY)        # doctest: +SKIP
    >>> reply = client.chat.completions.create(model="sample",
    ...     messages=[{"role": "user", "content": "Who designed the Pharos?"}])       # doctest: +SKIP
    >>> reply.choices[0].message.content, reply.model_extra["citations"][0]["source"] # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Generator
from contextlib import closing
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from sift.app.api.access import CurrentUser, readable_corpora
from sift.app.api.questions import checked_ask
from sift.app.api.schemas import AskRequest, ChatMessage, Error, Text
from sift.app.api.sse import MEDIA_TYPE, EventStream, sse_event
from sift.app.pipeline import Answer, Token

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: Text | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool calls...: accepted, not used

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; the sampling options (temperature, max_tokens, ...) are accepted and ignored: Sift's
    answers are written as its settings say."""

    model_config = ConfigDict(extra="allow")

    model: Text = Field(description="The corpus to answer from (GET /v1/models lists them).")
    messages: list[OpenAIMessage] = Field(min_length=1, description="The conversation; the last one is the question.")
    stream: bool = Field(False, description="Send chat.completion.chunk events, then data: [DONE].")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "sift"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


@router.get("/models", summary="The corpora the key can read, as models")
def list_models(request: Request, user: CurrentUser) -> ModelList:
    return ModelList(data=[ModelCard(id=name) for name in readable_corpora(request, user)])


def _ask_request(body: ChatCompletionRequest) -> AskRequest:
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise HTTPException(400, "The last user or assistant message must be the user's question.")
    history = [ChatMessage(role=m.role, content=m.text) for m in turns[:-1]]
    return AskRequest(corpus=body.model, question=turns[-1].text, history=history)


def _extras(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [asdict(c) for c in answer.citations],
        "sift": {"answered": answer.answered, "verified": answer.verified, "trace_id": answer.trace_id},
    }


@router.post(
    "/chat/completions",
    summary="Chat with a corpus (OpenAI's chat completions, streamed or not)",
    responses={400: {"model": Error}, 404: {"model": Error}, 200: {"content": {MEDIA_TYPE: {}}}},
)
def chat_completions(body: ChatCompletionRequest, request: Request, user: CurrentUser):
    events = checked_ask(request, user, _ask_request(body))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return EventStream(_chunks(events, completion_id, created, body.model))
    answer = next(e for e in events if isinstance(e, Answer))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
        **_extras(answer),
    }


def _chunks(events: Generator, completion_id: str, created: int, model: str) -> Generator[str]:
    """The answer's tokens as chat.completion.chunk events; the last chunk carries the citations."""

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return sse_event(None, {**body, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": ""})
    sent = ""
    try:
        with closing(events):  # closed with this stream: a client that leaves stops the answer behind it
            for event in events:
                if isinstance(event, Token) and event.text:
                    sent += event.text
                    yield chunk({"content": event.text})
                elif isinstance(event, Answer):
                    # The checked answer may go on from what was streamed (a marker completed): send the rest. Where
                    # it differs otherwise, the full text is in the last chunk's "answer".
                    if event.text.startswith(sent) and event.text != sent:
                        yield chunk({"content": event.text[len(sent) :]})
                    yield chunk({}, "stop", answer=event.text, **_extras(event))
    except Exception as exc:  # the 200 is sent: the failure can only be told in the stream
        logger.exception("Streamed chat completion failed")
        yield sse_event(None, {"error": {"message": f"{type(exc).__name__}: {exc}", "type": "server_error"}})
    yield sse_event(None, "[DONE]")
