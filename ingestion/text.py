"""Plain text files, and what every format shares: bytes -> str without turning binary data into noise, and dates.

Example::

    >>> load_text(b"Tides follow the moon.\\r\\n").text
    'Tides follow the moon.'
    >>> parse_date("2024-03-01").isoformat()
    '2024-03-01T00:00:00+00:00'
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import UTC, datetime

from sift.ingestion.document import LoadedDocument, TextBuilder, UnreadableFile

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/plain"


def load_text(data: bytes, max_chars: int | None = None) -> LoadedDocument:
    builder = TextBuilder(max_chars)
    builder.add(decode_text(data))
    return builder.build(MEDIA_TYPE)


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


def parse_date(value) -> datetime | None:
    """A timezone-aware datetime from an ISO date, a datetime or a date; None when it is not one."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return aware(value)
    if hasattr(value, "year") and hasattr(value, "month"):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        return aware(datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def aware(value: datetime) -> datetime:
    """``value`` with UTC assumed when it carries no timezone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
