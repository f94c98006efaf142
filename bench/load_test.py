"""A bounded load test of ``sift serve`` on loopback: several HTTP workers, or several servers, over one PostgreSQL
database, concurrent askers and uploaders, then a check in SQL that no uploaded document was lost or stored twice.

1. A scratch PostgreSQL database (``sift_load_<pid>``, dropped at the end) and a temporary data directory; an editor
   with an API key; ``--servers`` processes of ``sift serve --workers N`` with auth on, each on a free loopback port,
   sharing the database and the data directory as the README's "Several servers" deployment does. With
   ``--vector-store pgvector`` the vectors live in that database too (a PostgreSQL with pgvector from the pgserver
   wheel, unless ``--postgres`` names one).
2. The sample corpus is uploaded into the corpus ``load``; the askers ask about it. Asker i talks to server
   i mod servers; an uploader uploads to one server and follows its job on the next, as a load balancer may send
   it.
3. For ``--duration`` seconds, each asker in turn sends ``POST /ask``, ``POST /v1/chat/completions`` and
   ``POST /search`` (at most ``--requests`` each), one at a time; each uploader sends ``--files-per-upload`` distinct
   small real documents (dbpedia-entity-5k abstracts) as one multipart upload into the same corpus and polls
   ``GET /jobs/{id}`` until its job ends, then the next (at most ``--uploads`` each).
4. New requests stop at the deadline; the requests in flight and the uploaders' jobs are waited for (bounded by
   ``--job-timeout``), then the server is stopped.
5. In SQL: every accepted file is a document exactly once, every job ended ``done`` with each file ``added``, none
   stuck, and the corpus's vector store (FAISS index or pgvector rows) holds exactly its passages.

Prints one JSON object: the machine, the settings, requests/s, latency percentiles per endpoint, errors by status, and
the lost, duplicated and stuck counts (also written to ``--out``). Figures from a shared machine vary with its load,
which is reported at start and end.

Example::

    .venv/bin/python bench/load_test.py --workers 2 --askers 4 --uploaders 2 --duration 90 \\
        --out docs/results/load_test.json
    .venv/bin/python bench/load_test.py --servers 2 --workers 1 --vector-store pgvector --duration 90
    .venv/bin/python bench/load_test.py --quick      # a smoke run: short answers, 10 s, 1 asker, 1 uploader
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, func, make_url, select, text

from sift.app.config import Settings
from sift.app.jobs import JobRow
from sift.app.pipeline import SAMPLE_CORPUS_DIR, Sift
from sift.app.worker_control import worker_running
from sift.ingestion.schema import ChunkRow, Document
from sift.rerank.evaluation import cpu_model

CORPUS = "load"
QUESTIONS = [
    "Which architect is credited with designing the Pharos of Alexandria?",
    "What did John Smeaton base the curved shape of his Eddystone tower on?",
    "What is the focal length of a first order Fresnel lens?",
    "Which ship was wrecked when Grace Darling and her father rowed out to rescue survivors?",
    "What device invented by Gustaf Dalén switched a lighthouse on at dusk and off at sunrise?",
    "Which was the last lighthouse in the United States to be automated?",
]
ASKER_ENDPOINTS = ("POST /ask", "POST /v1/chat/completions", "POST /search")
# What tests/serving.py's server answers with: few candidates, few tokens (the --quick run's settings).
SHORT_ANSWERS = {"SIFT_CANDIDATES_K": "8", "SIFT_RERANK_LLM_K": "4", "SIFT_ANSWER_MAX_TOKENS": "48"}
DEFAULT_POSTGRES = os.environ.get("SIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
VECTOR_STORES = ("faiss", "pgvector")


@dataclass
class Record:
    """Every request's endpoint, status (or transport error) and latency, from every thread."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, client: httpx.Client, endpoint: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._add(endpoint, time.perf_counter() - started, type(exc).__name__)
            return None
        self._add(endpoint, time.perf_counter() - started, response.status_code)
        if response.is_error:
            log(f"{endpoint}: {response.status_code} {response.text[:300]}")
        return response

    def _add(self, endpoint: str, seconds: float, status: int | str) -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)
            self.statuses[f"{endpoint} {status}"] += 1
            if not (isinstance(status, int) and status < 400):
                self.errors[f"{endpoint} {status}"] += 1


