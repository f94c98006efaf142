"""Markdown -> text, title, date and sections: YAML front matter gives the title and date, ATX (``# ...``) and setext
(underlined) headings open sections.

markdown-it-py finds the headings (CommonMark, linear time): a ``#`` line inside a fenced code block is code, not a
heading, and a heading line padded with thousands of spaces costs nothing (a backtracking regex hung on it). The
text is kept as written; heading titles are given as plain text (``# **Bold** `code` `` -> ``Bold code``).

Example::

    >>> doc = load_markdown(b"---\\ndate: 2024-03-01\\n---\\n# Tides\\nThe moon pulls the sea.\\n\\n"
    ...                     b"Spring\\n---\\nHigh.")
    >>> doc.title, doc.document_date.year, doc.sections[-1].path
    ('Tides', 2024, ('Tides', 'Spring'))
"""

from __future__ import annotations

import logging
import re
from functools import cache
from itertools import pairwise

from sift.ingestion.document import LoadedDocument, TextBuilder, plain
from sift.ingestion.text import decode_text, parse_date

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/markdown"

# `[ \t]*`, not `\s*`: a whitespace class that also matches the newline after it could backtrack over long runs.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_LONGEST_TITLE = 1000  # characters of a heading (spaces collapsed) read for its title: no title is longer


def load_markdown(data: bytes) -> LoadedDocument:
    import yaml

    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    front: dict = {}
    if match := _FRONT_MATTER.match(text):
        try:
            loaded = yaml.safe_load(match.group(1))
            front = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            front = {}
        text = text[match.end() :]
    lines = text.split("\n")
    builder = TextBuilder()
    first_title = None
    done = 0  # lines already added
    for first, last, level, title in _headings(text):
        builder.add("\n".join(lines[done:first]))
        builder.open_section(level, title)
        builder.add("\n".join(lines[first:last]))
        done = last
        if first_title is None and level == 1:
            first_title = title
    builder.add("\n".join(lines[done:]))
    title = front.get("title") or first_title
    return builder.build(MEDIA_TYPE, str(title) if title else None, parse_date(front.get("date")))


def _headings(text: str) -> list[tuple[int, int, int, str]]:
    """Each heading as (first line, line after it, level, plain title), in order."""
    tokens = _block_parser().parse(text)
    headings = []
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open" and opening.map:
            title = _plain_inline(plain(inline.content)[:_LONGEST_TITLE])
            headings.append((opening.map[0], opening.map[1], int(opening.tag[1]), title))
    return headings


def _plain_inline(markdown: str) -> str:
    """The words of one line of Markdown, without its markup: emphasis, code ticks, links and HTML tags dropped."""
    words = []
    for line in _inline_parser().parseInline(markdown):
        for token in line.children or ():
            if token.type in ("text", "code_inline"):
                words.append(token.content)
            elif token.type in ("softbreak", "hardbreak"):
                words.append(" ")
    return plain("".join(words))


@cache
def _block_parser():
    from markdown_it import MarkdownIt

    # Block structure only: inline parsing of every paragraph is most of the cost and headings alone need it.
    return MarkdownIt("commonmark").disable("inline")


@cache
def _inline_parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")
