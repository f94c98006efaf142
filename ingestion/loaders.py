"""File bytes -> text, title and date, for .txt, .md, .html/.htm, .pdf and .docx.

Every way a file can be unreadable (empty, binary, corrupt, encrypted, a zip bomb, an unsupported type) raises
:class:`UnreadableFile` with a reason a user can act on; nothing else is expected to escape.

Example::

    >>> doc = load_document("notes.md", b"---\\ndate: 2024-03-01\\n---\\n# Tides\\nThe moon pulls the sea.")
    >>> doc.title, doc.document_date.year, doc.media_type
    ('Tides', 2024, 'text/markdown')
"""

from __future__ import annotations

import logging
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath

logger = logging.getLogger(__name__)

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}

# A DOCX is a zip; refuse one that would expand past this multiple of the upload limit before parsing it.
MAX_EXPANSION = 4


class UnreadableFile(ValueError):
    """The file cannot be turned into text; the message says why."""


@dataclass(frozen=True)
class LoadedDocument:
    text: str
    media_type: str
    title: str | None = None
    document_date: datetime | None = None


def media_type_of(source: str) -> str:
    suffix = PurePosixPath(source).suffix.lower()
    if suffix not in MEDIA_TYPES:
        supported = ", ".join(sorted(MEDIA_TYPES))
        raise UnreadableFile(f"unsupported file type {suffix or '(no extension)'!r}; supported: {supported}")
    return MEDIA_TYPES[suffix]


def load_document(source: str, data: bytes, max_expanded_bytes: int = 200 * 1024 * 1024) -> LoadedDocument:
    """Extract the text and metadata of one file, or raise UnreadableFile."""
    media_type = media_type_of(source)
    if not data:
        raise UnreadableFile("empty file (0 bytes)")
    loader = _LOADERS[media_type]
    document = loader(data, max_expanded_bytes) if media_type.endswith("document") else loader(data)
    text = _tidy(document.text)
    if not text:
        raise UnreadableFile("no text could be extracted (a scanned or image-only file needs OCR first)")
    return LoadedDocument(text, media_type, _clean_title(document.title), document.document_date)


# ------------------------------------------------------------------------------------------------ text


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252; binary data is refused rather than turned into noise."""
    if b"\x00" in data[:65536]:
        raise UnreadableFile("binary content, not text (NUL bytes found)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = text[:65536]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    garbled = sample.count("\ufffd")
    if (controls + garbled) > max(2, len(sample) // 100):
        raise UnreadableFile("binary content, not text (too many control or undecodable characters)")
    return text


def _load_text(data: bytes) -> LoadedDocument:
    return LoadedDocument(decode_text(data), MEDIA_TYPES[".txt"])


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _load_markdown(data: bytes) -> LoadedDocument:
    import yaml

    text = decode_text(data)
    front: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
            front = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            front = {}
        text = text[match.end():]
    heading = _HEADING.search(text)
    title = front.get("title") or (heading.group(1) if heading else None)
    return LoadedDocument(text, MEDIA_TYPES[".md"], str(title) if title else None, parse_date(front.get("date")))


# ------------------------------------------------------------------------------------------------ html

_HTML_DATE_META = ("date", "dc.date", "dcterms.date", "article:published_time", "dc.date.issued", "pubdate")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)


def _load_html(data: bytes) -> LoadedDocument:
    from selectolax.lexbor import LexborHTMLParser

    declared = _HTML_CHARSET.search(data[:4096])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        try:
            data = data.decode(declared.group(1).decode()).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            pass
    tree = LexborHTMLParser(decode_text(data))
    for node in tree.css("script, style, noscript, template, svg, iframe, nav"):
        node.decompose()
    title_node = tree.css_first("title")
    date = None
    for meta in tree.css("meta"):
        key = (meta.attributes.get("name") or meta.attributes.get("property") or "").lower()
        if key in _HTML_DATE_META:
            date = parse_date(meta.attributes.get("content"))
            if date:
                break
    if date is None and (time_node := tree.css_first("time[datetime]")) is not None:
        date = parse_date(time_node.attributes.get("datetime"))
    root = tree.body or tree.root
    text = root.text(separator="\n") if root is not None else ""
    return LoadedDocument(text, MEDIA_TYPES[".html"], title_node.text() if title_node else None, date)


# ------------------------------------------------------------------------------------------------ pdf


def _load_pdf(data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("encrypted PDF: it needs a password to open")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = info.title if info else None
        date = _pdf_date(info)
    except UnreadableFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError, OSError, RecursionError) as exc:
        raise UnreadableFile(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})") from exc
    except Exception as exc:  # pypdf raises assorted errors on malformed files; all mean the same to a user
        logger.info("unreadable PDF", exc_info=exc)
        if "cryptography" in str(exc).lower() or "aes" in str(exc).lower():
            raise UnreadableFile("encrypted PDF: it cannot be decrypted") from exc
        raise UnreadableFile(f"corrupt or unreadable PDF ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return LoadedDocument("\n\n".join(pages), MEDIA_TYPES[".pdf"], title, date)


def _pdf_date(info) -> datetime | None:
    if info is None:
        return None
    try:
        date = info.creation_date or info.modification_date
    except (ValueError, TypeError):
        return None
    return _aware(date) if date else None


# ------------------------------------------------------------------------------------------------ docx


def _load_docx(data: bytes, max_expanded_bytes: int) -> LoadedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(entry.file_size for entry in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("corrupt DOCX (not a valid zip archive)") from exc
    if expanded > max_expanded_bytes:
        raise UnreadableFile(
            f"refused: the DOCX would expand to {expanded / 2**20:.0f} MiB (limit {max_expanded_bytes / 2**20:.0f} "
            "MiB), which looks like a zip bomb"
        )
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UnreadableFile(f"corrupt DOCX ({type(exc).__name__}: {str(exc)[:200]})") from exc
    except Exception as exc:  # lxml and python-docx raise assorted errors on malformed parts
        logger.info("unreadable DOCX", exc_info=exc)
        raise UnreadableFile(f"corrupt DOCX ({type(exc).__name__}: {str(exc)[:200]})") from exc
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        blocks.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
    properties = document.core_properties
    date = properties.created or properties.modified
    return LoadedDocument("\n\n".join(blocks), MEDIA_TYPES[".docx"], properties.title or None,
                          _aware(date) if date else None)


# ------------------------------------------------------------------------------------------------ helpers

_LOADERS = {
    "text/plain": _load_text,
    "text/markdown": _load_markdown,
    "text/html": _load_html,
    "application/pdf": _load_pdf,
    MEDIA_TYPES[".docx"]: _load_docx,
}


def parse_date(value) -> datetime | None:
    """A timezone-aware datetime from an ISO date, a datetime or a date; None when it is not one."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _aware(value)
    if hasattr(value, "year") and hasattr(value, "month"):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    try:
        return _aware(datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _tidy(text: str) -> str:
    """Normalise line ends, drop trailing spaces and collapse runs of blank lines, keeping paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    title = " ".join(str(title).split())
    return title[:300] or None


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
    return text[:limit - len(suffix)] + suffix if len(suffix) < limit // 2 else text[:limit]
