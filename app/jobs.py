"""Ingestion as durable jobs: an upload's files are kept on disk and its job is a row in SQL, so that nothing a user
sent is lost when the server stops, and its progress can be read while it runs and after.

A job's life: ``submit`` writes the uploaded bytes under ``data_dir/uploads/<job id>/`` and only then inserts the
job, ``queued``; a worker (``sift.app.job_worker``) claims it (``running``), ingests its files, recording each file's
result as it comes, and ends it ``done`` (every file has a result, some may be ``failed`` with the reason) or
``failed`` (the job itself could not run, e.g. its corpus was deleted); the files are deleted then, not before. A
job left ``running`` by a killed server or worker is queued again when a worker next starts
(``requeue_interrupted``) and runs again from its first file: ingestion is idempotent, so files already stored come
back ``unchanged``, and the results recorded before the crash are kept. While a job runs its worker writes a
heartbeat; a running job whose heartbeat stopped (its worker was killed, or hangs) is queued again too
(``requeue_interrupted(stale_after=...)``; ``silent`` finds them for ``sift serve``, which kills a hung worker of its
own), and one that was interrupted ``max_attempts`` times ends ``failed`` with the reason, so that no job loops, nor
stays ``running``.

Example::

    >>> jobs = Jobs.of(Sift(Settings(data_dir="/tmp/sift-doc")))                          # doctest: +SKIP
    >>> job = jobs.submit("notes", corpus_id=1, files=[("tides.md", io.BytesIO(b"# Tides"))])  # doctest: +SKIP
    >>> jobs.get(job.id).status                                                         # doctest: +SKIP
    'queued'
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, DateTime, Engine, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from sift.app.history import HistoryBase
from sift.ingestion.ingest import FileResult
from sift.ingestion.schema import utcnow

if TYPE_CHECKING:
    from sift.app.pipeline import Sift

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
FileStatus = Literal["waiting", "ingesting", "added", "unchanged", "replaced", "failed"]
FINAL_FILE_STATUSES = ("added", "unchanged", "replaced", "failed")
_COPY_CHUNK = 1 << 20


class JobRow(HistoryBase):
    """An upload's ingestion (migration 0002): its files, with their progress and results, as JSON."""

    __tablename__ = "ingest_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    corpus: Mapped[str] = mapped_column(String(300), index=True)
    corpus_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    files: Mapped[list] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # migration 0004


class JobFile(BaseModel):
    """One uploaded file of a job: its name as sent, and where its ingestion stands."""

    name: str = Field(description="The file name as uploaded.")
    size: int = Field(description="Size in bytes.")
    status: FileStatus = Field("waiting", description="waiting, ingesting, then its result.")
    source: str | None = Field(None, description="The name it is stored under (sanitised), once ingested.")
    reason: str | None = Field(None, description="Why it failed (or a note on its result).")
    document_id: int | None = Field(None, description="The document it became, when added or replaced.")
    chunks: int = Field(0, description="Passages it was split into.")


