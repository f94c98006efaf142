"""A loaded document: its text, and where each page and section of it lies, as character ranges of that text.

Every loader builds its text with :class:`TextBuilder`: blocks (a page, a paragraph, a heading) are tidied and joined
with a blank line, and the builder records the page and the heading path in effect over each range as it goes, so
the offsets are exact for the final text.

Example::

    >>> builder = TextBuilder()
    >>> builder.open_section(1, "Installation")
    >>> builder.add("Installation", page=1)
    >>> builder.open_section(2, "Linux")
    >>> builder.add("Linux", page=1)
    >>> builder.add("Run the installer.  ", page=2)
    >>> document = builder.build("application/pdf", title="Manual")
    >>> document.text
    'Installation\\n\\nLinux\\n\\nRun the installer.'
    >>> [(p.page, document.text[p.start_char:p.end_char]) for p in document.pages]
    [(1, 'Installation\\n\\nLinux'), (2, 'Run the installer.')]
    >>> document.sections[-1].path
    ('Installation', 'Linux')
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger(__name__)

BLOCK_SEPARATOR = "\n\n"


class UnreadableFile(ValueError):
    """The file cannot be turned into text; the message says why."""


class TooMuchText(UnreadableFile):
    """The text grew past the characters a file may expand to (``load_document`` says which format and limit)."""

    def __init__(self, limit: int):
        super().__init__(f"the text is longer than {limit:,} characters")
        self.limit = limit


@dataclass(frozen=True)
class PageSpan:
    """Characters ``[start_char, end_char)`` of the document's text come from page ``page`` (1-based)."""

    start_char: int
    end_char: int
    page: int


@dataclass(frozen=True)
class SectionSpan:
    """Characters ``[start_char, end_char)`` sit under the headings ``path``, outermost first."""

    start_char: int
    end_char: int
    path: tuple[str, ...]


@dataclass(frozen=True)
class LoadedDocument:
    """A file's text and metadata. ``pages`` is empty for formats without pages; ``sections`` is empty when the
    file has no headings (text before the first heading belongs to no section). Spans are in text order."""

    text: str
    media_type: str
    title: str | None = None
    document_date: datetime | None = None
    pages: tuple[PageSpan, ...] = ()
    sections: tuple[SectionSpan, ...] = ()


def tidy(text: str) -> str:
    """Normalise line ends, drop NULs and trailing spaces and collapse runs of blank lines, keeping paragraph
    breaks and the indentation of lines (code keeps its shape)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).lstrip("\n").rstrip()


def plain(text: str) -> str:
    """One line of text: whitespace runs collapsed to a single space."""
    return " ".join(text.split())


class TextBuilder:
    """Joins a document's blocks into its text, recording the page and heading path of every character range;
    raises :class:`TooMuchText` as soon as the text passes ``max_chars``, so a loader stops extracting there."""

    def __init__(self, max_chars: int | None = None) -> None:
        self.max_chars = max_chars
        self._blocks: list[str] = []
        self._length = 0
        self._pages: list[PageSpan] = []
        self._headings: list[tuple[int, str]] = []  # the open headings: (level, title), outermost first
        self._sections: list[SectionSpan] = []

    def open_section(self, level: int, title: str) -> None:
        """A heading (level 1-6) opens a section at the next block; it lasts until the next heading of the same or
        a higher level. Add the heading's own line as a block after this, so it sits in its section."""
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, plain(title)))
        start = self._next_start()
        self._close_section(start)
        self._sections.append(SectionSpan(start, start, tuple(title for _, title in self._headings)))

    def add(self, text: str, *, page: int | None = None) -> None:
        """Append one block, tidied; nothing if it is blank."""
        text = tidy(text)
        if not text:
            return
        start = self._next_start()
        end = start + len(text)
        if self.max_chars is not None and end > self.max_chars:
            raise TooMuchText(self.max_chars)
        if page is not None:
            if self._pages and self._pages[-1].page == page:
                self._pages[-1] = PageSpan(self._pages[-1].start_char, end, page)
            else:
                self._pages.append(PageSpan(start, end, page))
        self._blocks.append(text)
        self._length = end

    def build(self, media_type: str, title: str | None = None, document_date: datetime | None = None) -> LoadedDocument:
        self._close_section(self._length)
        sections = tuple(s for s in self._sections if s.start_char < s.end_char)  # headings with nothing after
        return LoadedDocument(
            BLOCK_SEPARATOR.join(self._blocks), media_type, title, document_date, tuple(self._pages), sections
        )

    def _next_start(self) -> int:
        return self._length + (len(BLOCK_SEPARATOR) if self._blocks else 0)

    def _close_section(self, end: int) -> None:
        if self._sections:
            last = self._sections[-1]
            self._sections[-1] = SectionSpan(last.start_char, max(last.start_char, end), last.path)
