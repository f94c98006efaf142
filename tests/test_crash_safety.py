"""Crash safety: after any exception, or a kill -9 at any moment, reopening the store finds SQL rows and vectors
(FAISS files, or pgvector rows) in agreement, and everything committed before is still there.

The kill tests run a real ingestion in a child process (real model, real SQLite and FAISS files, or real PostgreSQL
with pgvector from pgserver), kill it with SIGKILL at chosen moments, then reopen the store as the next `sift` command
would and check it. Tests taking ``backend_settings`` or ``store_settings`` run once per backend.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from sqlalchemy import select

from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ingestion.ingest import IngestItem
from sift.ingestion.schema import ChunkRow, Document
from sift.ingestion.store import CorpusNotFound, Store
from tests.conftest import REPO, SAMPLE_CORPUS, settings_for

CORPUS = "logbook"
BATCH = 5  # the child adds its files a few at a time, so kills also land around index saves
CHILD_TIMEOUT_S = 180

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------- helpers


def open_sift(settings: Settings, embedder) -> Sift:
    """A fresh Sift over the data folder, as a new process would open it (the model is the session's)."""
    sift = Sift(settings)
    sift.embedder = embedder
    return sift


def note_text(i: int) -> str:
    places = ["Eddystone", "Bell Rock", "Skerryvore", "Fastnet", "Hook Head", "Cordouan", "Longships", "Bishop Rock"]
    weather = ["a south-westerly gale", "thick fog", "a flat calm", "driving rain", "a clear frosty night"]
    return (
        f"Logbook entry {i}. At {places[i % len(places)]} the keeper on watch {i} recorded "
        f"{weather[i % len(weather)]} and trimmed the lamp wicks {i % 4 + 2} times.\n\n"
        f"Supplies for week {i} arrived by boat: {i + 3} casks of oil and {i % 7 + 1} crates of bread."
    )


KEEPERS_HANDBOOK = "# The keeper's handbook\n\n" + "\n\n".join(
    f"Rule {i}. The keeper must polish the brass of the lantern, wind the clockwork that turns the lens and write "
    f"the weather, the visibility and every passing ship in the logbook before the end of watch {i}."
    for i in range(1, 9)
)


def write_notes(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = [folder / f"entry-{i:02d}.txt" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_text(note_text(i))
    return paths


def ingest_baseline(settings: Settings, embedder) -> dict[str, tuple[int, str]]:
    """Documents committed before anything goes wrong: passage count and content hash by source."""
    sift = open_sift(settings, embedder)
    items = [
        IngestItem.from_bytes("keepers-handbook.md", KEEPERS_HANDBOOK.encode()),
        IngestItem.from_bytes("harbour-notice.txt", b"The harbour light will be dark on Tuesday for repairs."),
    ]
    results = sift.ingest(items, CORPUS)
    assert [r.status for r in results] == ["added"] * 2
    baseline = {d.source: (d.chunks, d.sha256) for d in sift.documents(CORPUS)}
    assert baseline["keepers-handbook.md"][0] >= 2
    sift.store.engine.dispose()
    return baseline


def sql_vectors(store: Store, corpus_id: int) -> dict[int, np.ndarray]:
    with store.session() as session:
        rows = session.execute(
            select(ChunkRow.id, ChunkRow.embedding).join(Document).where(Document.corpus_id == corpus_id)
        ).all()
    return {chunk_id: np.frombuffer(blob, dtype=np.float32) for chunk_id, blob in rows}


def assert_sql_and_vectors_agree(store: Store, corpus: str) -> set[int]:
    """The corpus's passages in SQL are exactly the vectors in its vector store (FAISS index or pgvector rows),
    vector for vector, and exactly the rows of its BM25 index."""
    corpus_id = store.corpus(corpus).id
    stored = sql_vectors(store, corpus_id)
    assert set(stored) == store.chunk_ids(corpus_id)
    if store.vectors.kind == "faiss":
        index = store.vector_index(corpus_id)
        indexed = set() if index is None else set(faiss.vector_to_array(index.id_map).tolist())
    else:
        indexed = set(store.vectors.stored(corpus_id, sorted(stored)))
        assert store.vector_count(corpus_id) == len(indexed), "pgvector holds vectors of passages SQL lacks"
    assert indexed == set(stored), f"only in SQL: {set(stored) - indexed}, only in vectors: {indexed - set(stored)}"
    for chunk_id, vector in store.vectors.stored(corpus_id, sorted(stored)).items():
        np.testing.assert_allclose(vector, stored[chunk_id], atol=1e-6)
    bm25 = store.lexical_index(corpus_id)
    in_bm25 = [] if bm25 is None else bm25.ids.tolist()
    assert sorted(in_bm25) == sorted(stored), f"only in SQL: {set(stored) - set(in_bm25)}, in BM25: {set(in_bm25)}"
    return indexed


def index_file_versions(settings: Settings, corpus_id: int) -> list[int]:
    pattern = re.compile(rf"corpus-{corpus_id}\.v(\d+)\..*(faiss|bm25s)")
    folder = settings.data_dir / "indexes"
    return (
        sorted(int(m.group(1)) for p in folder.glob("*") if (m := pattern.fullmatch(p.name))) if folder.exists() else []
    )


def assert_reopens_consistent(settings: Settings, embedder, baseline: dict[str, tuple[int, str]]) -> Sift:
    """What the next `sift` command finds: the baseline intact, no half-written document, SQL == FAISS, search
    working."""
    sift = open_sift(settings, embedder)
    if sift.store.engine.dialect.name == "sqlite":
        with sift.store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    documents = {d.source: d for d in sift.documents(CORPUS)}
    for source, (chunks, sha256) in baseline.items():
        assert (documents[source].chunks, documents[source].sha256) == (chunks, sha256), source
    assert [d.source for d in documents.values() if d.chunks < 1] == [], "a document without passages"
    ids = assert_sql_and_vectors_agree(sift.store, CORPUS)
    corpus = sift.store.corpus(CORPUS)
    assert all(v <= corpus.index_version for v in index_file_versions(settings, corpus.id)), (
        "an index file claims a version SQL never committed"
    )

    hits = sift.search("What did the keeper record about the weather?", CORPUS, k=10)
    assert hits and {h.chunk_id for h in hits} <= ids
    assert sift.search("polishing the brass and winding the clockwork", CORPUS, k=1)[0].source == "keepers-handbook.md"
    return sift


class IngestingChild:
    """`python child.py` ingesting a folder in batches, printing one line per file result; its stdout is read by a
    thread so the test can wait for the n-th line without sleeping."""

    SCRIPT = f"""
import sys
from pathlib import Path
from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ingestion.ingest import IngestItem

data_dir, corpus, folder = sys.argv[1:4]
sift = Sift(Settings(data_dir=data_dir))
print("loading", flush=True)
sift.embedder
print("ready", flush=True)
files = sorted(Path(folder).iterdir())
for start in range(0, len(files), {BATCH}):
    sift.ingest([IngestItem.from_path(p) for p in files[start:start + {BATCH}]], corpus,
                lambda done, total, result: print(result.status, result.source, flush=True))
print("finished", flush=True)
"""

    def __init__(self, tmp_path: Path, settings: Settings, folder: Path):
        script = tmp_path / "child.py"
        script.write_text(self.SCRIPT)
        self.stderr_path = tmp_path / "child.stderr"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "SIFT_VECTOR_STORE": settings.vector_store,
        }
        if settings.database_url:
            env["SIFT_DATABASE_URL"] = settings.database_url
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(script), str(settings.data_dir), CORPUS, str(folder)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=tmp_path,
                env=env,
            )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut short by the kill was never fully reported
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def results(self) -> list[tuple[str, str]]:
        return [tuple(line.split(" ", 1)) for line in self.lines if line not in ("loading", "ready", "finished")]

    def wait_for(self, line: str | None = None, results: int | None = None, timeout: float = CHILD_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not (
            (line is not None and line in self.lines) or (results is not None and len(self.results()) >= results)
        ):
            remaining = deadline - time.monotonic()
            try:
                got = self._queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self.kill()
                pytest.fail(f"the child did not get to {line or results} in {timeout} s:\n{self.stderr()}")
            if got is None:
                pytest.fail(f"the child stopped before {line or results} (rc {self.process.wait()}):\n{self.stderr()}")
            self.lines.append(got)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        while True:  # lines printed before the kill, still in the pipe
            try:
                got = self._queue.get_nowait()
            except queue.Empty:
                break
            if got is None:
                break
            self.lines.append(got)

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-3000:]


# ---------------------------------------------------------------------------------------------- kill -9

KILL_POINTS = {
    # name: (wait for this line, or this many results; then sleep this long before SIGKILL)
    "during model load": ("loading", None, 0.0),
    "after the first file": (None, 1, 0.0),
    "after the tenth file, around an index save": (None, 10, 0.0),
    "a moment after the seventeenth file": (None, 17, 0.03),
}


@pytest.mark.parametrize(
    ("kill_point", "backend"),
    [(point, "sqlite") for point in KILL_POINTS]
    # pgvector: the kills that land inside and between document transactions.
    + [(point, "pgvector") for point in list(KILL_POINTS)[2:]],
)
def test_kill_9_during_ingest_loses_nothing_committed(kill_point, backend, request, tmp_path, embedder):
    settings = settings_for(backend, request, tmp_path)
    baseline = ingest_baseline(settings, embedder)
    notes = write_notes(tmp_path / "notes", 30)
    line, results, delay = KILL_POINTS[kill_point]

    child = IngestingChild(tmp_path, settings, tmp_path / "notes")
    try:
        child.wait_for(line=line, results=results)
        time.sleep(delay)
    finally:
        child.kill()
    assert child.process.returncode == -signal.SIGKILL
    assert "finished" not in child.lines, "the child finished before the kill: the test proved nothing"

    sift = assert_reopens_consistent(settings, embedder, baseline)
    documents = {d.source: d for d in sift.documents(CORPUS)}
    committed = set(documents) - set(baseline)
    reported = {source for status, source in child.results() if status == "added"}
    assert reported <= committed, f"reported added, then lost: {reported - committed}"
    assert len(committed - reported) <= 1, "more than the one file being written when killed"
    for path in notes:
        if path.name in committed:
            assert documents[path.name].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    # Running the same command again finishes the job: what was committed is recognised, the rest added.
    rerun = sift.ingest([IngestItem.from_path(p) for p in notes], CORPUS)
    assert {r.source: r.status for r in rerun} == {
        p.name: "unchanged" if p.name in committed else "added" for p in notes
    }
    assert len(sift.documents(CORPUS)) == len(baseline) + len(notes)
    assert_reopens_consistent(settings, embedder, baseline)
    # A save cut short by the kill left a temporary file; the next save cleared it.
    assert not list((settings.data_dir / "indexes").glob(".*.tmp"))


class ReindexingChild(IngestingChild):
    """`python child.py` re-extracting the corpus with smaller passages, printing one line per document result."""

    SCRIPT = """
import sys
from sift.app.config import Settings
from sift.app.pipeline import Sift

data_dir, corpus, chunk_size = sys.argv[1:4]
sift = Sift(Settings(data_dir=data_dir, chunk_size=int(chunk_size), chunk_overlap=4))
print("loading", flush=True)
sift.embedder
print("ready", flush=True)
sift.reindex(corpus, lambda done, total, result: print(result.status, result.source, flush=True))
print("finished", flush=True)
"""


SMALL_CHUNKS = 40  # tokens: every note becomes several passages


def passage_texts(sift: Sift) -> dict[str, tuple[str, ...]]:
    return {d.source: tuple(c.text for c in sift.store.document_chunks(d.id)) for d in sift.documents(CORPUS)}


@pytest.mark.parametrize(("after_results", "delay"), [(1, 0.0), (12, 0.03)])
def test_kill_9_during_reindex_leaves_each_document_old_or_new(after_results, delay, tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data")
    ingest_baseline(settings, embedder)
    open_sift(settings, embedder).ingest([IngestItem.from_path(p) for p in write_notes(tmp_path / "notes", 30)], CORPUS)
    old = passage_texts(open_sift(settings, embedder))
    # What a finished reindex gives: the same store reindexed in this process, in a copy of the data folder.
    copy = Settings(data_dir=tmp_path / "copy", chunk_size=SMALL_CHUNKS, chunk_overlap=4)
    shutil.copytree(settings.data_dir, copy.data_dir)
    open_sift(copy, embedder).reindex(CORPUS)
    new = passage_texts(open_sift(copy, embedder))
    changed = {source for source in old if new[source] != old[source]}
    assert len(changed) >= 30  # every note and the handbook; the one-line harbour notice comes out the same

    child = ReindexingChild(tmp_path, settings, SMALL_CHUNKS)
    try:
        child.wait_for(results=after_results)
        time.sleep(delay)
    finally:
        child.kill()
    assert child.process.returncode == -signal.SIGKILL
    assert "finished" not in child.lines, "the child finished before the kill: the test proved nothing"

    sift = open_sift(settings, embedder)
    assert_sql_and_vectors_agree(sift.store, CORPUS)
    found = passage_texts(sift)
    assert set(found) == set(old)
    assert all(found[source] in (old[source], new[source]) for source in old), "a document half old, half new"
    reindexed = {source for source in changed if found[source] == new[source]}
    reported = {source for status, source in child.results() if status == "replaced"}
    assert reported <= reindexed and len(reindexed - reported) <= 1
    assert reindexed != changed, "everything was reindexed before the kill"

    # Running it again finishes the job: what was committed is recognised, the rest replaced.
    rerun = open_sift(copy.model_copy(update={"data_dir": settings.data_dir}), embedder)
    statuses = {r.source: r.status for r in rerun.reindex(CORPUS)}
    assert statuses == {source: "replaced" if source in changed - reindexed else "unchanged" for source in old}
    assert passage_texts(rerun) == new
    assert_sql_and_vectors_agree(rerun.store, CORPUS)
    assert rerun.search("polishing the brass and winding the clockwork", CORPUS, k=1)[0].source == "keepers-handbook.md"


# ---------------------------------------------------------------------------------------------- exceptions


class FailingModel:
    """The real embedding model, except that encoding a passage containing ``trigger`` raises, as a GPU running
    out of memory mid-batch would."""

    def __init__(self, model, trigger: str):
        self.model = model
        self.tokenizer = model.tokenizer
        self.trigger = trigger

    def encode(self, texts, **kwargs):
        if any(self.trigger in text for text in texts):
            raise RuntimeError("CUDA out of memory while embedding")
        return self.model.encode(texts, **kwargs)


def test_embedding_error_mid_batch_fails_that_file_only(store_settings, embedder):
    sift = open_sift(store_settings, embedder)
    assert [r.status for r in sift.ingest([IngestItem.from_bytes("first.txt", note_text(0).encode())], CORPUS)] == [
        "added"
    ]
    items = [IngestItem.from_bytes(f"entry-{i}.txt", note_text(i).encode()) for i in range(1, 5)]
    items[2] = IngestItem.from_bytes("explodes.txt", b"This passage makes the model EXPLODE.")

    sift.embedder = FailingModel(embedder, "EXPLODE")
    results = sift.ingest(items, CORPUS)

    assert [r.status for r in results] == ["added", "added", "failed", "added"]
    assert "RuntimeError" in results[2].reason and "out of memory" in results[2].reason
    assert results[2].document_id is None
    assert sorted(d.source for d in sift.documents(CORPUS)) == [
        "entry-1.txt",
        "entry-2.txt",
        "entry-4.txt",
        "first.txt",
    ]
    assert_sql_and_vectors_agree(sift.store, CORPUS)
    assert_sql_and_vectors_agree(open_sift(store_settings, embedder).store, CORPUS)

    sift.embedder = embedder  # the model works again: the failed file goes in, nothing else is redone
    assert [r.status for r in sift.ingest(items, CORPUS)] == ["unchanged", "unchanged", "added", "unchanged"]
    assert_sql_and_vectors_agree(sift.store, CORPUS)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_exception_escaping_ingest_keeps_committed_files(error, backend_settings, embedder, tmp_path):
    """A progress callback that raises (Ctrl-C in the CLI, a closed browser tab in the UI) stops the batch; the files
    already done stay, SQL and vectors agree in this process and the next, and a rerun finishes the rest."""
    baseline = ingest_baseline(backend_settings, embedder)
    notes = write_notes(tmp_path / "notes", 5)
    sift = open_sift(backend_settings, embedder)

    def stop_after_two(done, total, result):
        if done == 2:
            raise error("stopped by the user")

    with pytest.raises(error):
        sift.ingest([IngestItem.from_path(p) for p in notes], CORPUS, on_progress=stop_after_two)

    assert len(sift.documents(CORPUS)) == len(baseline) + 2
    assert_sql_and_vectors_agree(sift.store, CORPUS)
    reopened = assert_reopens_consistent(backend_settings, embedder, baseline)
    assert [r.status for r in reopened.ingest([IngestItem.from_path(p) for p in notes], CORPUS)] == [
        "unchanged",
        "unchanged",
        "added",
        "added",
        "added",
    ]
    assert_sql_and_vectors_agree(reopened.store, CORPUS)


# ---------------------------------------------------------------------------------------------- damaged index files


def damage(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    elif how == "garbage":
        path.write_bytes(os.urandom(path.stat().st_size))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("next_step", ["search", "ingest"])
@pytest.mark.parametrize("how", ["deleted", "garbage", "truncated"])
def test_damaged_index_file_is_rebuilt_from_sql(how, next_step, settings, embedder):
    baseline = ingest_baseline(settings, embedder)
    corpus_id = open_sift(settings, embedder).store.corpus(CORPUS).id
    files = sorted((settings.data_dir / "indexes").glob(f"corpus-{corpus_id}.*faiss"))
    assert len(files) == 1
    for path in files:
        damage(path, how)

    sift = open_sift(settings, embedder)
    if next_step == "ingest":  # the next command writes first, on top of the damaged file
        [result] = sift.ingest([IngestItem.from_bytes("late.txt", b"The fog signal sounded all night.")], CORPUS)
        assert result.status == "added"
        baseline["late.txt"] = (1, hashlib.sha256(b"The fog signal sounded all night.").hexdigest())
        sift.store.engine.dispose()
    assert_reopens_consistent(settings, embedder, baseline)
    assert len(sift.documents(CORPUS)) == len(baseline)

    rebuilt = sorted((settings.data_dir / "indexes").glob(f"corpus-{corpus_id}.*faiss"))
    assert len(rebuilt) == 1
    assert faiss.read_index(str(rebuilt[0])).ntotal == sum(chunks for chunks, _ in baseline.values())


@pytest.mark.parametrize("next_step", ["search", "ingest"])
@pytest.mark.parametrize("how", ["deleted", "garbage", "truncated"])
@pytest.mark.parametrize("part", ["vocab.index.json", "data.csc.index.npy", "chunk_ids.npy"])
def test_damaged_lexical_file_is_rebuilt_from_sql(part, how, next_step, settings, embedder):
    baseline = ingest_baseline(settings, embedder)
    corpus_id = open_sift(settings, embedder).store.corpus(CORPUS).id
    [folder] = (settings.data_dir / "indexes").glob(f"corpus-{corpus_id}.*bm25s")
    damage(folder / part, how)

    sift = open_sift(settings, embedder)
    if next_step == "ingest":  # the next command writes first, on top of the damaged folder
        [result] = sift.ingest([IngestItem.from_bytes("late.txt", b"The fog signal sounded all night.")], CORPUS)
        assert result.status == "added"
        baseline["late.txt"] = (1, hashlib.sha256(b"The fog signal sounded all night.").hexdigest())
        sift.store.engine.dispose()
    reopened = assert_reopens_consistent(settings, embedder, baseline)
    assert reopened.search("polishing the brass", CORPUS, k=1, retrieval="lexical")[0].source == "keepers-handbook.md"
    [rebuilt] = (settings.data_dir / "indexes").glob(f"corpus-{corpus_id}.*bm25s")
    assert (rebuilt / part).is_file()


# ---------------------------------------------------------------------------------------------- deletion


def test_delete_document_and_corpus_remove_rows_vectors_and_files(backend_settings, embedder):
    settings = backend_settings
    sift = open_sift(settings, embedder)
    baseline_results = sift.ingest(
        [
            IngestItem.from_path(SAMPLE_CORPUS / name)
            for name in ["lighthouse-keepers-daily-life.txt", "history-of-lighthouses.md"]
        ],
        CORPUS,
    )
    other = sift.ingest([IngestItem.from_bytes("other.txt", b"Granite towers resist the waves.")], "other")
    keepers = baseline_results[0]
    corpus_id = sift.store.corpus(CORPUS).id
    keepers_ids = {
        i
        for i, p in sift.store.passages(corpus_id, sorted(sift.store.chunk_ids(corpus_id))).items()
        if p.document_id == keepers.document_id
    }
    assert len(keepers_ids) == keepers.chunks >= 2

    assert sift.delete_document(CORPUS, keepers.document_id) == "lighthouse-keepers-daily-life.txt"

    ids = assert_sql_and_vectors_agree(sift.store, CORPUS)
    assert ids and not ids & keepers_ids
    assert [d.source for d in sift.documents(CORPUS)] == ["history-of-lighthouses.md"]
    assert all(h.document_id != keepers.document_id for h in sift.search("a keeper's daily life", CORPUS, k=20))
    reopened = open_sift(settings, embedder)
    assert assert_sql_and_vectors_agree(reopened.store, CORPUS) == ids

    index_folder = settings.data_dir / "indexes"
    assert bool(list(index_folder.glob(f"corpus-{corpus_id}.*"))) == sift.store.vectors.keeps_files
    assert sift.delete_corpus(CORPUS) == 1

    assert sift.corpora() == ["other"]
    assert list(index_folder.glob(f"corpus-{corpus_id}.*")) == []
    assert sift.store.vector_count(corpus_id) == 0
    with sift.store.session() as session:
        assert session.scalars(select(ChunkRow.id).where(ChunkRow.id.in_(ids))).all() == []
        assert session.scalars(select(Document.id).where(Document.corpus_id == corpus_id)).all() == []
    with pytest.raises(CorpusNotFound):
        sift.search("lighthouse history", CORPUS)
    with pytest.raises(CorpusNotFound):
        open_sift(settings, embedder).search("lighthouse history", CORPUS)
    # The other corpus is untouched.
    assert assert_sql_and_vectors_agree(open_sift(settings, embedder).store, "other")
    assert [h.document_id for h in sift.search("granite", "other", k=1)] == [other[0].document_id]


def test_deleting_the_last_document_leaves_an_empty_searchable_corpus(backend_settings, embedder):
    sift = open_sift(backend_settings, embedder)
    [result] = sift.ingest([IngestItem.from_bytes("only.txt", b"The only note in the corpus.")], CORPUS)
    sift.delete_document(CORPUS, result.document_id)

    for reader in (sift, open_sift(backend_settings, embedder)):
        assert reader.documents(CORPUS) == []
        assert reader.store.chunk_ids(reader.store.corpus(CORPUS).id) == set()
        assert reader.store.vector_count(reader.store.corpus(CORPUS).id) == 0
        assert reader.search("note", CORPUS) == []


def test_recreated_corpus_never_reads_a_deleted_corpus_index(settings, embedder):
    """kill -9 inside delete_corpus, after its commit and before its files are removed, leaves the old corpus's index
    files behind. A new corpus of the same name (SQLite reuses the freed id) must not take them for its own."""
    sift = open_sift(settings, embedder)
    sift.ingest(
        [IngestItem.from_bytes(f"old-{i}.txt", f"Old note {i} about lava flows.".encode()) for i in range(3)], CORPUS
    )
    old_id = sift.store.corpus(CORPUS).id
    left_behind = {p: p.read_bytes() for p in (settings.data_dir / "indexes").glob(f"corpus-{old_id}.*faiss")}
    assert left_behind
    sift.delete_corpus(CORPUS)
    for path, data in left_behind.items():  # the state the kill leaves
        path.write_bytes(data)

    fresh = open_sift(settings, embedder)
    long_note = " ".join(note_text(i) for i in range(6))  # several passages: new chunk ids differ from the old ones
    results = fresh.ingest(
        [IngestItem.from_bytes("new-0.txt", long_note.encode())]
        + [IngestItem.from_bytes(f"new-{i}.txt", note_text(i).encode()) for i in (1, 2)],
        CORPUS,
    )
    assert [r.status for r in results] == ["added"] * 3

    assert_sql_and_vectors_agree(open_sift(settings, embedder).store, CORPUS)
    hits = open_sift(settings, embedder).search("lava flows", CORPUS, k=3)
    assert hits and all(h.source.startswith("new-") for h in hits)
