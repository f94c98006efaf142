"""Dense retrieval: query -> top-k passages of one corpus through its FAISS index.

Example::

    >>> from pathlib import Path
    >>> from sentence_transformers import SentenceTransformer
    >>> from sift.ingestion.store import Store
    >>> store = Store.open("sqlite:///data/sift.db", Path("data"))  # doctest: +SKIP
    >>> retriever = DenseRetriever(store, SentenceTransformer("models/all-MiniLM-L6-v2"))  # doctest: +SKIP
    >>> [c.source for c in retriever.search("How does a Fresnel lens work?", "sample", k=3)]  # doctest: +SKIP
    ['fresnel-lens.pdf', 'fresnel-lens.pdf', 'history-of-lighthouses.md']
"""

from __future__ import annotations

import logging

import numpy as np

from sift.ingestion import vectors
from sift.ingestion.store import Store
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class DenseRetriever:
    """Embeds the query with the corpus's embedding model and searches the corpus's index by inner product
    (cosine similarity, since all vectors are normalised)."""

    def __init__(self, store: Store, model, device: str = "cpu"):
        self.store = store
        self.model = model
        self.device = device
        self._device_copies: dict[int, tuple[int, object]] = {}  # corpus id -> (index version, its GPU copy)

    def _searchable(self, corpus, index):
        if self.device != "cuda":
            return index
        cached = self._device_copies.get(corpus.id)
        if cached is None or cached[0] != corpus.index_version:  # the corpus changed: copy the new index
            cached = (corpus.index_version, vectors.on_device(index, self.device))
            self._device_copies[corpus.id] = cached
        return cached[1]

    def embed_query(self, query: str) -> np.ndarray:
        return self.model.encode(
            [query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)

    def search(self, query: str, corpus_name: str, k: int = 20) -> list[Candidate]:
        if not query.strip():
            raise ValueError("The query is empty.")
        corpus = self.store.corpus(corpus_name)
        index = self.store.vector_index(corpus.id)
        if index is None or index.ntotal == 0:
            return []
        searchable = self._searchable(corpus, index)
        scores, ids = searchable.search(self.embed_query(query), min(k, index.ntotal))
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=False) if i >= 0]
        passages = self.store.passages([i for i, _ in hits])
        candidates = []
        for chunk_id, score in hits:
            passage = passages.get(chunk_id)
            if passage is None:  # removed by another process since the index was read
                continue
            candidates.append(
                Candidate(
                    chunk_id=chunk_id,
                    text=passage.text,
                    document_id=passage.document_id,
                    source=passage.source,
                    score=score,
                    rank=len(candidates) + 1,
                    title=passage.title,
                    document_date=passage.document_date,
                    media_type=passage.media_type,
                    page_start=passage.page_start,
                    page_end=passage.page_end,
                    section=passage.section,
                )
            )
        return candidates
