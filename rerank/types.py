"""The typed results of reranking: per-criterion scores, per-candidate rows, the trace, the result.

``RerankTrace.to_dict()`` is what Sift persists (JSON in SQL) and prints in ``sift ask --json``; its keys are stable.

Example::

    >>> result = reranker.rerank("what is a lobster roll", candidates)       # doctest: +SKIP
    >>> [c.chunk_id for c in result.candidates][:3]                          # doctest: +SKIP
    [12, 4, 7]
    >>> result.trace.to_dict()["candidates"][0]["criteria"][0]["name"]       # doctest: +SKIP
    'relevance'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from sift.retrieval.types import Candidate


@dataclass
class CriterionScore:
    """One criterion for one candidate. ``score`` is on the criterion's own scale (e.g. 0-10, a cosine, a mean
    log-probability); ``normalized`` is what enters the composite (z-score within the candidate set, 0 on fallback)."""

    name: str
    score: float | None
    normalized: float
    weight: float
    fallback: bool = False
    note: str = ""


@dataclass
class RankedCandidate:
    candidate: Candidate
    retrieval_rank: int
    retrieval_score: float
    criteria: list[CriterionScore]
    composite: float
    final_rank: int
    rank_change: int  # retrieval_rank - final_rank: positive means moved up


@dataclass
class RerankTrace:
    query: str
    mode: str
    strategy: str | None
    model: str | None
    weights: dict[str, float]
    criteria_methods: dict[str, str]  # criterion -> how it was scored ("query-likelihood", "logits", "mmr", ...)
    inferred: dict | None  # two-turn: the criteria and weights inferred for this query, and the raw model output
    candidates: list[RankedCandidate]
    timings_ms: dict[str, float] = field(default_factory=dict)
    tokens_processed: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-safe dict (no NaN/inf, datetimes as ISO strings) with stable keys."""
        rows = []
        for r in self.candidates:
            c = r.candidate
            rows.append({
                "chunk_id": c.chunk_id,
                "document_id": c.document_id,
                "source": c.source,
                "title": c.title,
                "document_date": c.document_date.isoformat() if c.document_date else None,
                "retrieval_rank": r.retrieval_rank,
                "retrieval_score": _finite(r.retrieval_score),
                "criteria": [{**asdict(s), "score": _finite(s.score), "normalized": _finite(s.normalized)}
                             for s in r.criteria],
                "composite": _finite(r.composite),
                "final_rank": r.final_rank,
                "rank_change": r.rank_change,
            })
        return {
            "query": self.query,
            "mode": self.mode,
            "strategy": self.strategy,
            "model": self.model,
            "weights": dict(self.weights),
            "criteria_methods": dict(self.criteria_methods),
            "inferred": self.inferred,
            "candidates": rows,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "tokens_processed": self.tokens_processed,
            "notes": list(self.notes),
        }


@dataclass
class RerankResult:
    candidates: list[Candidate]  # every input candidate, best first
    trace: RerankTrace


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
