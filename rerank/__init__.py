"""Sift's reranker: REBEL-style multi-criteria LLM reranking with a logit strategy and first-stage safety signals.

It knows nothing of storage or UI: give it model objects, call ``Reranker.rerank(query, candidates)``.
The language models it uses (and the generator shares) live in ``sift.rerank.llm``.
See ``rerank/README.md`` for the modes, strategies, defaults and the benchmark behind them.
"""

from sift.rerank.llm import LanguageModel, LocalLM, ServerLM
from sift.rerank.reranker import LLM_MODES, MODES, STRATEGIES, Reranker, default_weights
from sift.rerank.types import CriterionScore, RankedCandidate, RerankResult, RerankTrace

__all__ = ["CriterionScore", "LLM_MODES", "LanguageModel", "LocalLM", "MODES", "RankedCandidate", "RerankResult",
           "RerankTrace", "Reranker", "STRATEGIES", "ServerLM", "default_weights"]