@dataclass
class Uploaded:
    """What the uploaders sent and the server accepted: file names and job ids, with each job's time to finish."""

    names: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    job_seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="each sift serve's HTTP worker processes")
    parser.add_argument("--servers", type=int, default=1, help="sift serve processes sharing the database")
    parser.add_argument("--vector-store", choices=VECTOR_STORES, default="faiss", help="the servers' vector store")
    parser.add_argument("--askers", type=int, default=4)
    parser.add_argument("--uploaders", type=int, default=2)
    parser.add_argument("--duration", type=float, default=90, help="seconds during which new requests are sent")
    parser.add_argument("--requests", type=int, default=200, help="most requests each asker sends")
    parser.add_argument("--uploads", type=int, default=20, help="most uploads each uploader sends")
    parser.add_argument("--files-per-upload", type=int, default=3)
    parser.add_argument("--job-timeout", type=float, default=300, help="longest wait for a job to end")
    parser.add_argument("--short-answers", action="store_true", help="few candidates and tokens, as the tests use")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10 s, 1 asker, 1 uploader, short answers")
    parser.add_argument("--documents", type=Path, help="a BEIR corpus.jsonl (default: dbpedia-entity-5k's)")
    parser.add_argument(
        "--postgres",
        help="an admin URL of the PostgreSQL server (default: the local one; with pgvector, a pgserver started here)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.askers, args.uploaders, args.duration, args.uploads, args.files_per_upload = 1, 1, 10, 1, 2
        args.short_answers = True
    documents = args.documents or Settings().datasets_dir / "dbpedia-entity-5k" / "corpus.jsonl"

    report = run(args, documents)
    output = json.dumps(report, indent=2)
    print(output)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(output + "\n")
    if report["errors"] or report["integrity"]["problems"]:
        sys.exit(1)


def run(args: argparse.Namespace, documents: Path) -> dict:
    files_needed = args.uploaders * args.uploads * args.files_per_upload
    texts = list(small_documents(documents, files_needed))
    load_start = load_average()
    with (
        postgres_server(args.postgres, args.vector_store) as admin_url,
        scratch_database(admin_url) as database_url,
        tempfile.TemporaryDirectory(prefix="sift-load-") as folder,
    ):
        data_dir = Path(folder) / "data"
        env = {
            "SIFT_DATA_DIR": str(data_dir),
            "SIFT_DATABASE_URL": database_url,
            "SIFT_VECTOR_STORE": args.vector_store,
            "SIFT_AUTH": "true",
            **(SHORT_ANSWERS if args.short_answers else {}),
        }
        settings = Settings(data_dir=data_dir, database_url=database_url, vector_store=args.vector_store, auth=True)
        headers = {"Authorization": f"Bearer {api_key(settings)}"}
        with ExitStack() as servers:
            urls = [
                servers.enter_context(serving(args.workers, env, Path(folder) / f"serve-{n}.log"))
                for n in range(args.servers)
            ]
            with httpx.Client(base_url=urls[0], headers=headers, timeout=args.job_timeout) as client:
                seed_corpus(client, args.job_timeout)
            record, uploaded = Record(), Uploaded()
            deadline = time.monotonic() + args.duration
            started = time.perf_counter()
            batches = [texts[i : i + args.files_per_upload] for i in range(0, len(texts), args.files_per_upload)]
            with ThreadPoolExecutor(args.askers + args.uploaders) as pool:
                users = [
                    pool.submit(asker, number, urls[number % len(urls)], headers, record, deadline, args.requests)
                    for number in range(args.askers)
                ] + [
                    pool.submit(
                        uploader,
                        (urls[n % len(urls)], urls[(n + 1) % len(urls)]),
                        headers,
                        record,
                        uploaded,
                        deadline,
                        batches[n :: args.uploaders],
                        args,
                    )
                    for n in range(args.uploaders)
                ]
                for user in users:
                    user.result()
            elapsed = time.perf_counter() - started
        workers_ready = ready_workers(data_dir / "logs" / "sift.log")
        integrity = check_integrity(settings, uploaded)
        integrity["job_worker_stopped"] = not worker_running(settings)
    return {
        "machine": machine(load_start),
        "settings": {
            "servers": args.servers,
            "workers": args.workers,
            "askers": args.askers,
            "uploaders": args.uploaders,
            "duration_s": args.duration,
            "files_per_upload": args.files_per_upload,
            "answers": "short (candidates 8, LLM-scored 4, 48 tokens)" if args.short_answers else "the defaults",
            "database": "postgresql",
            "vector_store": args.vector_store,
            "auth": True,
        },
        "workers_ready": workers_ready,
        "elapsed_s": round(elapsed, 1),
        "requests": sum(len(v) for v in record.latencies.values()),
        "requests_per_s": round(sum(len(v) for v in record.latencies.values()) / elapsed, 2),
        "endpoints": {endpoint: latency_summary(values, elapsed) for endpoint, values in record.latencies.items()},
        "jobs": {"count": len(uploaded.jobs), "files": len(uploaded.names), **summary(uploaded.job_seconds)},
        "statuses": dict(sorted(record.statuses.items())),
        "errors": dict(sorted(record.errors.items())),
        "integrity": integrity,
    }


# ---------------------------------------------------------------------------------------------- the users


def asker(number: int, base_url: str, headers: dict, record: Record, deadline: float, most: int) -> None:
    """Ask, chat and search in turn, one request at a time, until the deadline or ``most`` requests."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        for sent in range(most):
            if time.monotonic() >= deadline:
                return
            question = QUESTIONS[(number + sent) % len(QUESTIONS)]
            endpoint = ASKER_ENDPOINTS[(number + sent) % len(ASKER_ENDPOINTS)]
            method, path = endpoint.split(" ")
            if path == "/ask":
                body = {"corpus": CORPUS, "question": question}
            elif path == "/search":
                body = {"corpus": CORPUS, "query": question, "k": 10}
            else:
                body = {"model": CORPUS, "messages": [{"role": "user", "content": question}]}
            record.call(client, endpoint, method, path, json=body)


def uploader(
    servers: tuple[str, str],
    headers: dict,
    record: Record,
    uploaded: Uploaded,
    deadline: float,
    batches: list[list[tuple[str, bytes]]],
    args: argparse.Namespace,
) -> None:
    """Upload a batch of files to the first server, poll its job on the second (the same one when there is one)
    until it ends, then the next, until the deadline or the last batch."""
    upload_to, poll_on = servers
    with (
        httpx.Client(base_url=upload_to, headers=headers, timeout=args.job_timeout) as client,
        httpx.Client(base_url=poll_on, headers=headers, timeout=args.job_timeout) as poller,
    ):
        for batch in batches[: args.uploads]:
            if time.monotonic() >= deadline:
                return
            sent = time.perf_counter()
            files = [("files", (name, content, "text/markdown")) for name, content in batch]
            path = f"/corpora/{CORPUS}/uploads"
            response = record.call(client, "POST /corpora/{name}/uploads", "POST", path, files=files)
            if response is None or response.status_code != 202:
                continue
            job_id = response.json()["id"]
            with uploaded.lock:
                uploaded.jobs.append(job_id)
                uploaded.names.extend(name for name, _ in batch)
            while time.perf_counter() - sent < args.job_timeout:
                job = record.call(poller, "GET /jobs/{id}", "GET", f"/jobs/{job_id}")
                if job is not None and job.is_success and job.json()["status"] in ("done", "failed"):
                    with uploaded.lock:
                        uploaded.job_seconds.append(time.perf_counter() - sent)
                    break
                time.sleep(0.5)


def api_key(settings: Settings) -> str:
    """An editor's key, made in the new database (which opening it migrates) before the server starts."""
    sift = Sift(settings)
    sift.accounts.add_user("load", "load-test-password", "editor")
    secret = sift.accounts.create_key("load", "load test").secret
    sift.store.engine.dispose()
    return secret


def seed_corpus(client: httpx.Client, timeout: float) -> None:
    """The corpus the askers ask about: the sample corpus, uploaded and ingested before the load starts."""
    client.post("/corpora", json={"name": CORPUS}).raise_for_status()
    files = [("files", (path.name, path.read_bytes())) for path in sorted(SAMPLE_CORPUS_DIR.iterdir())]
    job = client.post(f"/corpora/{CORPUS}/uploads", files=files)
    job.raise_for_status()
    waited = time.monotonic() + timeout
    while time.monotonic() < waited:
        status = client.get(f"/jobs/{job.json()['id']}").json()
        if status["status"] in ("done", "failed"):
            failed = [f for f in status["files"] if f["status"] == "failed"]
            if status["status"] == "failed" or failed:
                raise RuntimeError(f"the sample corpus did not ingest: {status}")
            return
        time.sleep(0.5)
    raise RuntimeError(f"the sample corpus was not ingested within {timeout} s")


def small_documents(corpus_jsonl: Path, count: int) -> Iterator[tuple[str, bytes]]:
    """``count`` distinct short articles (title and abstract) as Markdown files with distinct names."""
    if not corpus_jsonl.is_file():
        raise SystemExit(f"{corpus_jsonl} not found: pass --documents, a BEIR corpus.jsonl (e.g. dbpedia-entity-5k's)")
    with corpus_jsonl.open() as lines:
        for number, line in zip(range(count), lines, strict=False):
            entry = json.loads(line)
            slug = re.sub(r"[^A-Za-z0-9]+", "-", entry["title"]).strip("-")[:60] or "untitled"
            yield f"{number:05d}-{slug}.md", f"# {entry['title']}\n\n{entry['text']}\n".encode()


# ---------------------------------------------------------------------------------------------- the check


def check_integrity(settings: Settings, uploaded: Uploaded) -> dict:
    """Every accepted file stored exactly once, every job done with every file added, the vector store complete."""
    sift = Sift(settings)
    corpus = sift.store.corpus(CORPUS)
    with sift.store.session() as session:
        stored = Counter(session.scalars(select(Document.source).where(Document.corpus_id == corpus.id)))
        same_content = session.execute(
            select(func.count())
            .select_from(Document)
            .where(Document.corpus_id == corpus.id)
            .group_by(Document.sha256)
            .having(func.count() > 1)
        ).all()
        chunks = session.scalar(select(func.count(ChunkRow.id)).join(Document).where(Document.corpus_id == corpus.id))
        jobs = session.execute(
            select(JobRow.id, JobRow.status, JobRow.files).where(JobRow.corpus_id == corpus.id)
        ).all()
    uploaded_names = Counter(uploaded.names)
    lost = sorted(name for name in uploaded_names if stored[name] == 0)
    duplicated = sorted(name for name, n in stored.items() if n > 1)
    ours = [job for job in jobs if job.id in set(uploaded.jobs)]
    stuck = [job.id for job in jobs if job.status in ("queued", "running")]
    not_added = Counter(f["status"] for job in ours for f in job.files if f["status"] != "added")
    vectors = sift.store.vector_count(corpus.id)
    problems = (
        [f"lost: {name}" for name in lost]
        + [f"stored twice: {name}" for name in duplicated]
        + [f"{len(same_content)} contents stored under two names"] * bool(same_content)
        + [f"stuck job {job_id}" for job_id in stuck]
        + [f"job {job.id} {job.status}" for job in ours if job.status != "done"]
        + [f"{n} files {status}" for status, n in not_added.items()]
        + [f"the vector store holds {vectors} vectors for {chunks} passages"] * (vectors != chunks)
    )
    sift.store.engine.dispose()
    return {
        "uploaded_files": len(uploaded_names),
        "stored_documents": sum(stored.values()),
        "lost_documents": len(lost),
        "duplicated_documents": len(duplicated) + len(same_content),
        "jobs": dict(Counter(job.status for job in jobs)),
        "stuck_jobs": len(stuck),
        "passages": chunks,
        "vectors": vectors,
        "problems": problems,
    }


# ---------------------------------------------------------------------------------------------- the server


@contextmanager
def postgres_server(url: str | None, vector_store: str) -> Iterator[str]:
    """An admin URL: ``url``, else the local PostgreSQL, or for pgvector (which Debian's server here lacks) a
    PostgreSQL with the extension from the pgserver wheel, in a temporary folder, stopped and deleted at the end."""
    if url or vector_store != "pgvector":
        yield url or DEFAULT_POSTGRES
        return
    import pgserver

    # Its own 0755 folder: run as root, pgserver serves as an unprivileged user, who cannot enter a 0700 one.
    folder = Path(tempfile.mkdtemp(prefix="sift-load-pgserver-"))
    folder.chmod(0o755)
    server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database for the run, dropped after it (with any connection left to it)."""
    name = f"sift_load_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        # make_url, not string surgery: pgserver's URL names its socket folder in the query (?host=/tmp/...)
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serving(workers: int, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``sift serve --workers N`` on a free loopback port (its URL) until the with-block ends, then stopped as
    Ctrl-C would."""
    port = free_port()
    command = [sys.executable, "-m", "sift.app.cli", "serve", "--port", str(port), "--workers", str(workers)]
    with log_path.open("ab") as server_log:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(process, port, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log("sift serve did not stop within 60 s; killing it")
            process.kill()
            process.wait()


def wait_until_listening(process: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sift serve exited {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"sift serve did not start within 300 s:\n{log_path.read_text()[-3000:]}")


def ready_workers(sift_log: Path) -> list[dict]:
    """The HTTP workers that said they were ready, each with its pid and the seconds its models took to load."""
    found = re.findall(r"API ready in worker (\d+) .*?models loaded in ([\d.]+) s", sift_log.read_text())
    return [{"pid": int(pid), "models_load_s": float(seconds)} for pid, seconds in found]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------- figures


def summary(values: list[float]) -> dict:
    if not values:
        return {"p50_s": None, "p95_s": None, "max_s": None}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50_s": round(float(p50), 3), "p95_s": round(float(p95), 3), "max_s": round(max(values), 3)}


def latency_summary(values: list[float], elapsed: float) -> dict:
    return {"count": len(values), "per_s": round(len(values) / elapsed, 3), **summary(values)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(load_start: list[float]) -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
