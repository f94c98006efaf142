"""The ingestion worker: one process beside ``sift serve``'s HTTP workers that runs the queued jobs
(``sift.app.jobs``), one at a time, oldest first.

One at a time keeps two uploads into one corpus apart (ingestion also serialises writes per corpus). The process runs
niced, with one torch thread, so that embedding an upload leaves the CPU to the questions being answered; it dies
with its parent (a server killed with -9 takes it along), and the job it was running is queued again when the server
starts next.

Example::

    >>> worker = start_worker(Settings(data_dir="/tmp/sift-doc"))     # doctest: +SKIP
    >>> worker.terminate()                                             # doctest: +SKIP
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time

from sift.app.config import Settings
from sift.app.jobs import FINAL_FILE_STATUSES, Job, Jobs, with_result
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift
from sift.ingestion.ingest import FileResult
from sift.ingestion.store import CorpusNotFound

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
NICENESS = 10  # below the HTTP workers (0): a question's work goes first when both want the CPU
_PR_SET_PDEATHSIG = 1


def run_job(sift: Sift, jobs: Jobs, job: Job) -> None:
    """Ingest a claimed job's files, recording each file's result as it comes, then end the job."""
    try:
        corpus_id = sift.store.corpus(job.corpus).id
    except CorpusNotFound:
        corpus_id = None
    if corpus_id != job.corpus_id:  # deleted (perhaps made again under its name) since the upload
        jobs.finish(job.id, "failed", "the corpus was deleted after the upload; nothing was ingested")
        return
    files = list(job.files)

    def mark_ingesting(position: int) -> None:
        if position < len(files) and files[position].status not in FINAL_FILE_STATUSES:
            files[position] = files[position].model_copy(update={"status": "ingesting"})

    def progress(done: int, total: int, result: FileResult) -> None:
        # A resumed job keeps the results it recorded before the stop: its stored files now come back "unchanged".
        if files[done - 1].status not in FINAL_FILE_STATUSES:
            files[done - 1] = with_result(files[done - 1], result)
        mark_ingesting(done)
        jobs.record(job.id, files)

    mark_ingesting(0)
    jobs.record(job.id, files)
    uploads = [(f.name, f.size, jobs.upload_path(job.id, i).read_bytes) for i, f in enumerate(files)]
    sift.ingest_uploads(uploads, job.corpus, progress)  # each file's failure is its result; others fail the job
    jobs.finish(job.id, "done")


def work(settings: Settings) -> None:
    """Run queued jobs until the parent process is gone."""
    sift = Sift(settings)
    jobs = Jobs.of(sift)
    parent = os.getppid()
    logger.info("Ingestion worker %d started", os.getpid())
    while os.getppid() == parent:
        job = jobs.claim_next()
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        logger.info("Job %s: %d files into %s (attempt %d)", job.id, len(job.files), job.corpus, job.attempts)
        try:
            run_job(sift, jobs, job)
        except Exception as exc:  # a bug or a lost database must not end the worker, nor leave the job running
            logger.exception("Job %s failed", job.id)
            jobs.finish(job.id, "failed", f"{type(exc).__name__}: {exc}")


def _die_with_parent() -> None:
    """Ask Linux to end this process when its parent ends, even by kill -9 (elsewhere ``work`` notices between
    jobs)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker_main(settings: Settings) -> None:
    _die_with_parent()
    os.nice(NICENESS)
    import torch

    torch.set_num_threads(1)  # the HTTP workers keep the other cores
    configure_logging(settings)
    work(settings)


def start_worker(settings: Settings) -> multiprocessing.Process:
    """Start the ingestion worker process (spawned: a clean interpreter, whatever threads the caller has)."""
    process = multiprocessing.get_context("spawn").Process(
        target=_worker_main, args=(settings,), name="sift-ingest-worker", daemon=True
    )
    process.start()
    return process
