"""Uploaded files handed to Sift, and the per-file results as the Corpora page lists them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from sift.app.pipeline import FileResult, Sift

logger = logging.getLogger(__name__)

RESULT_COLOURS = {"added": "#1b7f3b", "replaced": "#1565c0", "unchanged": "#8a8a8a", "failed": "#c62828"}


class Upload(Protocol):
    """What Streamlit's UploadedFile offers and Sift needs."""

    name: str
    size: int

    def getvalue(self) -> bytes: ...


def ingest_uploads(
    sift: Sift, files: Sequence[Upload], corpus: str, on_progress: Callable[[int, int, FileResult], None] | None = None
) -> list[FileResult]:
    # getvalue is passed, not called: Sift checks the size against the limit before it reads a byte.
    return sift.ingest_uploads([(f.name, f.size, f.getvalue) for f in files], corpus, on_progress)


def result_row(result: FileResult) -> dict:
    return {"file": result.source, "result": result.status, "passages": result.chunks, "reason": result.reason or ""}


def result_colour(status: str) -> str:
    """CSS for a result cell: added green, replaced blue, unchanged grey, failed red."""
    return f"color: {RESULT_COLOURS[status]}; font-weight: 600" if status in RESULT_COLOURS else ""
