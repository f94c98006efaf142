"""A llama-index node postprocessor wrapping Sift's Reranker (a drop-in for llama-index's REBELRerank).

Nodes become Candidates (their text, their retrieval score, ``source``/``date`` metadata when present), are reranked,
and come back best first with the composite as their score, cut to ``top_n``. The trace of the last call is kept on
``last_trace``.

Example::

    >>> from sift.rerank.llama_index import SiftRerank
    >>> post = SiftRerank(reranker=Reranker("relevance", "logits", lm=lm, embedder=minilm), top_n=3)   # doctest: +SKIP
    >>> engine = RetrieverQueryEngine.from_args(retriever, node_postprocessors=[post])              # doctest: +SKIP
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from sift.rerank.types import RerankTrace
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


class SiftRerank(BaseNodePostprocessor):
    reranker: Any = Field(description="A rerank.Reranker.", exclude=True)
    top_n: int = Field(default=5, description="Nodes kept after reranking.")
    batch_size: int | None = Field(default=None, description="Passages per forward pass (default: the reranker's).")
    _last_trace: RerankTrace | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "SiftRerank"

    @property
    def last_trace(self) -> RerankTrace | None:
        return self._last_trace

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("SiftRerank needs the query.")
        if not nodes:
            return []
        if self.batch_size:
            self.reranker.batch_size = self.batch_size
        candidates = [_candidate(i, n) for i, n in enumerate(nodes)]
        result = self.reranker.rerank(query_bundle.query_str, candidates)
        self._last_trace = result.trace
        composite = {r.chunk_id: r.composite for r in result.trace.candidates}
        return [
            NodeWithScore(node=nodes[c.chunk_id].node, score=composite[c.chunk_id])
            for c in result.candidates[: self.top_n]
        ]


def _candidate(i: int, node: NodeWithScore) -> Candidate:
    meta = node.node.metadata or {}
    date = meta.get("date") or meta.get("document_date")
    try:
        date = datetime.fromisoformat(str(date)) if date else None
    except ValueError:
        date = None
    return Candidate(
        chunk_id=i,
        text=node.node.get_content(),
        document_id=i,
        source=str(meta.get("source") or meta.get("file_name") or node.node.ref_doc_id or ""),
        score=float(node.score or 0.0),
        rank=i + 1,
        title=meta.get("title"),
        document_date=date,
    )
