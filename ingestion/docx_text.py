"""DOCX -> text, title, date and sections: paragraphs and tables in document order, Word's "Heading 1-9" styles
opening sections. A zip bomb is refused from the archive's directory, before anything is expanded.

Example::

    >>> data = open("sample_corpus/automation-of-lighthouses.docx", "rb").read()  # doctest: +SKIP
    >>> doc = load_docx(data, 200 * 2**20)  # doctest: +SKIP
    >>> doc.title.startswith("The Automation of Lighthouses"), bool(doc.sections)  # doctest: +SKIP
    (True, True)
"""

from __future__ import annotations

import io
import logging
import re
import zipfile

from sift.ingestion.document import LoadedDocument, TextBuilder, UnreadableFile
from sift.ingestion.text import aware

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

_HEADING_STYLE = re.compile(r"Heading ([1-9])")


def load_docx(data: bytes, max_expanded_bytes: int) -> LoadedDocument:
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
        builder = TextBuilder(max_expanded_bytes)  # text from the XML: never more characters than its bytes
        for block in document.iter_inner_content():
            if isinstance(block, docx.table.Table):
                for row in block.rows:
                    builder.add(" | ".join(cell.text for cell in row.cells))
                continue
            style = block.style.name if block.style is not None else ""
            if heading := _HEADING_STYLE.fullmatch(style or ""):
                builder.open_section(int(heading.group(1)), block.text)
            builder.add(block.text)
        properties = document.core_properties
        date = properties.created or properties.modified
    except UnreadableFile:
        raise
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UnreadableFile(f"corrupt DOCX ({type(exc).__name__}: {str(exc)[:200]})") from exc
    except Exception as exc:  # lxml and python-docx raise assorted errors on malformed parts
        logger.info("unreadable DOCX", exc_info=exc)
        raise UnreadableFile(f"corrupt DOCX ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return builder.build(MEDIA_TYPE, properties.title or None, aware(date) if date else None)
