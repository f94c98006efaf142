"""Dense retrieval: query -> top-k passages of one corpus through its vector store (FAISS or pgvector), by cosine
similarity.

Example::

    >>> from pathlib import Path
    >>> from sentence_transformers import SentenceTransformer
    >>> from sift.ingestion.store import Store
    >>> store = Store.open("sqlite:///data/sift.db", Path("data"))  # doctest: +SKIP
    >>> dense = DenseRetriever(store, SentenceTransformer("models/all-MiniLM-L6-v2"))  # doctest: +SKIP
    >>> dense.hits(dense.embed_query("How does a Fresnel lens work?"), store.corpus("sample"), k=1)  # doctest: +SKIP
    [(12, 0.71)]
"""

from __future__ import annotations

import logging

import numpy as np

from sift.ingestion.schema import Corpus
from sift.ingestion.store import Store

logger = logging.getLogger(__name__)


class DenseRetriever:
    """Embeds the query with the corpus's embedding model and searches the corpus's vectors by inner product
    (cosine similarity, since all vectors are normalised). The store's vector store decides where that runs (FAISS on
    the CPU or the GPU, or PostgreSQL)."""

    def __init__(self, store: Store, model):
        self.store = store
        self.model = model

    def embed_query(self, query: str) -> np.ndarray:
        """The query's normalised embedding, shape (1, dim)."""
        return self.model.encode(
            [query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)

    def hits(self, query_vector: np.ndarray, corpus: Corpus, k: int) -> list[tuple[int, float]]:
        """The top ``k`` (chunk id, cosine), best first."""
        return self.store.vector_hits(corpus.id, query_vector, k)

    def similarities(self, query_vector: np.ndarray, corpus: Corpus, chunk_ids: list[int]) -> dict[int, float]:
        """Cosines of given passages of the corpus, from their stored vectors."""
        stored = self.store.embeddings(corpus.id, chunk_ids)
        return {chunk_id: float(vector @ query_vector[0]) for chunk_id, vector in stored.items()}
