"""Sift's reranker: REBEL-style multi-criteria LLM reranking with a logit strategy and first-stage safety signals.

It knows nothing of storage or UI: give it model objects, call ``Reranker.rerank(query, candidates)``. The language
models it (and Sift's answer generator) runs on live in ``sift.rerank.llm``; one scorer per signal in
``sift.rerank.scorers``. See ``rerank/README.md`` for the modes, strategies, defaults and the benchmark behind them.
"""

from sift.rerank.modes import Mode, RelevanceMethod, Strategy
from sift.rerank.reranker import Reranker, default_weights, starting_weights
from sift.rerank.types import CriterionScore, InferredCriteria, RerankResult, RerankTrace, TraceCandidate

__all__ = [
    "CriterionScore",
    "InferredCriteria",
    "Mode",
    "RelevanceMethod",
    "RerankResult",
    "RerankTrace",
    "Reranker",
    "Strategy",
    "TraceCandidate",
    "default_weights",
    "starting_weights",
]
