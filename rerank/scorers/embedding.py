"""Query-passage cosine similarity from a sentence-transformers model; its passage vectors also feed MMR diversity.

Example::

    >>> scorer = EmbeddingSimilarity(minilm)                                  # doctest: +SKIP
    >>> scorer.score("lighthouse lenses", candidates).scores["embedding"]     # doctest: +SKIP
    array([0.61, 0.42, ...])
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.criteria import EMBEDDING
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class EmbeddingSimilarity:
    """``embedder``: anything with sentence-transformers' ``encode``; None records the criterion as unavailable."""

    name = "embedding"

    def __init__(self, embedder=None):
        self.embedder = embedder

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        if self.embedder is None:
            return Signal(
                {EMBEDDING: np.full(len(candidates), np.nan)}, "unavailable", {EMBEDDING: "no embedding model given"}
            )
        vectors = self.embedder.encode(
            [query] + [c.text for c in candidates],
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return Signal(
            {EMBEDDING: (vectors[1:] @ vectors[0]).astype(np.float64)}, "cosine(query, passage)", vectors=vectors[1:]
        )
