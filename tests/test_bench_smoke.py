"""The benchmarks run end to end at tiny sizes and print one JSON object with every figure (no timing thresholds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Real
from pathlib import Path

import pytest

from conftest import REPO


def numbers(tree, path=""):
    """Every number in a JSON tree, with its dotted path."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from numbers(value, f"{path}.{key}")
    elif isinstance(tree, Real) and not isinstance(tree, bool):
        yield path, tree


def run_bench(script: str, out: Path, *args: str, timeout: float) -> dict:
    """Run a bench/ script with ``--out``; its printed JSON report, checked to be the one it wrote."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert json.loads(out.read_text()) == report
    return report


def test_bench_prints_every_figure(tmp_path):
    args = ("--docs", "2", "--sizes", "2000", "--queries", "20", "--llama-queries", "5", "--pgvector")
    report = run_bench("ingest_search.py", tmp_path / "bench.json", *args, timeout=600)

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


def test_latency_bench_prints_first_token_and_answer_times_idle_and_beside_an_ingestion(tmp_path):
    report = run_bench("latency.py", tmp_path / "latency.json", "--quick", timeout=1200)
    for key in ("cpu_count", "cpu_model", "load_average_start", "load_average_end"):
        assert report["machine"][key], key

    runs = {(r["corpus"], r["condition"], r["budget_s"]): r for r in report["runs"]}
    assert set(runs) == {(c, s, b) for c in ("sample", "cmu") for s in ("idle", "ingesting") for b in (0.0, 1.0)}
    for run in runs.values():
        assert run["questions"] == 1
        assert 0 < run["first_token"]["p50"] <= run["answer"]["p50"], run
        assert run["first_token"]["p50"] <= run["first_token"]["p95"], run
        assert run["rerank"]["p50"] > 0 and run["llm_scored"] >= 1, run
    # Without a budget the LLM scores the cascade's llm_k (the sample corpus has fewer passages than that).
    assert runs["cmu", "idle", 0.0]["llm_scored"] == report["settings"]["rerank_llm_k"]
    assert set(report["rerank_slowdown"]) == {"0.0", "1.0"}
    assert all(ratio > 0 for ratio in report["rerank_slowdown"].values())
    assert report["chosen_budget"]["auto"] in (None, 1.0)


def test_cpu_inference_bench_compares_every_precision(tmp_path, datasets):
    report = run_bench(
        "cpu_inference.py", tmp_path / "cpu.json", "--quick", "--trec", str(datasets / "trec-dl19"), timeout=900
    )
    for key in ("cpu_count", "cpu_model", "torch", "quantized_engine", "load_average_before"):
        assert report["machine"][key], key
    assert report["settings"]["queries"] == 2 and report["settings"]["candidates"] == 5
    variants = report["variants"]
    assert set(variants) == {"fp32", "int8"}
    assert variants["fp32"]["runs_at"] == "fp32" and variants["int8"]["runs_at"] == "int8"
    assert variants["fp32"]["prefill_over_fp32"] == 1.0 and variants["fp32"]["kendall_tau_order_vs_fp32"] == 1.0
    for figures in variants.values():
        for key in ("prefill_tokens_per_s", "s_per_query", "s_per_query_median", "rerank_over_fp32"):
            assert figures[key] > 0, key
        assert 0 < figures["ndcg_at_10"] <= 1
        assert -1 <= figures["kendall_tau_relevance_vs_fp32"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("vector_store", ["faiss", "pgvector"])
def test_load_test_runs_two_processes_over_postgresql_and_loses_nothing(tmp_path, datasets, request, vector_store):
    """bench/load_test.py --quick, an asker and an uploader at once, with auth on over one PostgreSQL database: with
    FAISS, one sift serve with 2 HTTP workers; with pgvector, 2 sift serve processes of one worker each (the upload
    sent to one, its job followed on the other). Every request answered, the upload stored once, every passage's
    vector in the store, the servers and their ingestion worker stopped."""
    documents = str(datasets / "dbpedia-entity-5k" / "corpus.jsonl")
    if vector_store == "pgvector":
        server = request.getfixturevalue("pgvector_server")
        postgres = server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
        layout = ["--servers", "2", "--workers", "1", "--vector-store", "pgvector"]
    else:
        postgres, layout = request.getfixturevalue("postgres_server"), ["--workers", "2"]
    args = ["--quick", "--documents", documents, "--postgres", postgres, *layout]
    report = run_bench("load_test.py", tmp_path / "load.json", *args, timeout=800)

    settings = report["settings"]
    assert settings["database"] == "postgresql" and settings["vector_store"] == vector_store
    assert settings["servers"] * settings["workers"] == 2
    # Each worker process loaded the models once, at start-up.
    assert len({worker["pid"] for worker in report["workers_ready"]}) == 2
    assert all(worker["models_load_s"] > 0 for worker in report["workers_ready"])

    assert report["errors"] == {} and report["requests"] > 0 and report["requests_per_s"] > 0
    assert {"POST /ask", "POST /corpora/{name}/uploads", "GET /jobs/{id}"} <= set(report["endpoints"])
    for endpoint in report["endpoints"].values():
        assert endpoint["count"] > 0 and 0 < endpoint["p50_s"] <= endpoint["p95_s"] <= endpoint["max_s"]

    integrity = report["integrity"]
    assert integrity["uploaded_files"] == 2 and integrity["problems"] == []
    assert integrity["lost_documents"] == integrity["duplicated_documents"] == integrity["stuck_jobs"] == 0
    assert integrity["stored_documents"] == 2 + len(list((REPO / "sample_corpus").iterdir()))
    assert integrity["vectors"] == integrity["passages"] > 0
    assert integrity["job_worker_stopped"]
