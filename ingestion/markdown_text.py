"""Markdown -> text, title, date and sections: YAML front matter gives the title and date, ATX (``# ...``) and setext
(underlined) headings open sections.

Front matter is untrusted YAML: aliases are refused (a few hundred bytes of nested aliases, "billion laughs", expand
to gigabytes once turned into text), a block over ``MAX_FRONT_MATTER`` characters is not parsed, and only scalar
values are used (a title that is a list or a mapping is ignored). Front matter refused for any of these reasons is
ignored, as malformed YAML always was: it only carries a title and a date, and the document's own text is still good.

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
from datetime import date
from functools import cache
from itertools import pairwise

from sift.ingestion.document import LoadedDocument, TextBuilder, plain
from sift.ingestion.text import decode_text, parse_date

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/markdown"

# `[ \t]*`, not `\s*`: a whitespace class that also matches the newline after it could backtrack over long runs.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_LONGEST_TITLE = 1000  # characters of a heading (spaces collapsed) read for its title: no title is longer
MAX_FRONT_MATTER = 64 * 1024  # characters: a title and a date need far less, and PyYAML is slow pure Python


def load_markdown(data: bytes, max_chars: int | None = None) -> LoadedDocument:
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    front: dict = {}
    if match := _FRONT_MATTER.match(text):
        front = front_matter(match.group(1))
        text = text[match.end() :]
    lines = text.split("\n")
    builder = TextBuilder(max_chars)
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


def front_matter(yaml_text: str) -> dict:
    """The scalar values of a YAML front matter block (strings, numbers, dates), by key; {} when the block is not a
    mapping, is malformed, is too long or uses aliases.

    >>> front_matter("title: Tides\\ndate: 2024-03-01\\ntags: [sea]")
    {'title': 'Tides', 'date': datetime.date(2024, 3, 1)}
    >>> front_matter("a: &a [x, x]\\ntitle: *a")
    {}
    """
    import yaml

    if len(yaml_text) > MAX_FRONT_MATTER:
        logger.info("front matter of %d characters ignored (limit %d)", len(yaml_text), MAX_FRONT_MATTER)
        return {}
    try:
        loaded = yaml.load(yaml_text, Loader=_alias_refusing_loader())
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer too long to convert
        logger.info("front matter ignored: %s", str(exc)[:200])
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {key: value for key, value in loaded.items() if isinstance(value, str | int | float | date)}


@cache
def _alias_refusing_loader():
    import yaml

    class AliasRefusingLoader(yaml.SafeLoader):
        """SafeLoader that stops at the first alias (``*name``), before anything is built from it."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "front matter uses YAML aliases, which Sift refuses", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)

    return AliasRefusingLoader


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
