"""PDF -> text page by page, each page's character range known, with line-break hyphenation repaired.

pypdf extracts each page's text; a word split across a line break ("hyphen-\\nation") is joined again unless the
document itself writes that word with a hyphen. The rule, in full (docs/extraction.md):

- only a hyphen (or soft hyphen) that ends a line, between a letter before it and a lowercase letter after it;
- if the hyphenated form ("well-known") appears elsewhere in the document and the joined form ("wellknown") does not,
  the hyphen is kept and the line break removed ("well-known");
- otherwise the two halves are joined ("hyphenation").

Words are never joined across a page break: the word would belong to two pages.

A few kilobytes of PDF can draw millions of characters (one compressed content stream shown on every page, or a
form drawn again and again), so extraction stops as soon as the text passes ``max_chars``, mid-page if need be.

Example::

    >>> repair_hyphenation(["Fresnel's lens bends light by re-\\nfraction. A well-known well-\\nknown lens."])
    ["Fresnel's lens bends light by refraction. A well-known well-known lens."]
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from datetime import datetime

from sift.ingestion.document import LoadedDocument, TextBuilder, TooMuchText, UnreadableFile
from sift.ingestion.text import aware

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/pdf"

# `\b` anchors the first half at a word start, so each word is tried once: linear time on any input.
_LINE_END_HYPHEN = re.compile(r"\b(\w+)[-\u00ad][ \t]*\n[ \t]*(\w+)")
_HYPHENATED = re.compile(r"\b\w+-\w+\b")
_WORD = re.compile(r"\w+")


def load_pdf(data: bytes, max_chars: int | None = None) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("encrypted PDF: it needs a password to open")
        pages = _page_texts(reader, max_chars)
        info = reader.metadata
        title = info.title if info else None
        date = _date(info)
    except UnreadableFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError, OSError, RecursionError) as exc:
        raise UnreadableFile(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})") from exc
    except Exception as exc:  # pypdf raises assorted errors on malformed files; all mean the same to a user
        logger.info("unreadable PDF", exc_info=exc)
        if "cryptography" in str(exc).lower() or "aes" in str(exc).lower():
            raise UnreadableFile("encrypted PDF: it cannot be decrypted") from exc
        raise UnreadableFile(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})") from exc
    builder = TextBuilder(max_chars)
    for number, text in enumerate(repair_hyphenation(pages), start=1):
        builder.add(text, page=number)
    return builder.build(MEDIA_TYPE, title, date)


def _page_texts(reader, max_chars: int | None) -> list[str]:
    """Each page's text, raising TooMuchText once their total passes ``max_chars``."""
    if max_chars is None:
        return [page.extract_text() or "" for page in reader.pages]
    pages: list[str] = []
    total = 0

    def count(text: str, *_) -> None:
        nonlocal total
        total += len(text)
        if total > max_chars:
            # Raised again at every later piece: pypdf swallows the first if it comes from inside a form.
            raise TooMuchText(max_chars)

    for page in reader.pages:
        pages.append(page.extract_text(visitor_text=count) or "")
        total = sum(map(len, pages))  # what the page really gave: pypdf adds line breaks between pieces
        if total > max_chars:
            raise TooMuchText(max_chars)
    return pages


def repair_hyphenation(pages: Sequence[str]) -> list[str]:
    """Each page's text with words hyphenated at a line end joined again (the rule is in the module docstring)."""
    text = "\n".join(pages)
    hyphenated = {match.group().lower() for match in _HYPHENATED.finditer(text)}
    words = {word.lower() for word in _WORD.findall(text)}

    def join(match: re.Match) -> str:
        head, tail = match.group(1), match.group(2)
        if not tail[0].islower() or head[-1].isdigit():
            return match.group()
        whole = f"{head}{tail}".lower()
        if f"{head}-{tail}".lower() in hyphenated and whole not in words:
            return f"{head}-{tail}"
        return head + tail

    return [_LINE_END_HYPHEN.sub(join, page) for page in pages]


def _date(info) -> datetime | None:
    if info is None:
        return None
    try:
        date = info.creation_date or info.modification_date
    except (ValueError, TypeError):
        return None
    return aware(date) if date else None
