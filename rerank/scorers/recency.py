"""Recency from the document's date (newer scores higher), where documents carry one: no LLM guesswork needed.

Example::

    >>> from datetime import datetime
    >>> from sift.retrieval.types import Candidate
    >>> dated = Candidate(1, "a", 1, "s", 0.5, 1, document_date=datetime(2020, 1, 1))
    >>> DocumentDate().score("q", [dated, Candidate(2, "b", 2, "s", 0.4, 2)]).scores["recency"].tolist()[1]
    nan
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

RECENCY = "recency"


class DocumentDate:
    name = "recency"

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        dates = [c.document_date.timestamp() if c.document_date else np.nan for c in candidates]
        return Signal({RECENCY: np.array(dates, dtype=np.float64)}, "document date")
