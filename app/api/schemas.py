"""The HTTP API's request and response bodies (Sift's own endpoints; the OpenAI and rerank shapes live beside their
routes). Every field is described, so ``/openapi.json`` documents the API.

Example::

    >>> AskRequest(corpus="sample", question="Who designed the Pharos?").k is None
    True
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from sift.ingestion.store import text_problem
from sift.rerank.modes import Mode, Strategy

logger = logging.getLogger(__name__)

Retrieval = Literal["dense", "lexical", "hybrid"]


def _storable(text: str) -> str:
    if (problem := text_problem(text)) is not None:
        raise PydanticCustomError("invalid_text", problem)  # answered 400 by server.py, with the field
    return text


Text = Annotated[str, AfterValidator(_storable)]
"""A string field of a request: refused with a 400 that says why when it holds a NUL or a lone surrogate (a JSON
"\\ud800" escape without its pair), which the database, the model and the answer's stream cannot take."""


class Error(BaseModel):
    """What every refused request gets back."""

    detail: str = Field(description="What was wrong, in words.")


class CorpusCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=300, description="The new corpus's name.")


class CorpusOut(BaseModel):
    name: str = Field(description="The corpus's name (also its model id for /v1/chat/completions).")


class Deleted(BaseModel):
    deleted: str = Field(description="What was deleted.")
    documents: int | None = Field(None, description="Documents removed with it.")


class DocumentOut(BaseModel):
    id: int
    source: str = Field(description="The file name it was stored under.")
    title: str | None
    media_type: str
    size_bytes: int
    sha256: str
    document_date: datetime | None = Field(description="The document's own date, when it has one.")
    chunks: int = Field(description="Passages it was split into.")
    created_at: datetime
    updated_at: datetime


class SearchRequest(BaseModel):
    corpus: Text = Field(description="Corpus to search.")
    query: Text = Field(min_length=1, max_length=10_000, description="What to search for.")
    k: int = Field(10, ge=1, le=1000, description="Passages to return.")
    retrieval: Retrieval | None = Field(None, description="dense, lexical or hybrid (default: the settings').")


class Passage(BaseModel):
    chunk_id: int
    document_id: int
    source: str
    title: str | None
    text: str
    score: float = Field(description="What retrieval ranked by (cosine, BM25 or the fused score).")
    rank: int = Field(description="1-based, in retrieval order.")
    dense: float | None = Field(description="Query-passage cosine.")
    lexical: float | None = Field(description="BM25 score.")
    page_start: int | None
    page_end: int | None
    section: str | None = Field(description="Heading path, ' > ' between headings.")


class SearchResponse(BaseModel):
    query: str
    corpus: str
    passages: list[Passage]


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: Text


class AskRequest(BaseModel):
    corpus: Text = Field(description="Corpus to answer from.")
    question: Text = Field(description="The question (at most the settings' max_question_chars).")
    conversation_id: int | None = Field(
        None,
        description="A stored conversation of this corpus: its turns are the question's context, and the "
        "question and answer are added to it.",
    )
    history: list[ChatMessage] = Field(
        default_factory=list,
        description="Earlier turns, when no conversation_id is given: at most the settings' max_history_messages "
        "and max_history_chars, each user message within max_question_chars.",
    )
    mode: Mode | None = Field(None, description="Rerank mode (default: the settings').")
    strategy: Strategy | None = Field(None, description="Rerank strategy for LLM modes (default: the settings').")
    retrieval: Retrieval | None = Field(None, description="dense, lexical or hybrid (default: the settings').")
    k: int | None = Field(
        None, ge=1, le=1000, description="Passages retrieved and reranked (at most the settings' max_candidates_k)."
    )
    llm_k: int | None = Field(
        None, ge=1, le=1000, description="Of those, how many the LLM scores (at most the settings' max_rerank_llm_k)."
    )
    llm_budget_s: float | None = Field(
        None,
        ge=0,
        le=600,
        description="Seconds the LLM's scoring may take, capping llm_k (default: the settings'; 0: none), within the "
        "settings' max_rerank_llm_budget_s: a request asking for more, or for none, gets that ceiling.",
    )
    top_n: int | None = Field(
        None, ge=1, le=50, description="Passages the answer is written from (at most the settings' max_answer_top_n)."
    )
    answer_style: Literal["auto", "generative", "extractive"] | None = Field(
        None,
        description="extractive: quote the sentence that answers; generative: the model writes; auto: the quote "
        "where the model is small or its answer does not answer the question (default: the settings').",
    )
    answer_model: Literal["settings", "picked"] = Field(
        "settings",
        description="Which model writes the answer: the settings' (the default), or the one the user picked in the "
        "app's Chat sidebar (kept per user; a server or local model named there, never in a request). The reranker "
        "stays on the settings' model.",
    )


class AnswerOut(BaseModel):
    """The answer, as ``sift ask --json`` prints it."""

    question: str
    standalone_question: str | None = Field(description="The question as rewritten to stand alone, if it was.")
    followup: dict[str, Any] | None = Field(description="How the question was read in its conversation.")
    corpus: str
    answer: str = Field(description="The answer text, with [n] markers citing the citations.")
    answered: bool = Field(description="False: the corpus had nothing to answer from.")
    verified: bool = Field(description="Every sentence is supported by a passage it cites.")
    unsupported: list[str] = Field(description="Sentences no cited passage supports.")
    answer_style: str | None = Field(
        None, description="extractive (a quote of the cited passage) or generative (the model's words)."
    )
    answers_question: bool | None = Field(
        None, description="False: no sentence the answer rests on is about the question (never verified then)."
    )
    model_summary: str | None = Field(
        None, description="The model's own answer where the quote replaced it: a summary, not checked."
    )
    citations: list[dict[str, Any]] = Field(description="The cited passages, numbered as in the answer, with evidence.")
    rerank: dict[str, Any] | None = Field(description="The rerank trace: why the passages were ordered as they were.")
    trace_id: int | None = Field(description="Where that trace is kept (GET /traces/{id}).")
    timings_ms: dict[str, float]


class ConversationCreate(BaseModel):
    title: Text = Field("Conversation", max_length=300, description="A title to list it by.")


class Created(BaseModel):
    id: int


class TraceSummary(BaseModel):
    id: int
    query: str
    mode: str
    strategy: str
    created_at: datetime
