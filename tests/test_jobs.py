"""The ingestion job queue (``sift.app.jobs``) on SQLite and PostgreSQL: files kept until the job ends, one claim per
job, interrupted jobs queued again, and a job whose corpus was deleted ended visibly failed. No models are loaded."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from pathlib import Path

from sift.app.job_worker import NICENESS, run_job
from sift.app.jobs import JobFile, JobRow, Jobs
from sift.app.pipeline import Sift
from sift.app.worker_control import start_worker
from sift.ingestion.ingest import FileResult
from sift.ingestion.schema import utcnow


def _jobs(settings) -> tuple[Sift, Jobs]:
    sift = Sift(settings)
    return sift, Jobs.of(sift)


def test_a_job_keeps_its_files_until_it_ends(any_db_settings):
    sift, jobs = _jobs(any_db_settings)
    corpus = sift.store.corpus("notes", create=True)
    job = jobs.submit(corpus.name, corpus.id, [("../a.md", io.BytesIO(b"# A")), ("b.txt", io.BytesIO(b"bee"))])

    assert job.status == "queued" and [f.size for f in job.files] == [3, 3]
    assert jobs.upload_path(job.id, 0).read_bytes() == b"# A"  # saved by position, never by the sent name
    claimed = jobs.claim_next()
    assert claimed.id == job.id and claimed.status == "running" and claimed.attempts == 1
    assert jobs.claim_next() is None  # a running job is nobody else's

    files = [job.files[0].model_copy(update={"status": "added", "document_id": 7}), job.files[1]]
    jobs.record(job.id, files)
    assert jobs.get(job.id).files[0] == JobFile(name="../a.md", size=3, status="added", document_id=7)
    assert jobs.upload_path(job.id, 1).exists()
    jobs.finish(job.id, "done")
    assert jobs.get(job.id).status == "done" and jobs.get(job.id).finished_at is not None
    assert not (jobs.uploads_dir / job.id).exists()
    assert [j.id for j in jobs.recent("notes")] == [job.id] and jobs.recent("other") == []


def test_a_job_left_running_is_queued_again_and_orphans_are_removed(any_db_settings):
    sift, jobs = _jobs(any_db_settings)
    corpus = sift.store.corpus("notes", create=True)
    job = jobs.submit(corpus.name, corpus.id, [("a.md", io.BytesIO(b"# A"))])
    jobs.claim_next()
    orphan = jobs.uploads_dir / "not-a-job"
    orphan.mkdir()

    assert jobs.requeue_interrupted(max_attempts=3) == 1
    jobs.remove_orphaned_uploads()
    assert jobs.get(job.id).status == "queued" and jobs.upload_path(job.id, 0).exists()
    assert not orphan.exists()
    assert jobs.claim_next().attempts == 2


def test_a_silent_job_is_queued_again_until_its_last_attempt_then_fails(any_db_settings):
    sift, jobs = _jobs(any_db_settings)
    corpus = sift.store.corpus("notes", create=True)
    job = jobs.submit(corpus.name, corpus.id, [("a.md", io.BytesIO(b"# A"))])

    for attempt in (1, 2, 3):
        assert jobs.claim_next().attempts == attempt
        assert jobs.requeue_interrupted(max_attempts=3, stale_after=60) == 0  # its heartbeat is fresh: alive
        jobs.beat(job.id)
        with jobs._sessions() as session:  # its worker went silent two minutes ago
            session.get(JobRow, job.id).heartbeat_at = utcnow() - timedelta(minutes=2)
            session.commit()
        jobs.requeue_interrupted(max_attempts=3, stale_after=60)
    ended = jobs.get(job.id)
    assert ended.status == "failed" and "3 attempts" in ended.error and ended.attempts == 3
    assert not (jobs.uploads_dir / job.id).exists()


def test_a_job_whose_corpus_was_deleted_fails_with_the_reason(any_db_settings):
    sift, jobs = _jobs(any_db_settings)
    corpus = sift.store.corpus("notes", create=True)
    job = jobs.submit(corpus.name, corpus.id, [("a.md", io.BytesIO(b"# A"))])
    sift.delete_corpus("notes")
    sift.create_corpus("notes")  # the same name again: a different corpus, not the one the files were sent to

    run_job(sift, jobs, jobs.claim_next())
    ended = jobs.get(job.id)
    assert ended.status == "failed" and "deleted" in ended.error
    assert "notes" in sift.corpora() and sift.documents("notes") == []


def test_a_resumed_job_keeps_the_results_it_recorded(settings, monkeypatch):
    sift, jobs = _jobs(settings)
    corpus = sift.store.corpus("notes", create=True)
    job = jobs.submit(corpus.name, corpus.id, [("a.md", io.BytesIO(b"# A")), ("b.md", io.BytesIO(b"# B"))])
    jobs.record(job.id, [job.files[0].model_copy(update={"status": "added", "source": "a.md"}), job.files[1]])

    def ingest_again(uploads, corpus, progress):  # what ingestion says on the second run: a.md is stored already
        results = [FileResult("a.md", "unchanged"), FileResult("b.md", "added", document_id=2, chunks=1)]
        for done, result in enumerate(results, 1):
            progress(done, len(results), result)
        return results

    monkeypatch.setattr(sift, "ingest_uploads", ingest_again)
    run_job(sift, jobs, jobs.claim_next())
    assert [f.status for f in jobs.get(job.id).files] == ["added", "added"]


def test_a_worker_started_on_demand_runs_below_the_questions(settings):
    """The worker the app starts on demand leads its own session: it lowers both its nice value and its session's
    autogroup (Linux shares the CPU between sessions first), or a question's rerank beside it runs many times slower
    (README, "Latency")."""
    worker = start_worker(settings.model_copy(update={"job_worker_idle_seconds": 30.0}), on_demand=True)
    try:
        deadline = time.monotonic() + 60
        while (nice := int(Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])) == 0:
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never lowered its priority"
            time.sleep(0.1)
        assert nice == NICENESS == 19
        autogroup = Path(f"/proc/{worker.pid}/autogroup")
        if autogroup.exists():  # a kernel with autogroup scheduling
            assert autogroup.read_text().split()[-1] == str(NICENESS)
            assert Path("/proc/self/autogroup").read_text() != autogroup.read_text()  # ours is left alone
    finally:
        worker.terminate()
        worker.wait(timeout=30)
