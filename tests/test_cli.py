"""The sift command line, run as a user runs it: a real subprocess over a real data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from sift.app.cli import cli
from sift.app.generation import UNCITED
from sift.app.pipeline import Answer, Sift
from tests.conftest import SAMPLE_CORPUS


def sift(
    data_dir, *args, check=True, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "SIFT_DATA_DIR": str(data_dir), **(env or {})}
    process = subprocess.run(
        [sys.executable, "-m", "sift.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        timeout=600,
        cwd=SAMPLE_CORPUS.parent,
    )
    if check and process.returncode != 0:
        raise AssertionError(f"sift {' '.join(args)} failed ({process.returncode}):\n{process.stderr}")
    return process


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    ingested = sift(data_dir, "ingest", str(SAMPLE_CORPUS), "--corpus", "lights", "--json")
    files = json.loads(ingested.stdout)["files"]
    assert sorted(f["status"] for f in files) == ["added"] * 6
    return data_dir


def test_ingest_prints_progress_and_results(data_dir, tmp_path):
    note = tmp_path / "note.md"
    note.write_text("# Harbour lights\nRed to port, green to starboard.")
    first = sift(data_dir, "ingest", str(note), str(SAMPLE_CORPUS), "--corpus", "lights")
    assert "added  note.md (1 passages)" in first.stdout
    assert "unchanged  sample_corpus/light-characteristics.md" in first.stdout
    assert "lights: 1 added, 0 replaced, 6 unchanged, 0 failed" in first.stdout
    assert "file" in first.stderr  # the progress bar


def test_docs_json(data_dir):
    listing = json.loads(sift(data_dir, "docs", "--corpus", "lights", "--json").stdout)
    assert listing["corpus"] == "lights"
    doc = next(d for d in listing["documents"] if d["source"].endswith("history-of-lighthouses.md"))
    assert set(doc) == {
        "id",
        "source",
        "title",
        "media_type",
        "size_bytes",
        "sha256",
        "document_date",
        "chunks",
        "created_at",
        "updated_at",
    }
    assert doc["document_date"].startswith("2024-03-01") and doc["chunks"] > 0


@pytest.mark.parametrize("retrieval", ["lexical", "hybrid"])
def test_search_by_retrieval_mode(data_dir, retrieval):
    found = json.loads(
        sift(
            data_dir, "search", "Grace Darling", "--corpus", "lights", "--retrieval", retrieval, "-k", "3", "--json"
        ).stdout
    )
    top = found["candidates"][0]
    assert top["source"].endswith("lighthouse-keepers-daily-life.txt") and "Grace Darling" in top["text"]
    assert all(c["dense"] is not None and c["lexical"] is not None for c in found["candidates"])
    assert top["lexical"] > 0
    if retrieval == "lexical":  # ranked by BM25 itself
        assert [c["score"] for c in found["candidates"]] == [c["lexical"] for c in found["candidates"]]
    wrong = sift(data_dir, "search", "x", "--corpus", "lights", "--retrieval", "sparse", check=False)
    assert wrong.returncode == 1 and "Unknown retrieval mode 'sparse'" in wrong.stderr


def test_search_and_ask_json(data_dir):
    found = json.loads(
        sift(data_dir, "search", "Who was Grace Darling?", "--corpus", "lights", "-k", "5", "--json").stdout
    )
    assert len(found["candidates"]) == 5
    top = found["candidates"][0]
    assert top["source"].endswith("lighthouse-keepers-daily-life.txt") and top["rank"] == 1
    assert set(top) >= {"chunk_id", "text", "document_id", "source", "score", "rank", "title", "document_date"}

    answer = json.loads(
        sift(data_dir, "ask", "Who designed the Pharos of Alexandria?", "--corpus", "lights", "--json").stdout
    )
    assert answer["question"].startswith("Who designed") and answer["corpus"] == "lights"
    assert set(answer) == {
        "question",
        "standalone_question",
        "followup",
        "verified",
        "unsupported",
        "answer_style",
        "answers_question",
        "model_summary",
        "corpus",
        "answer",
        "answered",
        "citations",
        "rerank",
        "trace_id",
        "timings_ms",
    }
    assert answer["answered"] and "Pharos" in answer["answer"] and "[1]" in answer["answer"]
    assert answer["citations"][0]["number"] == 1
    assert answer["citations"][0]["source"].endswith("history-of-lighthouses.md")
    trace = answer["rerank"]
    assert trace["mode"] == "relevance" and trace["strategy"] == "logits"  # the defaults
    assert sorted(c["final_rank"] for c in trace["candidates"]) == list(range(1, len(trace["candidates"]) + 1))


def test_delete_and_errors(data_dir, tmp_path):
    scratch = tmp_path / "data"
    sift(scratch, "ingest", str(SAMPLE_CORPUS / "lighthouse-keepers-daily-life.txt"), "--corpus", "tmp")
    doc_id = json.loads(sift(scratch, "docs", "--corpus", "tmp", "--json").stdout)["documents"][0]["id"]
    assert "Deleted document" in sift(scratch, "delete", "--corpus", "tmp", "--document", str(doc_id)).stdout
    assert json.loads(sift(scratch, "docs", "--corpus", "tmp", "--json").stdout)["documents"] == []
    assert "Deleted corpus tmp" in sift(scratch, "delete", "--corpus", "tmp", "--all").stdout

    missing = sift(scratch, "search", "x", "--corpus", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: No corpus named 'nope'") and "Traceback" not in missing.stderr
    both = sift(scratch, "delete", "--corpus", "tmp", check=False)
    assert both.returncode != 0 and "exactly one of --document" in both.stderr


def test_a_long_question_is_refused_in_one_line(data_dir):
    started = time.perf_counter()
    refused = sift(data_dir, "ask", "Who designed the Pharos? " * 2000, "--corpus", "lights", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        "error: The question is 50,000 characters long; the limit is 2,000 (SIFT_MAX_QUESTION_CHARS).\n"
    )
    assert time.perf_counter() - started < 60  # no model is loaded for it (it took over 5 minutes before)
    allowed = sift(
        data_dir,
        "ask",
        "Pharos? " * 20,
        "--corpus",
        "lights",
        "--mode",
        "none",
        "--json",
        env={"SIFT_MAX_QUESTION_CHARS": "160"},
    )
    assert json.loads(allowed.stdout)["question"] == "Pharos? " * 20


def test_an_answer_without_citations_says_so(monkeypatch, tmp_path):
    # The model's words are given here: which question makes the real model cite nothing cannot be foreseen.
    def uncited(self, question, corpus, history=None, **options):
        yield Answer(question, corpus, "Bananas grow in bunches.", answered=False)

    monkeypatch.setattr(Sift, "ask_stream", uncited)
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path))  # where the command's log goes
    shown = CliRunner().invoke(cli, ["ask", "Anything?", "--corpus", "lights"])
    assert shown.exit_code == 0
    assert shown.stdout == f"Bananas grow in bunches.\n{UNCITED}\n"


def test_sample_command_only_fills_an_empty_store(tmp_path):
    data_dir = tmp_path / "data"
    assert "Ingested the sample corpus: 6 added" in sift(data_dir, "sample").stdout
    assert "already has corpora: sample" in sift(data_dir, "sample").stdout
