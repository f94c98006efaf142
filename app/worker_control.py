"""Starting the ingestion worker (``sift.app.job_worker``): kept alive beside ``sift serve``, or started on demand by
the app when it queues a job, and never two for one data directory.

The worker holds an exclusive lock on ``data_dir/worker.lock`` (with its pid in it) for as long as it lives; the
kernel drops the lock when the process dies, even by kill -9. So "is a worker running?" is "is the lock held?", and a
second worker started by a race finds the lock taken and exits (or, ``sift serve``'s, waits for it). A worker that
hangs holds the lock too, and cannot notice itself: ``sift serve`` watches its job's heartbeat from outside.

Example::

    >>> settings = Settings(data_dir="/tmp/sift-doc")                                 # doctest: +SKIP
    >>> supervisor = WorkerSupervisor(settings, Jobs.of(Sift(settings))).start()     # doctest: +SKIP
    >>> supervisor.stop()                                                            # doctest: +SKIP
    >>> ensure_worker(Settings(data_dir="/tmp/sift-doc"))   # the app, after queueing a job  # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sift.app.config import Settings
from sift.ingestion.schema import utcnow

if TYPE_CHECKING:
    from sift.app.jobs import Jobs

logger = logging.getLogger(__name__)

SUPERVISE_SECONDS = 1.0
# One thread for every thread pool the worker's libraries read from the environment at import (OpenMP: FAISS and
# torch's intra-op pool; the BLAS libraries; Hugging Face tokenizers): an upload's embedding then takes one core,
# niced, and leaves the others to the questions (bench/latency.py measures the rerank time beside it).
SINGLE_THREADED = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
_PR_SET_PDEATHSIG = 1


def lock_path(settings: Settings) -> Path:
    return settings.data_dir / "worker.lock"


@contextmanager
def hold_worker_lock(settings: Settings, wait: bool) -> Iterator[bool]:
    """Hold the data directory's worker lock for the with-block; yields False (without waiting) when another process
    holds it and ``wait`` is off."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def worker_running(settings: Settings) -> bool:
    """Whether a worker holds the data directory's lock (probing takes it for an instant)."""
    with hold_worker_lock(settings, wait=False) as free:
        return not free


def start_worker(settings: Settings, on_demand: bool = False) -> subprocess.Popen:
    """Start a worker process with exactly these settings (as JSON on its stdin). ``sift serve``'s dies with the
    thread that started it; one started on demand outlives its starter (a closed app must not stop a job) and exits
    when idle."""
    command = [sys.executable, "-m", "sift.app.job_worker"] + ["--on-demand"] * on_demand
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        env={**os.environ, **SINGLE_THREADED},
        start_new_session=on_demand,  # not in the app's process group: a Ctrl-C on Streamlit leaves the job running
        preexec_fn=None if on_demand else _die_with_parent,
    )
    process.stdin.write(settings.model_dump_json().encode())
    process.stdin.close()
    logger.info("Started ingestion worker %d%s", process.pid, " on demand" if on_demand else "")
    return process


_started_on_demand: dict[Path, subprocess.Popen] = {}


def ensure_worker(settings: Settings) -> None:
    """Start a worker on demand unless one runs for this data directory (``sift serve``'s, or the app's), or the one
    this process started last is still starting (it takes the lock a moment after it starts)."""
    starting = _started_on_demand.get(settings.data_dir)
    if (starting is None or starting.poll() is not None) and not worker_running(settings):
        _started_on_demand[settings.data_dir] = start_worker(settings, on_demand=True)


class WorkerSupervisor:
    """``sift serve``'s worker, started again whenever it dies (the job it was running is then queued again by the
    new worker, which finds it ``running`` when it takes the lock), or killed and started again when it hangs: when
    a job it claimed sends no heartbeat for ``job_stale_seconds`` (SIGSTOP, a wedged driver), that job is queued
    again (or ends failed on its last attempt) here, since a hung worker would hold it, and the lock, for ever."""

    def __init__(self, settings: Settings, jobs: Jobs):
        self.settings = settings
        self.jobs = jobs
        self.worker: subprocess.Popen | None = None
        self._worker_started: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="sift-worker-supervisor", daemon=True)

    def start(self) -> WorkerSupervisor:
        self._thread.start()
        return self

    def _supervise(self) -> None:
        # Started from this thread, which lives as long as the server: the worker dies with it (PDEATHSIG).
        self._start_worker()
        while not self._stop.wait(SUPERVISE_SECONDS):
            if self.worker.poll() is not None:
                logger.warning(
                    "Ingestion worker %d died (exit %s); starting another", self.worker.pid, self.worker.returncode
                )
                self._start_worker()
            elif silent := self._silent_jobs():
                logger.error(
                    "Ingestion worker %d hung: job %s sent no heartbeat for %.0f s; killing it and starting another",
                    self.worker.pid,
                    ", ".join(silent),
                    self.settings.job_stale_seconds,
                )
                self._end_worker(signal.SIGKILL)
                self._requeue_silent()
                self._start_worker()
        self._end_worker(signal.SIGTERM)

    def _start_worker(self) -> None:
        self._worker_started = utcnow()  # before it starts: every job it claims started later
        self.worker = start_worker(self.settings)

    def _end_worker(self, first: signal.Signals) -> None:
        """Signal the worker and wait for it to end, with SIGKILL after 10 s: a stopped worker does not act on
        SIGTERM."""
        for sig in dict.fromkeys((first, signal.SIGKILL)):
            self.worker.send_signal(sig)
            try:
                self.worker.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                continue
        logger.error("Ingestion worker %d does not end; the next one waits for its lock", self.worker.pid)

    def _silent_jobs(self) -> list[str]:
        """The jobs this worker claimed whose heartbeat went stale. None while it waits for the lock: the jobs then
        run in another server's worker, which that server watches."""
        try:
            holder = lock_path(self.settings).read_text()
        except OSError:  # no worker has made the lock file yet
            return []
        if holder != str(self.worker.pid):
            return []
        try:
            return self.jobs.silent(self.settings.job_stale_seconds, claimed_since=self._worker_started)
        except Exception:  # a lost database must not end the supervision; the next check tries again
            logger.warning("Could not check the ingestion jobs' heartbeats", exc_info=True)
            return []

    def _requeue_silent(self) -> None:
        try:
            self.jobs.requeue_interrupted(self.settings.job_max_attempts, stale_after=self.settings.job_stale_seconds)
        except Exception:  # the next worker queues them again when it takes the lock
            logger.warning("Could not queue the hung worker's jobs again", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=25)  # the worker's end: SIGTERM, then SIGKILL after 10 s


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to end it when its parent thread ends, even by kill -9 (elsewhere the
    worker notices that its parent is gone between jobs)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