class Job(BaseModel):
    """An ingestion job as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    corpus: str
    corpus_id: int = Field(description="The corpus's id when the files were uploaded.")
    status: JobStatus = Field(description="queued, running, done (every file has a result) or failed (see error).")
    files: list[JobFile]
    error: str | None = Field(None, description="Why the job as a whole failed.")
    attempts: int = Field(description="Times a worker started it (more than 1: resumed after a server restart).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(None, description="When its worker last said it was still running it.")

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class Jobs:
    """The job queue, in the app's tables (migrated by ``History.open``), with the uploads folder beside it."""

    def __init__(self, engine: Engine, uploads_dir: Path):
        self.uploads_dir = uploads_dir
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def of(cls, sift: Sift) -> Jobs:
        """The jobs in a Sift's database (opening its history migrates the app's tables, this one among them)."""
        return cls(sift.history.engine, sift.settings.data_dir / "uploads")

    def upload_path(self, job_id: str, position: int) -> Path:
        # Saved by position, never by the sent name: that name is the user's and may be anything ("../../x").
        return self.uploads_dir / job_id / str(position)

    def submit(self, corpus: str, corpus_id: int, files: list[tuple[str, BinaryIO]]) -> Job:
        """Save the files' bytes (synced to disk), then queue the job: a queued job always has its files."""
        job_id = uuid.uuid4().hex
        folder = self.uploads_dir / job_id
        folder.mkdir(parents=True)
        entries = []
        for position, (name, stream) in enumerate(files):
            with self.upload_path(job_id, position).open("wb") as out:
                shutil.copyfileobj(stream, out, _COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
                entries.append(JobFile(name=name, size=out.tell()).model_dump())
        with self._sessions() as session:
            row = JobRow(id=job_id, corpus=corpus, corpus_id=corpus_id, status="queued", files=entries, attempts=0)
            session.add(row)
            session.commit()
            logger.info("Job %s queued: %d files for corpus %s", job_id, len(entries), corpus)
            return Job.model_validate(row)

    def get(self, job_id: str) -> Job | None:
        with self._sessions() as session:
            row = session.get(JobRow, job_id)
            return Job.model_validate(row) if row is not None else None

    def recent(self, corpus: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs, newest first; a corpus's only when named."""
        query = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
        if corpus is not None:
            query = query.where(JobRow.corpus == corpus)
        with self._sessions() as session:
            return [Job.model_validate(row) for row in session.scalars(query)]

    def claim_next(self) -> Job | None:
        """The oldest queued job, now ``running``; None when none is queued. Safe with several workers: the claim
        is a conditional update, which only one of them wins."""
        with self._sessions() as session:
            candidates = session.scalars(
                select(JobRow.id).where(JobRow.status == "queued").order_by(JobRow.created_at).limit(5)
            ).all()
            for job_id in candidates:
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == "queued")
                    .values(status="running", started_at=utcnow(), heartbeat_at=utcnow(), attempts=JobRow.attempts + 1)
                )
                session.commit()
                if claimed.rowcount == 1:
                    return Job.model_validate(session.get(JobRow, job_id, populate_existing=True))
        return None

    def record(self, job_id: str, files: list[JobFile]) -> None:
        """Save a running job's per-file progress (only its worker writes it)."""
        with self._sessions() as session:
            files_json = [f.model_dump() for f in files]
            session.execute(update(JobRow).where(JobRow.id == job_id).values(files=files_json, heartbeat_at=utcnow()))
            session.commit()

    def beat(self, job_id: str) -> None:
        """Say that a running job's worker is alive (``requeue_interrupted`` takes a silent one for dead)."""
        with self._sessions() as session:
            session.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.status == "running").values(heartbeat_at=utcnow())
            )
            session.commit()

    def finish(self, job_id: str, status: Literal["done", "failed"], error: str | None = None) -> None:
        """End a job; its uploaded files are deleted only now."""
        with self._sessions() as session:
            session.execute(
                update(JobRow).where(JobRow.id == job_id).values(status=status, error=error, finished_at=utcnow())
            )
            session.commit()
        shutil.rmtree(self.uploads_dir / job_id, ignore_errors=True)
        logger.info("Job %s %s%s", job_id, status, f": {error}" if error else "")

    def silent(self, stale_after: float, claimed_since: datetime) -> list[str]:
        """The running jobs claimed since ``claimed_since`` whose heartbeat is older than ``stale_after`` seconds:
        their worker is dead or hung."""
        query = select(JobRow.id).where(*_interrupted(stale_after), JobRow.started_at >= claimed_since)
        with self._sessions() as session:
            return list(session.scalars(query))

    def requeue_interrupted(self, max_attempts: int, stale_after: float | None = None) -> int:
        """Queue again the running jobs whose worker is gone: every one (only while no worker runs), or with
        ``stale_after``, those whose heartbeat is older than that many seconds. A job already started
        ``max_attempts`` times ends ``failed`` instead: something in it stops the worker each time. Returns how
        many were queued."""
        interrupted = _interrupted(stale_after)
        with self._sessions() as session:
            given_up = session.scalars(select(JobRow.id).where(*interrupted, JobRow.attempts >= max_attempts)).all()
            requeued = session.execute(
                update(JobRow).where(*interrupted, JobRow.attempts < max_attempts).values(status="queued")
            ).rowcount
            session.commit()
        attempts = "its only attempt" if max_attempts == 1 else f"each of its {max_attempts} attempts"
        for job_id in given_up:
            self.finish(
                job_id,
                "failed",
                f"its worker died or hung during {attempts}; the files stored are kept, upload the others again",
            )
        if requeued:
            logger.warning("Re-queued %d ingestion jobs whose worker stopped", requeued)
        return requeued

    def remove_orphaned_uploads(self) -> None:
        """Delete upload folders no unfinished job owns (a stop between saving the files and queueing the job)."""
        if not self.uploads_dir.is_dir():
            return
        with self._sessions() as session:
            unfinished = set(session.scalars(select(JobRow.id).where(JobRow.status.in_(("queued", "running")))))
        for folder in self.uploads_dir.iterdir():
            if folder.name not in unfinished:
                shutil.rmtree(folder, ignore_errors=True)
                logger.info("Removed orphaned upload folder %s", folder)


def _interrupted(stale_after: float | None) -> list:
    """Where a job is running, and with ``stale_after``, has sent no heartbeat for that many seconds."""
    conditions = [JobRow.status == "running"]
    if stale_after is not None:
        conditions.append(JobRow.heartbeat_at < utcnow() - timedelta(seconds=stale_after))
    return conditions


def with_result(file: JobFile, result: FileResult) -> JobFile:
    """A job's file once ingested, from ingestion's result for it."""
    return file.model_copy(
        update={
            "status": result.status,
            "source": result.source,
            "reason": result.reason,
            "document_id": result.document_id,
            "chunks": result.chunks,
        }
    )
