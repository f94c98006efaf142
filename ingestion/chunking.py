"""Text -> passages: sentence-aware chunks with overlap, sized in the embedding model's tokens.

llama-index's SentenceSplitter does the splitting (paragraphs, then sentences, then words); sizes are counted with
the embedding model's own tokenizer, so a passage never exceeds what the model reads.

Example::

    >>> from transformers import AutoTokenizer
    >>> from sift.app.models import packaged_embedding_folder
    >>> tokenizer = AutoTokenizer.from_pretrained(packaged_embedding_folder())
    >>> spans = chunk_text("One sentence. " * 200, tokenizer, chunk_size=64, chunk_overlap=8)
    >>> spans[0].start_char, spans[0].token_count <= 64
    (0, True)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Span:
    """A passage and where it sits in the document's text."""

    text: str
    start_char: int
    end_char: int
    token_count: int


def chunk_text(text: str, tokenizer, chunk_size: int, chunk_overlap: int) -> list[Span]:
    def count(s: str) -> list[int]:
        return tokenizer.encode(s, add_special_tokens=False)

    splitter = SentenceSplitter(
        chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 2), tokenizer=count
    )
    nodes = splitter.get_nodes_from_documents([Document(text=text)])
    spans: list[Span] = []
    cursor = 0
    for node in nodes:
        passage = node.get_content()
        start = node.start_char_idx
        if start is None or text[start:start + len(passage)] != passage:
            # The splitter could not place this passage; find it after the previous one's start.
            found = text.find(passage, cursor)
            start = found if found >= 0 else cursor
        spans.append(Span(passage, start, start + len(passage), len(count(passage))))
        cursor = start
    return spans
