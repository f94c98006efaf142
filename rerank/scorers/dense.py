"""The ``dense`` criterion: query-passage cosine of normalised embeddings, as retrieval computed it for every
candidate; computed here with the embedder for candidates that arrive without it (e.g. TREC's BM25 lists). With
``vectors``, the passage embeddings are made anyway, for the composite's MMR diversity.

Example::

    >>> from sift.retrieval.types import Candidate
    >>> DenseSimilarity().score("q", [Candidate(1, "a", 1, "s", 0.02, 1, dense=0.8)]).scores["dense"].tolist()
    [0.8]
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.criteria import DENSE
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class DenseSimilarity:
    """``embedder``: anything with sentence-transformers' ``encode``; without one, candidates that lack the cosine
    are marked unscored."""

    name = "dense"

    def __init__(self, embedder=None, vectors: bool = False):
        self.embedder = embedder
        self.vectors = vectors

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        given = np.array([np.nan if c.dense is None else c.dense for c in candidates], dtype=np.float64)
        missing = np.isnan(given).any()
        if self.embedder is None or not (missing or self.vectors):
            notes = {DENSE: "no embedding model given"} if missing else {}
            return Signal({DENSE: given}, "cosine(query, passage) from retrieval", notes)
        vectors = self.embedder.encode(
            [query] + [c.text for c in candidates],
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        computed = (vectors[1:] @ vectors[0]).astype(np.float64)
        return Signal(
            {DENSE: np.where(np.isnan(given), computed, given)}, "cosine(query, passage)", vectors=vectors[1:]
        )
