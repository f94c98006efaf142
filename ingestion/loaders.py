"""File bytes -> text, title, date, pages and sections, for .txt, .md, .html/.htm, .pdf and .docx: picks the
format's loader (one module each) by the file's extension, and gives titles as plain text.

Every way a file can be unreadable (empty, binary, corrupt, encrypted, a zip bomb, an unsupported type) raises
:class:`UnreadableFile` with a reason a user can act on; nothing else is expected to escape. No file may expand past
``MAX_EXPANSION`` times the upload limit: a DOCX's unzipped parts, and every format's text, in characters (a small
PDF can draw millions); extraction stops where the text passes the limit.

Example::

    >>> doc = load_document("notes.md", b"---\\ndate: 2024-03-01\\n---\\n# Tides\\nThe moon pulls the sea.")
    >>> doc.title, doc.document_date.year, doc.media_type, doc.sections[0].path
    ('Tides', 2024, 'text/markdown', ('Tides',))
    >>> try:
    ...     load_document("notes.txt", b"Tides. " * 100, max_expanded_bytes=400)
    ... except UnreadableFile as refused:
    ...     print(refused)
    refused: the text file expands to more than 400 characters of text (the limit: 4x the upload limit)
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from pathlib import PurePosixPath

from sift.ingestion import docx_text, html_text, markdown_text, pdf_text, text
from sift.ingestion.document import (
    LoadedDocument,
    PageSpan,
    SectionSpan,
    TooMuchText,
    UnreadableFile,
    plain,
)

__all__ = [
    "MAX_EXPANSION",
    "MEDIA_TYPES",
    "LoadedDocument",
    "PageSpan",
    "SectionSpan",
    "UnreadableFile",
    "load_document",
    "media_type_of",
    "safe_source_name",
]

logger = logging.getLogger(__name__)

MEDIA_TYPES = {
    ".txt": text.MEDIA_TYPE,
    ".text": text.MEDIA_TYPE,
    ".md": markdown_text.MEDIA_TYPE,
    ".markdown": markdown_text.MEDIA_TYPE,
    ".html": html_text.MEDIA_TYPE,
    ".htm": html_text.MEDIA_TYPE,
    ".pdf": pdf_text.MEDIA_TYPE,
    ".docx": docx_text.MEDIA_TYPE,
}

# A file may expand to this multiple of the upload limit: a DOCX's unzipped parts in bytes, its text in characters.
MAX_EXPANSION = 4
# PDF and DOCX hold their text compressed, so a small file can stand for far more than the upload limit suggests
# (a 52 KB PDF drew 25.8 M characters). Real ones hold 0.15-1.1 characters of text per byte (the sample corpus and
# the PDFs in /usr/share/doc); past this many per byte, and past the floor, the file is refused as a bomb.
COMPRESSED_CHARS_PER_BYTE = 100
COMPRESSED_MIN_CHARS = 1_000_000
_LONGEST_TITLE = 300


def media_type_of(source: str) -> str:
    suffix = PurePosixPath(source).suffix.lower()
    if suffix not in MEDIA_TYPES:
        supported = ", ".join(sorted(MEDIA_TYPES))
        raise UnreadableFile(f"unsupported file type {suffix or '(no extension)'!r}; supported: {supported}")
    return MEDIA_TYPES[suffix]


def load_document(source: str, data: bytes, max_expanded_bytes: int = 200 * 1024 * 1024) -> LoadedDocument:
    """Extract the text and metadata of one file, or raise UnreadableFile. ``max_expanded_bytes`` (``MAX_EXPANSION``
    times the upload limit) bounds a DOCX's unzipped size in bytes and every file's text in characters; a PDF or DOCX
    is also bounded by its own size (``COMPRESSED_CHARS_PER_BYTE``)."""
    media_type = media_type_of(source)
    if not data:
        raise UnreadableFile("empty file (0 bytes)")
    limit = max_expanded_bytes
    if media_type in (pdf_text.MEDIA_TYPE, docx_text.MEDIA_TYPE):
        limit = min(limit, max(COMPRESSED_MIN_CHARS, COMPRESSED_CHARS_PER_BYTE * len(data)))
    try:
        document = _LOADERS[media_type](data, limit)
    except TooMuchText as exc:
        why = (
            f"{MAX_EXPANSION}x the upload limit"
            if exc.limit == max_expanded_bytes
            else f"{COMPRESSED_CHARS_PER_BYTE} characters per byte of a {len(data) / 1024:,.0f} KiB file"
        )
        raise UnreadableFile(
            f"refused: the {_FORMAT_NAMES[media_type]} expands to more than {_count(exc.limit)} characters of text "
            f"(the limit: {why})"
        ) from None
    if not document.text:
        raise UnreadableFile("no text could be extracted (a scanned or image-only file needs OCR first)")
    return dataclasses.replace(document, title=plain_title(document.title))


_LOADERS = {
    text.MEDIA_TYPE: text.load_text,
    markdown_text.MEDIA_TYPE: markdown_text.load_markdown,
    html_text.MEDIA_TYPE: html_text.load_html,
    pdf_text.MEDIA_TYPE: pdf_text.load_pdf,
    docx_text.MEDIA_TYPE: docx_text.load_docx,
}
_FORMAT_NAMES = {
    text.MEDIA_TYPE: "text file",
    markdown_text.MEDIA_TYPE: "Markdown file",
    html_text.MEDIA_TYPE: "HTML page",
    pdf_text.MEDIA_TYPE: "PDF",
    docx_text.MEDIA_TYPE: "DOCX",
}


def _count(number: int) -> str:
    """A count of characters as a person reads it: ``8.4 M`` rather than ``8388608``."""
    return f"{number / 1e6:.1f} M" if number >= 1e6 else f"{number:,}"


def plain_title(title: str | None) -> str | None:
    """A title as one line of plain text: markup some files carry in their title (``<strong>Tides</strong>``, an
    escaped tag in an HTML ``<title>``) dropped, entities decoded, whitespace collapsed.

    >>> plain_title("  <strong>Tides</strong> &amp;\\n moon ")
    'Tides & moon'
    """
    if not title:
        return None
    title = str(title)[: 10 * _LONGEST_TITLE]
    if "<" in title or "&" in title:
        import lxml.html

        title = lxml.html.fragment_fromstring(title, create_parent="div").text_content()
    return plain(title)[:_LONGEST_TITLE] or None


def safe_source_name(name: str) -> str:
    """A document's source name, safe to show and to store: no directory escapes, no absolute paths, no control
    characters; unicode kept (NFC).

    >>> safe_source_name("../../etc/passwd"), safe_source_name("/abs/x.txt"), safe_source_name("C:\\\\a\\\\b.md")
    ('etc/passwd', 'abs/x.txt', 'a/b.md')
    """
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/")
    parts = []
    for part in name.split("/"):
        part = "".join(ch for ch in part if unicodedata.category(ch)[0] != "C").strip()
        if part in ("", ".", "..") or (not parts and re.fullmatch(r"[A-Za-z]:", part)):
            continue
        parts.append(_shorten(part, 255))
    name = _shorten("/".join(parts), 1000)  # the cut may end in a bare "." or ".." part: drop it
    return "/".join(part for part in name.split("/") if part not in ("", ".", "..")) or "unnamed"


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its extension (which decides how the file is read)."""
    if len(text) <= limit:
        return text
    suffix = PurePosixPath(text).suffix
    return text[: limit - len(suffix)] + suffix if len(suffix) < limit // 2 else text[:limit]
