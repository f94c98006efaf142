"""Relevance from a sentence-transformers CrossEncoder (a local folder the user names).

Example::

    >>> scorer = CrossEncoderRelevance(CrossEncoder("models/ms-marco-MiniLM"), batch_size=16)   # doctest: +SKIP
    >>> scorer.score("lighthouse lenses", candidates).method                                   # doctest: +SKIP
    'cross-encoder'
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.criteria import RELEVANCE
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class CrossEncoderRelevance:
    name = "cross_encoder"

    def __init__(self, model, batch_size: int = 16):
        self.model = model
        self.batch_size = batch_size

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        pairs = [(query, c.text) for c in candidates]
        values = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return Signal({RELEVANCE.name: np.asarray(values, dtype=np.float64)}, "cross-encoder")
