"""Uploaded files queued as an ingestion job (``sift.app.jobs``, as the API does), and a job's files as the Corpora
page lists them.

The job is a row in SQL and its files are on disk before ``submit_upload`` returns, so a reload or a closed tab loses
nothing; a worker process runs it (``sift serve``'s, or one started here on demand when none runs).

Example::

    >>> job = submit_upload(sift, st.file_uploader("Files", accept_multiple_files=True), "notes")  # doctest: +SKIP
    >>> [file_row(f) for f in upload_jobs(sift, "notes")[0].files]                                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from sift.app.jobs import Job, JobFile, Jobs
from sift.app.pipeline import Sift
from sift.app.worker_control import ensure_worker

logger = logging.getLogger(__name__)

RESULT_COLOURS = {"added": "#1b7f3b", "replaced": "#1565c0", "unchanged": "#8a8a8a", "failed": "#c62828"}


class Upload(Protocol):
    """What Streamlit's UploadedFile offers and a job needs: a named stream of bytes."""

    name: str

    def read(self, size: int = -1, /) -> bytes: ...


def submit_upload(sift: Sift, files: Sequence[Upload], corpus: str) -> Job:
    """Save the files and queue their job, then make sure a worker runs it."""
    job = Jobs.of(sift).submit(corpus, sift.store.corpus(corpus).id, [(f.name, f) for f in files])
    ensure_worker(sift.settings)
    return job


def upload_jobs(sift: Sift, corpus: str, limit: int = 5) -> list[Job]:
    """The corpus's latest jobs, newest first (not those of a deleted corpus of the same name)."""
    corpus_id = sift.store.corpus(corpus).id
    jobs = [job for job in Jobs.of(sift).recent(corpus, limit) if job.corpus_id == corpus_id]
    if any(job.status == "queued" for job in jobs):  # its worker may have exited idle just before it was queued
        ensure_worker(sift.settings)
    return jobs


def file_row(file: JobFile) -> dict:
    return {
        "file": file.source or file.name,
        "result": file.status,
        "passages": file.chunks,
        "reason": file.reason or "",
    }


def result_colour(status: str) -> str:
    """CSS for a result cell: added green, replaced blue, unchanged grey, failed red."""
    return f"color: {RESULT_COLOURS[status]}; font-weight: 600" if status in RESULT_COLOURS else ""
