"""The typed objects retrieval hands to the rest of Sift."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One retrieved passage, as the reranker and the answer generator see it.

    ``rank`` is 1-based in retrieval order; ``score`` is what the retriever ranked by (the cosine for dense retrieval,
    the BM25 score for lexical, the fused score for hybrid). ``dense`` (query-passage cosine of normalised embeddings)
    and ``lexical`` (BM25 score) are the two first-stage signals, both computed for every candidate whichever
    retriever found it; None where the caller had none (e.g. candidates read from a file). ``document_date`` and
    ``source`` are the document's metadata, for criteria such as recency and authority. ``page_start``/``page_end``
    (1-based) and ``section`` (the heading path, " > " between headings) say where the passage sits; None where the
    format or an older store has none.
    """

    chunk_id: int
    text: str
    document_id: int
    source: str
    score: float
    rank: int
    title: str | None = None
    document_date: datetime | None = None
    media_type: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    section: str | None = None
    dense: float | None = None
    lexical: float | None = None


class Retriever(Protocol):
    """What the app searches with, whatever the mode (``sift.retrieval.hybrid.Retriever``)."""

    def search(self, query: str, corpus_name: str, k: int = 20) -> list[Candidate]: ...
