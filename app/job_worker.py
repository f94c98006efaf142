"""The ingestion worker: one process per data directory that runs the queued jobs (``sift.app.jobs``), one at a
time, oldest first; ``sift.app.worker_control`` starts it (beside ``sift serve``, or on demand for the app).

One at a time keeps two uploads into one corpus apart (ingestion also serialises writes per corpus). The process runs
niced, with one torch thread, so that embedding an upload leaves the CPU to the questions being answered. It holds the
data directory's worker lock while it lives, so that it is the only one: a job found ``running`` when it takes the
lock was interrupted, and is queued again. While a job runs, a thread beats its heartbeat; between jobs the worker
queues again the jobs whose heartbeat went stale (a worker of another server on the same database that died).

Example (the process's entry point reads its settings as JSON on stdin)::

    echo '{"data_dir": "/tmp/sift-doc"}' | python -m sift.app.job_worker --on-demand
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sift.app.config import Settings
from sift.app.jobs import FINAL_FILE_STATUSES, Job, Jobs, with_result
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift
from sift.app.worker_control import hold_worker_lock
from sift.ingestion.ingest import FileResult
from sift.ingestion.store import CorpusNotFound

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
NICENESS = 19  # the lowest: a question's work goes first when both want the CPU (nice 10 left it 2.5x slower)


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
    with heartbeat(lambda: jobs.beat(job.id), sift.settings.job_heartbeat_seconds):
        sift.ingest_uploads(uploads, job.corpus, progress)  # each file's failure is its result; others fail the job
    jobs.finish(job.id, "done")


@contextmanager
def heartbeat(beat: Callable[[], None], seconds: float) -> Iterator[None]:
    """Call ``beat`` every ``seconds`` in a thread while the with-block runs (one file can take minutes)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(seconds):
            try:
                beat()
            except Exception:  # a missed beat is retried; only a long silence makes the job look dead
                logger.warning("Job heartbeat failed", exc_info=True)

    thread = threading.Thread(target=run, name="sift-job-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def work(settings: Settings, idle_exit: float | None = None) -> None:
    """Run queued jobs, holding the worker lock: until the parent process is gone, or with ``idle_exit`` (started on
    demand), until that many seconds pass without a job."""
    parent = os.getppid()
    sift = Sift(settings)
    jobs = Jobs.of(sift)
    jobs.requeue_interrupted(settings.job_max_attempts)  # we hold the lock: no other worker runs them
    logger.info("Ingestion worker %d started", os.getpid())
    idle_since = time.monotonic()
    while idle_exit is not None or os.getppid() == parent:
        job = jobs.claim_next()
        if job is None:
            if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                logger.info("Ingestion worker %d idle for %.0f s; exiting", os.getpid(), idle_exit)
                return
            jobs.requeue_interrupted(settings.job_max_attempts, stale_after=settings.job_stale_seconds)
            time.sleep(POLL_SECONDS)
            continue
        logger.info("Job %s: %d files into %s (attempt %d)", job.id, len(job.files), job.corpus, job.attempts)
        try:
            run_job(sift, jobs, job)
        except Exception as exc:  # a bug or a lost database must not end the worker, nor leave the job running
            logger.exception("Job %s failed", job.id)
            jobs.finish(job.id, "failed", f"{type(exc).__name__}: {exc}")
        idle_since = time.monotonic()


def lower_priority() -> None:
    """Nice this process; and where it leads its own session (started on demand), its session's autogroup too.
    Linux (with autogroup scheduling, the default on desktop and many server kernels) first shares the CPU equally
    between sessions and only then by nice value within each: a niced worker in its own session took half a core
    from the questions, and torch's two threads, each waiting for the other at every operation, ran 15 times slower
    (13-14 s for a rerank that takes 0.6-1.1 s idle)."""
    os.nice(NICENESS)
    if os.getsid(0) == os.getpid():
        try:
            Path("/proc/self/autogroup").write_text(f"{NICENESS}\n")
        except OSError:  # a kernel without autogroups, or a sandbox that hides /proc: the nice value is all there is
            logger.debug("No autogroup to lower", exc_info=True)


def main() -> None:
    """The worker process: settings as JSON on stdin (exactly the starter's); the data directory's only worker
    (another holding the lock: ``sift serve``'s waits for it, one on demand leaves the jobs to it), niced, one torch
    thread."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--on-demand", action="store_true", help="exit after job_worker_idle_seconds without a job")
    args = parser.parse_args()
    settings = Settings.model_validate_json(sys.stdin.read())
    # The lock first, before the slow imports: a starter probing it meanwhile must see this worker.
    with hold_worker_lock(settings, wait=not args.on_demand) as locked:
        if not locked:
            return
        lower_priority()
        import torch

        torch.set_num_threads(1)  # the HTTP workers and the app keep the other cores
        torch.set_num_interop_threads(1)
        configure_logging(settings)
        work(settings, settings.job_worker_idle_seconds if args.on_demand else None)


if __name__ == "__main__":
    main()
