"""Lexical retrieval: query -> top-k passages of one corpus by BM25 over its bm25s index (``ingestion/lexical.py``).

Finds what an embedding blurs: an exact name, a code identifier, a command-line flag.

Example::

    >>> from pathlib import Path
    >>> from sift.ingestion.store import Store
    >>> store = Store.open("sqlite:///data/sift.db", Path("data"))  # doctest: +SKIP
    >>> LexicalRetriever(store).hits("--frobnicate-xyz", store.corpus("notes"), k=1)  # doctest: +SKIP
    [(42, 7.31)]
"""

from __future__ import annotations

import logging

from sift.ingestion.lexical import LexicalIndex
from sift.ingestion.schema import Corpus
from sift.ingestion.store import Store

logger = logging.getLogger(__name__)


class LexicalRetriever:
    def __init__(self, store: Store):
        self.store = store

    def hits(self, query: str, corpus: Corpus, k: int) -> list[tuple[int, float]]:
        """The top ``k`` (chunk id, BM25 score), best first; passages sharing no term with the query are left out."""
        index = self.store.lexical_index(corpus.id)
        return [] if index is None else index.search(query, k)

    def scores(self, query: str, corpus: Corpus, chunk_ids: list[int]) -> dict[int, float]:
        """BM25 scores of given passages of the corpus."""
        index = self.store.lexical_index(corpus.id)
        return {} if index is None else index.scores(query, chunk_ids)


def bm25_scores(query: str, texts: list[str]) -> list[float]:
    """BM25 scores of texts that are not in a corpus index, with the texts themselves as the corpus.

    >>> [round(s, 2) for s in bm25_scores("fog signal", ["The fog signal sounded.", "A quiet night."])]
    [0.52, 0.0]
    """
    if not texts:
        return []
    return LexicalIndex.build(range(len(texts)), texts).all_scores(query).tolist()
