"""The ``lexical`` criterion: the passage's BM25 score for the query, as retrieval computed it over the whole corpus
for every candidate. When a candidate arrives without it, all are scored by BM25 over the candidate set alone (its term
statistics are then those of a few passages, so the method says so); TREC DL's lists carry Anserini's BM25 scores
over all of MS MARCO, which ``rerank.evaluation`` passes on.

Example::

    >>> from sift.retrieval.types import Candidate
    >>> LexicalScore().score("q", [Candidate(1, "a", 1, "s", 0.02, 1, lexical=7.5)]).scores["lexical"].tolist()
    [7.5]
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.criteria import LEXICAL
from sift.rerank.scorers.base import Signal
from sift.retrieval.lexical import bm25_scores
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class LexicalScore:
    name = "lexical"

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        if all(c.lexical is not None for c in candidates):
            return Signal(
                {LEXICAL: np.array([c.lexical for c in candidates], dtype=np.float64)}, "bm25 over the corpus"
            )
        # All rescored, not only the missing ones: scores over a corpus and over a few passages are not comparable.
        scores = np.array(bm25_scores(query, [c.text for c in candidates]), dtype=np.float64)
        return Signal({LEXICAL: scores}, "bm25 over the candidates only")
