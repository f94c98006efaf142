"""Relevance as query likelihood (UPR): the mean log-probability of the query's tokens after the passage.

No text is generated, and a passage can raise the score only by being about the query. On the local model the
shared prompt head is computed once for every passage (``sift.rerank.llm.local.LocalLM.tree``).

Example::

    >>> scorer = QueryLikelihood(lm)                                            # doctest: +SKIP
    >>> scorer.score("how do lobsters molt", candidates).scores["relevance"]    # doctest: +SKIP
    array([-2.1, -3.4, ...])
"""

from __future__ import annotations

import logging

from sift.rerank import prompts
from sift.rerank.criteria import RELEVANCE
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class QueryLikelihood:
    name = "llm_query_likelihood"

    def __init__(self, lm):
        self.lm = lm

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        found = self.lm.query_likelihood(prompts.QL_HEAD, [c.text for c in candidates], prompts.QL_TAIL, query)
        return Signal(
            {RELEVANCE.name: found.values},
            "query likelihood (mean log P(query | passage))",
            {RELEVANCE.name: found.note} if found.note else {},
            tokens=found.tokens,
        )
