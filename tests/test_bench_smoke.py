"""The benchmark runs end to end at tiny sizes and prints one JSON object with every figure (no timing thresholds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Real

from conftest import REPO


def numbers(tree, path=""):
    """Every number in a JSON tree, with its dotted path."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from numbers(value, f"{path}.{key}")
    elif isinstance(tree, Real) and not isinstance(tree, bool):
        yield path, tree


def test_bench_prints_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "ingest_search.py"),
            "--docs",
            "2",
            "--sizes",
            "2000",
            "--queries",
            "20",
            "--llama-queries",
            "5",
            "--pgvector",  # pgvector beside FAISS too, on pgserver's PostgreSQL
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert json.loads(out.read_text()) == report

    for key in ("platform", "cpu_count", "cpu_model", "torch", "faiss", "sentence_transformers", "device"):
        assert report["machine"][key], key
    assert report["settings"]["index_type"] == "flat"
    assert report["corpus"]["documents"] == 2 and report["corpus"]["chunks"] > 0

    embedding = report["embedding"]
    for key in ("pipeline_chunks_per_s", "raw_chunks_per_s", "pipeline_over_raw", "pipeline_docs_per_s"):
        assert embedding[key] > 0, key

    search = report["search"]
    for kinds in (search["synthetic"]["2000"], search["real_corpus_faiss"]):
        assert set(kinds) == {"flat", "ivf", "hnsw"}
        assert kinds["flat"]["recall_at_10"] == 1.0
    assert search["real_corpus_end_to_end"]["p50_ms"] > 0

    baseline = report["llama_index_baseline"]
    assert baseline["ingest"]["chunks_per_s"] > 0
    assert baseline["real_corpus_end_to_end"]["p95_ms"] > 0
    assert baseline["synthetic"]["2000"]["queries"] == 5
    assert {"ingest_chunks_per_s", "end_to_end_p50", "end_to_end_p95"} <= set(baseline["sift_over_llama_index"])

    pgvector = report["pgvector"]
    assert set(pgvector["ingest"]) == {"faiss", "pgvector"}
    assert pgvector["ingest"]["faiss"]["chunks"] == pgvector["ingest"]["pgvector"]["chunks"] > 0
    assert pgvector["synthetic"]["2000"]["pgvector"]["recall_at_10"] > 0.9
    assert set(pgvector["lexical"]["2000"]) == {"bm25s_rebuild_s", "postgres_fts", "bm25s"}

    figures = [
        (path, value)
        for section in ("embedding", "search", "llama_index_baseline", "pgvector")
        for path, value in numbers(report[section], section)
    ]
    assert len(figures) > 50
    for path, value in figures:
        if path.endswith("recall_at_10"):
            assert 0 <= value <= 1, path
        else:
            assert value > 0, path
