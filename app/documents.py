"""A document in context, for reading a cited passage where it stands: the document's text with every passage's
place in it (characters, pages, section), and how a passage's pages read ("p. 12", "pp. 12-13").

Example::

    >>> page_label(12, 12), page_label(12, 13), page_label(None, None)
    ('p. 12', 'pp. 12-13', None)
    >>> passage_place(12, 13, "Guide > Linux")
    'pp. 12-13, Guide > Linux'
    >>> view = document_view(store, store.corpus("notes").id, 3, max_file_bytes=2**20)  # doctest: +SKIP
    >>> p = view.passages[0]; view.text[p.start_char:p.end_char] == store.document_chunks(3)[0].text  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sift.ingestion.loaders import MAX_EXPANSION, UnreadableFile, load_document
from sift.ingestion.store import Chunk, DocumentNotFound, Store

__all__ = ["DocumentNotFound", "DocumentView", "PassageSpan", "document_view", "page_label", "passage_place"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassageSpan:
    """Where a passage sits in its document's text (characters ``[start_char, end_char)``), its pages and section."""

    chunk_id: int
    start_char: int
    end_char: int
    page_start: int | None
    page_end: int | None
    section: str | None


@dataclass(frozen=True)
class DocumentView:
    """A document's text and its passages' places in it, in order."""

    document_id: int
    source: str
    title: str | None
    media_type: str
    text: str
    passages: list[PassageSpan]


def page_label(page_start: int | None, page_end: int | None) -> str | None:
    """A passage's pages as a reader writes them; None for a passage without pages."""
    if page_start is None:
        return None
    return f"p. {page_start}" if page_end in (None, page_start) else f"pp. {page_start}-{page_end}"


def passage_place(page_start: int | None, page_end: int | None, section: str | None) -> str | None:
    """Pages and section in one line ("p. 3, Installation > Linux"); None when neither is known."""
    return ", ".join(part for part in (page_label(page_start, page_end), section) if part) or None


def document_view(store: Store, corpus_id: int, document_id: int, max_file_bytes: int) -> DocumentView:
    """The document's text, re-extracted from its original file when that was kept and still gives the stored
    passages at their offsets, else stitched from the passages; raises DocumentNotFound, also for a document of
    another corpus."""
    meta = store.document_meta(corpus_id, document_id)
    chunks = store.document_chunks(document_id)
    text = None
    if meta.content is not None:
        try:
            limit = MAX_EXPANSION * max(max_file_bytes, len(meta.content))
            text = load_document(meta.source, meta.content, max_expanded_bytes=limit).text
        except UnreadableFile:
            logger.warning("Document %s (%s) cannot be re-extracted", document_id, meta.source, exc_info=True)
        # Extraction changed since the document was ingested (a `sift reindex` is due): its offsets point elsewhere.
        if text is not None and any(text[c.start_char : c.end_char] != c.text for c in chunks):
            logger.info("Document %s (%s) extracts differently now; stitching its passages", document_id, meta.source)
            text = None
    passages = [PassageSpan(c.id, c.start_char, c.end_char, c.page_start, c.page_end, c.section) for c in chunks]
    return DocumentView(
        document_id, meta.source, meta.title, meta.media_type, text if text is not None else _stitched(chunks), passages
    )


def _stitched(chunks: list[Chunk]) -> str:
    """The passages laid at their offsets (overlapping passages agree where they overlap); the characters no passage
    covers (the blank lines between passages) become spaces."""
    characters = [" "] * max((c.end_char for c in chunks), default=0)
    for chunk in chunks:
        characters[chunk.start_char : chunk.end_char] = chunk.text
    return "".join(characters)
