"""Reliability when a second user or a second command acts at the same time: real `sift` processes against real
SQLite and PostgreSQL databases.

Each race here was seen by a user: a corpus deleted while another process ingests into it, several processes
opening a fresh store at once, two creating one corpus, a kill -9 inside a delete, hostile corpus and file names.
Each test asserts that SQL and every index agree afterwards, nothing committed is lost, nothing lands in a corpus
the user did not name, and the user is told what happened in one readable line with a telling exit status.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from sift.app.config import Settings
from sift.ingestion.ingest import IngestItem
from sift.ingestion.schema import Corpus
from tests.conftest import REPO
from tests.test_crash_safety import assert_sql_and_vectors_agree, open_sift, write_notes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TIMEOUT_S = 240


def child_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, "SIFT_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env["OMP_NUM_THREADS"] = "1"
    if settings.database_url:
        env["SIFT_DATABASE_URL"] = settings.database_url
    return env


def run_sift(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sift.app.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(settings),
        timeout=TIMEOUT_S,
    )


class Child:
    """A real process whose stdout lines are collected by a thread, so the test can wait for the n-th one."""

    def __init__(self, settings: Settings, *args: str, cwd: Path):
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(settings),
            cwd=cwd,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, done) -> None:
        """Until ``done(lines)`` holds; fails with the child's stderr if it ends or stalls first."""
        deadline = time.monotonic() + TIMEOUT_S
        while not done(self.lines):
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"the child stalled:\n{self.process.stderr.read()[-3000:]}")
            if line is None:
                pytest.fail(f"the child ended early ({self.process.wait()}):\n{self.process.stderr.read()[-3000:]}")
            self.lines.append(line)

    def finish(self) -> tuple[int, str]:
        """Exit status and stderr, with every stdout line collected."""
        returncode = self.process.wait(timeout=TIMEOUT_S)
        while (line := self._queue.get(timeout=TIMEOUT_S)) is not None:
            self.lines.append(line)
        return returncode, self.process.stderr.read()


def index_files(settings: Settings, corpus_id: int) -> list[str]:
    folder = settings.data_dir / "indexes"
    return sorted(p.name for p in folder.glob(f"*corpus-{corpus_id}.*")) if folder.exists() else []


# ---------------------------------------------------------------------------------------------- corpus identity


def test_a_corpus_deleted_mid_ingest_gets_nothing_and_nothing_reaches_another(any_db_settings, tmp_path, embedder):
    """`sift ingest` into "first" runs; another user deletes "first" and creates "second". Before: on SQLite the
    rest of the files were committed into "second" (it got the deleted corpus's id) while the user was told they were
    added to "first"; on PostgreSQL each file failed with a raw foreign-key error and the index file stayed forever."""
    settings = any_db_settings
    notes = tmp_path / "notes"
    write_notes(notes, 150)
    child = Child(settings, "-m", "sift.app.cli", "ingest", str(notes), "--corpus", "first", cwd=tmp_path)
    child.wait_for(lambda lines: sum(" added " in line for line in lines) >= 3)

    sift = open_sift(settings, embedder)
    first_id = sift.store.corpus("first").id
    sift.delete_corpus("first")
    note = IngestItem.from_bytes("second.txt", b"A note that belongs to the second corpus.")
    [second] = sift.ingest([note], "second")
    assert second.status == "added"
    returncode, _ = child.finish()

    assert returncode == 1, "files were refused: the command must not report success"
    refused = [line for line in child.lines if "corpus was deleted" in line]
    assert refused, child.lines[-5:]
    assert all(line.lstrip().startswith("failed") for line in refused)
    assert not [line for line in child.lines if "IntegrityError" in line or "INSERT" in line or "FOREIGN" in line]
    assert child.lines[-1].startswith("first:") and "failed" in child.lines[-1]

    reopened = open_sift(settings, embedder)
    assert sift.store.corpus("second").id != first_id, "a deleted corpus's identity was handed out again"
    assert [d.source for d in reopened.documents("second")] == ["second.txt"]
    assert "first" not in reopened.corpora()
    assert_sql_and_vectors_agree(reopened.store, "second")
    assert index_files(settings, first_id) == [], "the deleted corpus's index files were left behind"
    assert [h.source for h in reopened.search("keeper logbook", "second", k=5)] == ["second.txt"]


# ---------------------------------------------------------------------------------------------- first runs

OPENER = """
import sys, time
from pathlib import Path
from sift.app.config import Settings
from sift.app.pipeline import Sift

go, corpus = Path(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
sift = Sift(Settings())
sift.history  # the store's migrations, then the app's
print("created", sift.store.corpus(corpus, create=True).id, flush=True)
"""


def start_together(settings: Settings, tmp_path: Path, count: int, corpus: str) -> list[Child]:
    """``count`` processes that open the store and create ``corpus`` at the same moment."""
    script = tmp_path / "opener.py"
    script.write_text(OPENER)
    go = tmp_path / f"go-{corpus}"
    children = [Child(settings, str(script), str(go), corpus, cwd=tmp_path) for _ in range(count)]
    for child in children:
        child.wait_for(lambda lines: "ready" in lines)
    go.touch()
    return children


def test_processes_opening_a_fresh_store_together_all_succeed(any_db_settings, tmp_path):
    """Before: two of three processes failed with `table alembic_version already exists` (a 386-line traceback on
    PostgreSQL), and the losers of a corpus-name race got a raw IntegrityError."""
    settings = any_db_settings
    for round_, corpus in enumerate(["shared", "also-shared"]):  # a fresh store, then an existing one
        results = [child.finish() for child in start_together(settings, tmp_path, 4, corpus)]
        for returncode, stderr in results:
            assert returncode == 0, f"round {round_}: {stderr[-2000:]}"
    sift = open_sift(settings, None)
    assert sift.corpora() == ["also-shared", "shared"]


