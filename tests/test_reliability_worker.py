"""A hung ingestion worker does not block the queue: the server that started it watches its jobs' heartbeats.

What a user saw: `sift serve`'s ingestion worker stopped answering (SIGSTOP here; a hung driver or a swapped-out
process look the same from outside) while it ran an upload's job. The job stayed ``running`` for ever, and every
upload after it waited ``queued`` behind it: the stale-heartbeat requeue only ran inside a live worker, and the
server only restarted a worker that had exited.

Checked, with a real `sift serve` over SQLite and over PostgreSQL and a short ``job_stale_seconds``: once the job's
heartbeat is older than that, the server kills the hung worker, queues the job again and starts another worker,
which finishes it (every file stored once); an upload queued behind it finishes too; SQL, the vector index and the
BM25 index agree afterwards. On its last attempt the job ends ``failed`` with a reason a user can read instead.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sift.app.config import Settings
from sift.app.pipeline import Sift
from tests.serving import Server
from tests.test_crash_safety import assert_sql_and_vectors_agree

pytestmark = pytest.mark.slow

STALE_S = 10
# The job's heartbeat every second, taken for dead after 10 s (the defaults are 5 and 60).
HEARTBEATS = {"SIFT_JOB_HEARTBEAT_SECONDS": "1", "SIFT_JOB_STALE_SECONDS": str(STALE_S)}
# Past the staleness: the kill, a new worker's start and its embedding model's load (~90 s on a busy machine).
RECOVERY_S = STALE_S + 200


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    return {"SIFT_DATABASE_URL": request.getfixturevalue("postgres_url")}


def notes(prefix: str, count: int) -> list[tuple[str, tuple[str, bytes]]]:
    """Files long enough that the job is still running when the first of them is stored."""
    return [
        (
            "files",
            (f"{prefix}-{i}.md", f"# {prefix} {i}\n".encode() + f"The {prefix} lamp was lit at dusk. ".encode() * 300),
        )
        for i in range(count)
    ]


def upload(server: Server, files) -> str:
    accepted = server.http.post("/corpora/lights/uploads", files=files)
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["id"]


def worker_pid(server: Server) -> int:
    """The ingestion worker that holds the data directory's lock (it writes its pid into the lock file)."""
    return int((server.data_dir / "worker.lock").read_text())


def is_worker(pid: int) -> bool:
    """Whether ``pid`` is (still) an ingestion worker process, and not a reaped one or a reused number."""
    try:
        return b"sift.app.job_worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def hang_worker_mid_job(server: Server, job_id: str) -> int:
    """SIGSTOP the worker once the job is running with some of its files, not all, stored; returns its pid."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = server.http.get(f"/jobs/{job_id}").json()
        if any(f["status"] == "added" for f in job["files"]):
            break
        time.sleep(0.2)
    pid = worker_pid(server)
    os.kill(pid, signal.SIGSTOP)
    job = server.http.get(f"/jobs/{job_id}").json()
    assert job["status"] == "running" and job["files"][-1]["status"] != "added", f"not hung mid-job: {job}"
    return pid


@contextmanager
def serving(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[Server, list[int]]]:
    """A server, and a list to name the workers the test stopped: they are killed at the end whatever happened (a
    stopped process ignores the server's SIGTERM, and would outlive the test)."""
    server = Server(data_dir, env=env).start()
    stopped: list[int] = []
    try:
        assert server.http.post("/corpora", json={"name": "lights"}).status_code == 201
        yield server, stopped
    finally:
        for pid in stopped:
            if is_worker(pid):
                os.kill(pid, signal.SIGKILL)
        server.stop()


def stored_sources(data_dir: Path, env: dict[str, str]) -> list[str]:
    """The corpus's documents once the server stopped, after checking that SQL, vectors and BM25 agree."""
    sift = Sift(Settings(data_dir=data_dir, database_url=env.get("SIFT_DATABASE_URL")))
    try:
        assert_sql_and_vectors_agree(sift.store, "lights")
        return sorted(d.source for d in sift.documents("lights"))
    finally:
        sift.store.engine.dispose()


def test_a_hung_workers_job_is_queued_again_and_finished_by_a_new_worker(database_env, tmp_path):
    data_dir = tmp_path / "data"
    env = {**HEARTBEATS, **database_env}
    first, second = notes("first", 8), notes("second", 2)
    with serving(data_dir, env) as (server, stopped):
        first_id = upload(server, first)
        hung = hang_worker_mid_job(server, first_id)
        stopped.append(hung)
        second_id = upload(server, second)  # queued behind the hung job

        job = server.wait_for_job(first_id, timeout=RECOVERY_S)
        assert job["status"] == "done" and job["attempts"] == 2, job
        assert {f["status"] for f in job["files"]} <= {"added", "unchanged"}
        assert not is_worker(hung), "the hung worker was left behind"
        assert worker_pid(server) != hung  # a new worker ran it
        queued_after = server.wait_for_job(second_id, timeout=RECOVERY_S)
        assert queued_after["status"] == "done" and [f["status"] for f in queued_after["files"]] == ["added"] * 2
        assert not (data_dir / "uploads" / first_id).exists()
    assert stored_sources(data_dir, env) == sorted(name for _, (name, _) in first + second)  # none lost, none twice


def test_a_job_hung_on_its_last_attempt_ends_failed_with_the_reason(tmp_path):
    data_dir = tmp_path / "data"
    env = {**HEARTBEATS, "SIFT_JOB_MAX_ATTEMPTS": "1"}
    first, second = notes("first", 8), notes("second", 2)
    with serving(data_dir, env) as (server, stopped):
        first_id = upload(server, first)
        hung = hang_worker_mid_job(server, first_id)
        stopped.append(hung)
        second_id = upload(server, second)

        job = server.wait_for_job(first_id, timeout=RECOVERY_S)
        assert job["status"] == "failed" and job["attempts"] == 1, job
        assert "hung" in job["error"] and "only attempt" in job["error"], job["error"]
        assert not is_worker(hung), "the hung worker was left behind"
        queued_after = server.wait_for_job(second_id, timeout=RECOVERY_S)
        assert queued_after["status"] == "done", queued_after
        recorded = {f["source"] for f in job["files"] if f["status"] == "added"}
    # What the failed job stored before its worker hung stays, whole, beside the next upload's files: those it
    # recorded, and perhaps the one it was writing (committed, not yet recorded, when the worker stopped).
    sources = set(stored_sources(data_dir, env))
    assert {name for _, (name, _) in second} <= sources and recorded <= sources
    assert len(sources - recorded) - len(second) <= 1, sources
