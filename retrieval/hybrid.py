"""The retriever the app searches with: dense, lexical or hybrid, every candidate carrying both first-stage signals.

``dense`` ranks by the query-passage cosine (FAISS or pgvector), ``lexical`` by BM25 (bm25s), ``hybrid`` fuses the two
lists (``fusion``: reciprocal rank, or the sum of min-max or z-score normalised scores). Whichever found a passage, the
other signal is computed for it (the cosine from its stored vector, the BM25 score from the corpus's index), so the
reranker sees the same two signals in every mode. The figures behind the default mode are in README.md.

Example::

    >>> retriever = Retriever(store, minilm, mode="hybrid", fusion="rrf")  # doctest: +SKIP
    >>> [(c.source, round(c.dense, 2), round(c.lexical, 1)) for c in retriever.search("--no-deps", "notes", k=1)]
    ... # doctest: +SKIP
    [('install.md', 0.41, 8.3)]
"""

from __future__ import annotations

import logging

from sift.ingestion.store import Store
from sift.retrieval.dense import DenseRetriever
from sift.retrieval.fusion import FUSIONS, normalised_sum, reciprocal_rank
from sift.retrieval.lexical import LexicalRetriever
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

RETRIEVAL_MODES = ("dense", "lexical", "hybrid")


class Retriever:
    """``search(query, corpus, k)`` in one mode; ``model`` is the corpus's embedding model (sentence-transformers)."""

    def __init__(self, store: Store, model, mode: str = "hybrid", fusion: str = "rrf"):
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"Unknown retrieval mode {mode!r}; choose from {', '.join(RETRIEVAL_MODES)}.")
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; choose from {', '.join(FUSIONS)}.")
        self.store = store
        self.mode = mode
        self.fusion = fusion
        self.dense = DenseRetriever(store, model)
        self.lexical = LexicalRetriever(store)

    def search(self, query: str, corpus_name: str, k: int = 20) -> list[Candidate]:
        if not query.strip():
            raise ValueError("The query is empty.")
        corpus = self.store.corpus(corpus_name)
        query_vector = self.dense.embed_query(query)
        dense_hits = self.dense.hits(query_vector, corpus, k) if self.mode != "lexical" else []
        lexical_hits = self.lexical.hits(query, corpus, k) if self.mode != "dense" else []
        found = list(dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in lexical_hits]))
        dense = dict(dense_hits)
        dense |= self.dense.similarities(query_vector, corpus, [i for i in found if i not in dense])
        lexical = dict(lexical_hits)
        lexical |= self.lexical.scores(query, corpus, [i for i in found if i not in lexical])
        if self.mode == "dense":
            ranked = dense_hits
        elif self.mode == "lexical":
            ranked = lexical_hits
        else:
            fused = (
                reciprocal_rank([[i for i, _ in dense_hits], [i for i, _ in lexical_hits]])
                if self.fusion == "rrf"
                else normalised_sum([dense, lexical], self.fusion)
            )
            # sorted() is stable: ties keep the dense list's order, then the lexical one's.
            ranked = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:k]
        return self._candidates(corpus.id, ranked, dense, lexical)

    def _candidates(
        self, corpus_id: int, ranked: list[tuple[int, float]], dense: dict[int, float], lexical: dict[int, float]
    ) -> list[Candidate]:
        passages = self.store.passages(corpus_id, [i for i, _ in ranked])
        candidates = []
        for chunk_id, score in ranked:
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
                    dense=dense.get(chunk_id),
                    lexical=lexical.get(chunk_id),
                )
            )
        return candidates
