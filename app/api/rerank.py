"""``POST /v1/rerank``: Sift's reranker for other systems, in the request/response shape of the common rerank APIs
(Cohere, Jina, Infinity): query, documents, top_n -> results with index and relevance_score, best first.

Each result also has ``criteria``: Sift's per-criterion scores for that document (relevance, dense, lexical, ... as
the mode scores them), with the weight each had. ``model`` picks Sift's rerank mode (default: the settings'); the
mode's model scores every document it has time for within ``rerank_api_budget_s``, best first by the first-stage
signals (dense, lexical), and the rest keep that order below them, without the model's criteria. ``relevance_score``
is the composite squashed into (0, 1) by the logistic function: same order, on the 0-1 scale clients expect. The
query, the documents and their characters are bounded by the settings (``sift.app.limits.check_rerank``: a 400 that
names the limit), and each user's requests by their share of the model (``model_slots``: turns, 429, 503).

Example::

    curl localhost:8000/v1/rerank -H 'Content-Type: application/json' \\
         -d '{"query": "lighthouse lamps", "documents": ["Fresnel lenses...", "Tide tables..."], "top_n": 1}'
"""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sift.app.api.access import CurrentUser, sift_of
from sift.app.api.model_slots import BUSY, take_model_slot
from sift.app.api.schemas import Error, Text
from sift.app.limits import check_rerank
from sift.rerank.modes import Mode
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["rerank"])


class TextDocument(BaseModel):
    text: Text


class RerankRequest(BaseModel):
    query: Text = Field(min_length=1, description="At most the settings' max_question_chars.")
    documents: list[Text | TextDocument] = Field(
        min_length=1, description="At most the settings' rerank_max_documents, and rerank_max_*_chars characters."
    )
    top_n: int | None = Field(None, ge=1, description="Results to return (default: all).")
    model: Mode | None = Field(None, description="Sift's rerank mode (default: the settings').")
    return_documents: bool = Field(True, description="Include each result's document text.")


class Criterion(BaseModel):
    score: float | None = Field(description="On the criterion's own scale (a 0-10 judgement, a cosine, BM25...).")
    normalized: float | None = Field(description="What entered the composite (a z-score among the documents).")
    weight: float


class RerankResult(BaseModel):
    index: int = Field(description="The document's position in the request.")
    relevance_score: float = Field(description="logistic(composite), in (0, 1); higher is better.")
    document: TextDocument | None = None
    criteria: dict[str, Criterion] = Field(description="Sift's per-criterion scores for this document.")


class RerankResponse(BaseModel):
    id: str | None = None
    model: str
    results: list[RerankResult]


@router.post(
    "/rerank",
    summary="Rerank documents for a query (Cohere/Jina-style)",
    responses={
        400: {"model": Error, "description": "The query or the documents are past a limit (named)."},
        422: {"model": Error},
        **BUSY,
    },
)
def rerank(body: RerankRequest, request: Request, user: CurrentUser) -> RerankResponse:
    sift = sift_of(request)
    texts = [d if isinstance(d, str) else d.text for d in body.documents]
    check_rerank(sift.settings, body.query, texts)
    # The position is the candidate's id: the trace names candidates by chunk id, results by request index.
    candidates = [Candidate(i, text, i, f"document {i}", 0.0, i + 1) for i, text in enumerate(texts)]
    release = take_model_slot(request, user)
    try:
        # Every document the model has time for (0: no budget, where the admin set none).
        reranker = sift.reranker(body.model, llm_k=len(candidates), llm_budget_s=sift.settings.rerank_api_budget_s or 0)
        trace = reranker.rerank(body.query, candidates).trace
    finally:
        release()
    ranked = sorted(trace.candidates, key=lambda c: c.final_rank)[: body.top_n]
    return RerankResponse(
        model=str(reranker.mode),
        results=[
            RerankResult(
                index=c.chunk_id,
                relevance_score=1 / (1 + math.exp(-(c.composite or 0.0))),
                document=TextDocument(text=texts[c.chunk_id]) if body.return_documents else None,
                criteria={
                    s.name: Criterion(score=s.score, normalized=s.normalized, weight=s.weight) for s in c.criteria
                },
            )
            for c in ranked
        ],
    )
