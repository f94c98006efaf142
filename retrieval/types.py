"""The typed objects retrieval hands to the rest of Sift."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One retrieved passage, as the reranker and the answer generator see it.

    ``rank`` is 1-based in retrieval order; ``score`` is the retrieval score (inner product of normalised
    embeddings for dense retrieval, so a cosine similarity). ``document_date`` and ``source`` are the document's
    metadata, for criteria such as recency and authority. ``page_start``/``page_end`` (1-based) and ``section`` (the
    heading path, " > " between headings) say where the passage sits; None where the format or an older store has none.
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
