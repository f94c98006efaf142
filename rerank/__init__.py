"""Sift's reranker: REBEL-style multi-criteria LLM reranking with a logit strategy and first-stage safety signals.

It knows nothing of storage or UI: give it model objects, call ``Reranker.rerank(query, candidates)``.
See ``rerank/README.md`` for the modes, strategies, defaults and the benchmark behind them.
"""

from sift.rerank.local_lm import LocalLM
from sift.rerank.reranker import LLM_MODES, MODES, STRATEGIES, Reranker, default_weights
from sift.rerank.server_lm import ServerLM
from sift.rerank.types import CriterionScore, RankedCandidate, RerankResult, RerankTrace

__all__ = ["CriterionScore", "LLM_MODES", "LocalLM", "MODES", "RankedCandidate", "RerankResult", "RerankTrace",
           "Reranker", "STRATEGIES", "ServerLM", "default_weights"]