# ---------------------------------------------------------------------------------------------- kill -9

DELETER = """
import sys, time
from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ingestion import vectors

def committed_then_stall(*args):
    print("committed", flush=True)
    time.sleep(600)

if sys.argv[1] == "after-commit":
    vectors.remove_indexes = committed_then_stall
sift = Sift(Settings())
sift.store
print("deleting", flush=True)
sift.delete_corpus("first")
print("deleted", flush=True)
"""


@pytest.mark.parametrize("moment", ["after-commit", "early", "late"])
def test_kill_9_during_delete_leaves_the_corpus_whole_or_gone(moment, any_db_settings, tmp_path, embedder):
    settings = any_db_settings
    sift = open_sift(settings, embedder)
    notes = tmp_path / "notes"
    sift.ingest([IngestItem.from_path(p) for p in write_notes(notes, 12)], "first")
    sift.ingest([IngestItem.from_bytes("kept.txt", b"The kept corpus is about harbour pilots.")], "kept")
    first_id = sift.store.corpus("first").id
    sift.store.engine.dispose()

    script = tmp_path / "deleter.py"
    script.write_text(DELETER)
    child = Child(settings, str(script), moment, cwd=tmp_path)
    child.wait_for(lambda lines: ("committed" if moment == "after-commit" else "deleting") in lines)
    time.sleep({"after-commit": 0, "early": 0.005, "late": 0.05}[moment])
    child.process.send_signal(signal.SIGKILL)
    child.finish()

    reopened = open_sift(settings, embedder)
    if moment == "after-commit":
        assert "first" not in reopened.corpora()
    if "first" in reopened.corpora():
        assert len(reopened.documents("first")) == 12
        assert_sql_and_vectors_agree(reopened.store, "first")
    else:
        assert index_files(settings, first_id) == [], "a deleted corpus's index files outlived it"
    assert [d.source for d in reopened.documents("kept")] == ["kept.txt"]
    assert_sql_and_vectors_agree(reopened.store, "kept")


# ---------------------------------------------------------------------------------------------- exit statuses


def test_ingest_exit_status_and_json_say_which_files_failed(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    good, empty, binary = tmp_path / "good.txt", tmp_path / "empty.txt", tmp_path / "image.pdf"
    good.write_text("Fresnel lenses bend light.")
    empty.write_bytes(b"")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)

    some = run_sift(settings, "ingest", str(good), str(empty), "--corpus", "c", "--json")
    assert some.returncode == 1, "a file failed: the exit status must say so"
    report = json.loads(some.stdout)
    assert report["failed"] == ["empty.txt"]
    assert {f["source"]: f["status"] for f in report["files"]} == {"good.txt": "added", "empty.txt": "failed"}

    every = run_sift(settings, "ingest", str(empty), str(binary), "--corpus", "c")
    assert every.returncode == 1, every.stdout
    assert "c: 0 added, 0 replaced, 0 unchanged, 2 failed" in every.stdout

    clean = run_sift(settings, "ingest", str(good), "--corpus", "c", "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["failed"] == []


# ---------------------------------------------------------------------------------------------- names


def test_corpus_names_are_validated_alike_on_every_backend(any_db_settings, tmp_path):
    settings = any_db_settings
    note = tmp_path / "note.txt"
    note.write_text("Tides follow the moon.")
    for name, words in [
        ("x" * 10_000, "at most"),
        ("bell\x07rock", "control"),
        ("left\u202eright", "control"),
        ("   ", "needs a name"),
    ]:
        result = run_sift(settings, "ingest", str(note), "--corpus", name)
        assert result.returncode == 1
        assert result.stderr.startswith("error: ") and words in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

    decomposed, composed = unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")
    assert run_sift(settings, "ingest", str(note), "--corpus", decomposed).returncode == 0
    listed = run_sift(settings, "docs", "--corpus", composed, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["source"] for d in json.loads(listed.stdout)["documents"]] == ["note.txt"]
    assert open_sift(settings, None).corpora() == [composed]


def test_files_whose_names_differ_only_in_normalisation_do_not_replace_each_other(tmp_path):
    """Before: two files on disk, precomposed and decomposed "café.txt", silently replaced each other."""
    settings = Settings(data_dir=tmp_path / "data")
    folder = tmp_path / "menu"
    folder.mkdir()
    (folder / unicodedata.normalize("NFC", "café.txt")).write_text("The café opens at dawn for the keepers.")
    (folder / unicodedata.normalize("NFD", "café.txt")).write_text("A second file about the harbour café.")
    assert len(list(folder.iterdir())) == 2

    result = run_sift(settings, "ingest", str(folder), "--corpus", "c", "--json")
    statuses = sorted((f["status"], f["reason"] or "") for f in json.loads(result.stdout)["files"])
    assert [status for status, _ in statuses] == ["added", "failed"]
    assert "same name" in statuses[1][1]
    assert result.returncode == 1


def test_database_errors_read_as_one_line(any_db_settings):
    from sift.ingestion.store import readable_database_error

    store = open_sift(any_db_settings, None).store
    store.corpus("taken", create=True)
    with store.session() as session:
        session.add(Corpus(name="taken", index_version=0))
        with pytest.raises(IntegrityError) as caught:
            session.commit()
    line = readable_database_error(caught.value)
    assert "\n" not in line and "INSERT" not in line and "[SQL" not in line
    assert "database" in line.lower() and "corpora" in line and len(line) < 300
