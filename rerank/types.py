"""The typed results of reranking: each criterion's score per candidate, the trace, the result.

The trace is a pydantic model: ``trace.model_dump(mode="json")`` is what Sift keeps in SQL and prints in
``sift ask --json`` (its keys are stable), and ``RerankTrace.model_validate(data)`` reads it back, including traces
written by earlier releases. Scores that are not finite (a criterion that could not score) are kept as None.

Example::

    >>> trace = RerankTrace(query="q", mode="none", strategy=None, model=None, weights={}, criteria_methods={},
    ...                     candidates=[TraceCandidate(chunk_id=7, document_id=1, source="a.md", retrieval_rank=1,
    ...                                                retrieval_score=float("nan"), final_rank=1)])
    >>> trace.model_dump(mode="json")["candidates"][0]["retrieval_score"] is None
    True
    >>> RerankTrace.model_validate(trace.model_dump(mode="json")).candidates[0].chunk_id
    7
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


FIRST_STAGE, LLM_STAGE, OMITTED_STAGE = "first-stage", "llm", "omitted"
"""A candidate's stage: placed by the cheap signals alone (dense, lexical), or scored by the mode's model too (the
LLM; the cross-encoder in that mode), or left out of the lists the model wrote (the REBEL reference strategy), and so
kept in retrieval order below the scored ones."""


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


FiniteFloat = Annotated[float | None, AfterValidator(_finite_or_none)]
"""A float that is None where it would be NaN or infinite, so every trace is valid JSON."""


class CriterionScore(BaseModel):
    """One criterion for one candidate. ``score`` is on the criterion's own scale (0-10, a cosine, a mean
    log-probability, ...); ``normalized`` is what enters the composite (a z-score within the candidate set, 0 when the
    criterion could not score the candidate, which is then marked ``fallback``)."""

    name: str
    score: FiniteFloat
    normalized: FiniteFloat = 0.0
    weight: float
    fallback: bool = False
    note: str = ""


class TraceCandidate(BaseModel):
    """A candidate as the trace records it: where retrieval put it, each criterion, the composite, where it ended."""

    chunk_id: int
    document_id: int
    source: str
    title: str | None = None
    document_date: datetime | None = None
    page_start: int | None = None  # where the passage sits (None where unknown), so a trace can point at the page
    page_end: int | None = None
    section: str | None = None
    retrieval_rank: int
    retrieval_score: FiniteFloat
    criteria: list[CriterionScore] = Field(default_factory=list)
    composite: FiniteFloat = 0.0
    final_rank: int
    rank_change: int = 0  # retrieval_rank - final_rank: positive means moved up
    # FIRST_STAGE, LLM_STAGE or OMITTED_STAGE; None in traces written before the cascade. The model-scored candidates
    # are normalised among themselves, the first-stage ones over every candidate: composites compare within a stage.
    stage: str | None = None


class InferredCriteria(BaseModel):
    """Two-turn mode: the criteria inferred for this query, their importance (0-5) and the weights that follow."""

    criteria: dict[str, float]  # criterion -> weight in the composite
    importance: dict[str, float]
    fallback: bool  # the model named nothing usable: REBEL's fixed criteria were used
    raw_importance: dict[str, float | None] | None = None  # logits strategy: every menu criterion's expected score
    raw_text: str | None = None  # generative strategy: what the model wrote


class RerankTrace(BaseModel):
    """Why the reranker ordered a query's passages as it did."""

    query: str
    mode: str
    strategy: str | None
    model: str | None
    weights: dict[str, float]
    criteria_methods: dict[str, str]  # criterion -> how it was scored
    inferred: InferredCriteria | None = None
    candidates: list[TraceCandidate]
    timings_ms: dict[str, float] = Field(default_factory=dict)
    tokens_processed: int = 0  # LLM tokens this rerank ran through the model (its own, whatever runs beside it)
    llm_k: int | None = None  # candidates the mode's model scored (the cascade); None in traces from before it
    llm_budget_s: float | None = None  # seconds the LLM stage was allowed (the latency budget); None: no budget
    llm_seconds: FiniteFloat = None  # seconds the LLM stage took; None without an LLM, or in traces from before it
    prefill_tokens_per_s: FiniteFloat = None  # the measured prefill rate the budget was sized with, updated after
    weights_profile: str | None = None  # the fitted weights profile the weights started from (``sift tune``), if any
    notes: list[str] = Field(default_factory=list)

    def criterion_names(self) -> list[str]:
        """The criteria scored in this trace, in the order the reranker listed them."""
        return list(dict.fromkeys(s.name for c in self.candidates for s in c.criteria))


@dataclass
class RerankResult:
    candidates: list[Candidate]  # every input candidate, best first
    trace: RerankTrace
