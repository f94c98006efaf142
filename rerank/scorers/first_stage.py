"""The retrieval score a candidate arrived with, as a criterion of the composite (so a weak LLM cannot sink it).

Example::

    >>> from sift.retrieval.types import Candidate
    >>> RetrievalScore().score("q", [Candidate(1, "a", 1, "s", 0.8, 1)]).scores["retrieval"].tolist()
    [0.8]
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.criteria import RETRIEVAL
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class RetrievalScore:
    name = "retrieval"

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        return Signal({RETRIEVAL: np.array([c.score for c in candidates], dtype=np.float64)}, "first-stage score")
