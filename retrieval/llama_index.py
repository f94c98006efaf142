"""Sift's retriever as a llama-index ``BaseRetriever``, so llama-index pipelines can use a Sift corpus.

Example::

    >>> retriever = SiftRetriever(sift.retriever, corpus="sample", k=5)  # doctest: +SKIP
    >>> nodes = retriever.retrieve("Who built the Eddystone lighthouse?")  # doctest: +SKIP
    >>> nodes[0].node.metadata["source"]  # doctest: +SKIP
    'history-of-lighthouses.md'
"""

from __future__ import annotations

import logging

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from sift.retrieval.types import Candidate, Retriever

logger = logging.getLogger(__name__)


def candidate_to_node(candidate: Candidate) -> NodeWithScore:
    metadata = {
        "source": candidate.source,
        "document_id": candidate.document_id,
        "title": candidate.title,
        "document_date": candidate.document_date.isoformat() if candidate.document_date else None,
        "retrieval_rank": candidate.rank,
        "page_start": candidate.page_start,
        "page_end": candidate.page_end,
        "section": candidate.section,
    }
    node = TextNode(id_=str(candidate.chunk_id), text=candidate.text, metadata=metadata)
    return NodeWithScore(node=node, score=candidate.score)


class SiftRetriever(BaseRetriever):
    def __init__(self, retriever: Retriever, corpus: str, k: int = 20):
        super().__init__()
        self._retriever = retriever
        self._corpus = corpus
        self._k = k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [candidate_to_node(c) for c in self._retriever.search(query_bundle.query_str, self._corpus, self._k)]
