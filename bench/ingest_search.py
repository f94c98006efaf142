"""Ingest and search benchmark: Sift against the bare embedding model and llama-index, all in one run.

    .venv/bin/python bench/ingest_search.py        # the first step of `make bench` (bench/suite.sh)
    # ~6.5 CPU-minutes: 12 min wall on 2 cores shared with other work (load 5-6), less on idle ones
    .venv/bin/python bench/ingest_search.py --docs 20 --sizes 2000 --queries 20 --out /tmp/bench.json

Everything is written to a temporary data directory over SQLite (./data and any SIFT_DATABASE_URL are left alone);
other SIFT_* settings and sift.toml apply. Prints one JSON object (also written to --out):

machine    platform, CPUs and CPU model, load average at start and end (other work on the machine skews every
           timing), library versions, torch/FAISS threads, device.
settings   the Sift settings that matter here and this benchmark's parameters.
corpus     the --docs documents, files in the temporary directory: one in five a CMU WikiQA Wikipedia article
           (.txt, ~37 chunks; 60 at most), the others DBpedia entity abstracts (.md, one chunk each). Queries are
           the WikiQA questions. Both read from ../shared/datasets beside the checkout.
embedding  pipeline_*: wall time of Sift.ingest_paths over the documents' folder (read, load, chunk, embed,
           write SQL rows and the FAISS index), model loaded and warmed beforehand, as chunks/s and docs/s.
           raw_chunks_per_s: the very same chunk texts through SentenceTransformer.encode in one call (same batch
           size, normalised). pipeline_over_raw: pipeline / raw chunks/s; 1.0 would be no overhead. It includes
           embedding document by document (smaller, less evenly padded batches than one sorted call).
search     k=10 everywhere. synthetic.<size>.<kind>: one-query index.search latency p50/p95 (ms) over <size>
           normalised 384-d vectors, for each index kind built by ingestion.vectors.build_index (build_s), and
           recall_at_10 against flat (exact). The vectors are clustered (size/10 random unit "topics" plus noise
           of the same norm, renormalised; queries drawn alike): pure isotropic noise would be the worst case for
           ivf/hnsw and unlike text embeddings. real_corpus_faiss: the same on the ingested chunks' embeddings
           and the embedded questions. real_corpus_end_to_end: DenseRetriever.search p50/p95 (query embedding +
           FAISS + SQL fetch) over the ingested corpus, with the configured index_type.
           lexical.<size>: the BM25 index (ingestion.lexical, bm25s) over <size> passages, the DBpedia abstracts
           repeated with a distinct token each (the latency depends on the vocabulary and the postings, not on
           meaning): build_s, and one-query LexicalIndex.search p50/p95 for the WikiQA questions, beside the flat
           FAISS index's p50/p95 at the same size (dense_flat_*; query embedding excluded from both).
llama_index_baseline
           llama-index's default in-memory VectorStoreIndex (SimpleVectorStore) with the same SentenceTransformer
           (wrapped below; same batch size, normalised). ingest: built from the same chunk texts (no loading or
           chunking, so the comparison favours it). real_corpus_end_to_end: retriever.retrieve(question).
           synthetic.<size>: TextNodes carrying the same vectors (build timed from the matrix to a queryable
           index, as build_s is for Sift), then vector_store.query p50/p95 over the first --llama-queries queries
           (it scans in Python: ~2 s a query at 100k), and its recall_at_10 against flat.
           sift_over_llama_index: Sift / llama-index, for throughput (> 1: Sift faster) and for latency
           (< 1: Sift faster).
pgvector   with --pgvector (or --pgvector-only, which skips everything above): the two vector stores side by side
           in this run, over PostgreSQL from the pgserver wheel (or --pgvector-url) and SQLite in the temporary
           directory. ingest: Sift.ingest_paths of the same --docs into each (chunks/s; the embedding dominates).
           synthetic.<size>: the sweep's clustered vectors written through Store.write_document, 1,000 passages a
           document (write_vectors_per_s: SQL rows + FAISS flat file, or SQL rows + pgvector rows under the HNSW
           index, maintained as rows arrive); one-query Store.vector_hits p50/p95 for both, taking turns on each
           query; recall_at_10 of pgvector's HNSW (the settings' m, ef_construction, ef_search) against exact
           search. lexical.<size>: PostgreSQL full-text search (GIN index, ts_rank over to_tsvector('english'))
           beside bm25s rebuilt from SQL as a pgvector-mode process does (rebuild_s, then search p50/p95).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import llama_index.core
import numpy as np
import sentence_transformers
import torch
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import VectorStoreQuery
from pydantic import PrivateAttr
from sqlalchemy import select

from sift.app.config import Settings
from sift.app.pipeline import Sift, open_store
from sift.ingestion.lexical import LexicalIndex
from sift.ingestion.schema import ChunkRow
from sift.ingestion.store import Chunk, DocumentMeta, Store
from sift.ingestion.vectors import build_index
from sift.rerank.evaluation import cpu_model

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"  # ../shared beside the checkout
WIKIQA = DATASETS / "cmu-wikiqa-s10"
DBPEDIA = DATASETS / "dbpedia-entity-5k" / "corpus.jsonl"
CORPUS = "bench"
K = 10
DIM = 384
KINDS = ("flat", "ivf", "hnsw")


class SentenceTransformerEmbedding(BaseEmbedding):
    """A SentenceTransformer as a llama-index embedding model, normalised like Sift's."""

    _model: Any = PrivateAttr()

    def __init__(self, model, batch_size: int):
        super().__init__(model_name="sentence-transformer", embed_batch_size=batch_size)
        self._model = model

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(
            texts,
            batch_size=self.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


# ---------------------------------------------------------------------------------------------- helpers


def machine(settings: Settings) -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_start": load_average(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "sentence_transformers": sentence_transformers.__version__,
        "llama_index_core": llama_index.core.__version__,
        "numpy": np.__version__,
        "device": settings.resolved_device(),
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(report: dict, out: Path | None) -> None:
    """A bench's report as JSON: printed, and also written to ``out`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def latency(fns: dict, items) -> dict:
    """p50/p95 in ms of each function over each item, after one untimed warm-up call each. The functions take
    turns on every item, so a change in the machine's load affects them alike."""
    for fn in fns.values():
        fn(items[0])
    times: dict = {name: [] for name in fns}
    for item in items:
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(item)
            times[name].append(time.perf_counter() - start)
    return {
        name: dict(zip(("p50_ms", "p95_ms"), map(sig, np.percentile(np.array(t) * 1000, [50, 95])), strict=False))
        for name, t in times.items()
    }


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=False)])), 4)


def normalised(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(rng: np.random.Generator, topics: np.ndarray, n: int) -> np.ndarray:
    noise = rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM)
    return normalised(topics[rng.integers(0, len(topics), n)] + noise)


def sig(x: float) -> float:
    """x to four significant figures."""
    return float(f"{x:.4g}")


def ratio(a: float, b: float) -> float:
    return sig(a / b)


# ---------------------------------------------------------------------------------------------- data


def write_documents(folder: Path, count: int) -> dict:
    """``count`` files in ``folder``: one in five a WikiQA article (~37 chunks), the others DBpedia abstracts (one)."""
    folder.mkdir(parents=True)
    wikiqa = sorted(WIKIQA.glob("data/set*/a*.txt"), key=lambda p: (p.parent.name, int(p.stem[1:])))
    articles = wikiqa[: -(-count // 5)]
    for path in articles:
        (folder / f"wikiqa-{path.parent.name}-{path.name}").write_bytes(path.read_bytes())
    with DBPEDIA.open(encoding="utf-8") as lines:
        abstracts = [json.loads(line) for line, _ in zip(lines, range(count - len(articles)), strict=False)]
    for n, entity in enumerate(abstracts):
        (folder / f"dbpedia-{n:05d}.md").write_text(f"# {entity['title']}\n\n{entity['text']}\n", encoding="utf-8")
    return {
        "documents": count,
        "wikiqa_articles": len(articles),
        "dbpedia_abstracts": len(abstracts),
        "bytes": sum(p.stat().st_size for p in folder.iterdir()),
    }


def questions(count: int) -> list[str]:
    with (WIKIQA / "question_answer_pairs.txt").open(encoding="latin-1", newline="") as handle:
        distinct = list(
            dict.fromkeys(
                row["Question"].strip() for row in csv.DictReader(handle, delimiter="\t") if row["Question"].strip()
            )
        )
    return (distinct * (count // len(distinct) + 1))[:count]


# ---------------------------------------------------------------------------------------------- measurements


def faiss_kinds(vectors: np.ndarray, queries: np.ndarray) -> tuple[dict, np.ndarray]:
    """Build each index kind over ``vectors``; one-query search latency and recall@10 against flat."""
    ids = np.arange(len(vectors), dtype=np.int64)
    results, exact = {}, None
    for kind in KINDS:
        log(f"{kind} index over {len(vectors)} vectors")
        index, build_s = timed(lambda kind=kind: build_index(ids, vectors, DIM, kind))
        found = index.search(queries, K)[1]
        exact = found if exact is None else exact
        timings = latency({kind: lambda q, index=index: index.search(q[None], K)}, queries)[kind]
        results[kind] = {"build_s": sig(build_s), **timings, "recall_at_10": recall(found, exact)}
    return results, exact


def lexical_sweep(sizes: list[int], asked: list[str], synthetic: dict) -> dict:
    """The BM25 index at each size: build time and one-query search latency, beside flat FAISS at that size."""
    with DBPEDIA.open(encoding="utf-8") as lines:
        abstracts = [f"{entry['title']}. {entry['text']}" for entry in map(json.loads, lines)]
    found = {}
    for size in sizes:
        texts = [f"{abstracts[n % len(abstracts)]} passage{n}" for n in range(size)]
        log(f"BM25 index over {size:,} passages")
        index, build_s = timed(lambda texts=texts: LexicalIndex.build(np.arange(len(texts)), texts))
        timings = latency({"bm25": lambda q, index=index: index.search(q, K)}, asked)["bm25"]
        flat = synthetic[str(size)]["flat"]
        found[str(size)] = {
            "build_s": sig(build_s),
            **timings,
            "dense_flat_p50_ms": flat["p50_ms"],
            "dense_flat_p95_ms": flat["p95_ms"],
            "lexical_over_dense_p95": ratio(timings["p95_ms"], flat["p95_ms"]),
        }
    return found


def llama_synthetic(vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray, embed_model) -> dict:
    def build():
        nodes = [TextNode(id_=str(i), text=f"chunk {i}", embedding=row) for i, row in enumerate(vectors.tolist())]
        return VectorStoreIndex(nodes, embed_model=embed_model)

    log(f"llama-index over {len(vectors)} vectors")
    index, build_s = timed(build)
    query_lists = queries.tolist()
    found = np.zeros((len(query_lists), K), dtype=np.int64)

    def search(i: int) -> None:
        result = index.vector_store.query(VectorStoreQuery(query_embedding=query_lists[i], similarity_top_k=K))
        found[i] = [int(n) for n in result.ids]

    return {
        "build_s": sig(build_s),
        "vectors_per_s": sig(len(vectors) / build_s),
        **latency({"llama": search}, range(len(query_lists)))["llama"],
        "queries": len(query_lists),
        "recall_at_10": recall(found, exact),
    }


def embedding(sift: Sift, folder: Path) -> tuple[dict, list[str], np.ndarray]:
    """Sift's ingest of ``folder``, then the bare model on the chunk texts it stored."""
    log("ingesting with Sift, then encoding with the bare model")
    results, ingest_s = timed(lambda: sift.ingest_paths([folder], CORPUS))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise SystemExit(f"ingest failed: {failed[:3]}")
    with sift.store.session() as session:
        texts = list(session.scalars(select(ChunkRow.text).order_by(ChunkRow.id)))
    vectors, raw_s = timed(
        lambda: sift.embedder.encode(
            texts,
            batch_size=sift.settings.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    )
    pipeline, raw = len(texts) / ingest_s, len(texts) / raw_s
    return (
        {
            "chunks": len(texts),
            "pipeline_s": sig(ingest_s),
            "pipeline_chunks_per_s": sig(pipeline),
            "pipeline_docs_per_s": sig(len(results) / ingest_s),
            "raw_s": sig(raw_s),
            "raw_chunks_per_s": sig(raw),
            "pipeline_over_raw": ratio(pipeline, raw),
        },
        texts,
        vectors.astype(np.float32),
    )


def sweep(sizes: list[int], queries: int, llama_queries: int, seed: int, embed_model) -> tuple[dict, dict]:
    """Sift's index kinds and llama-index over synthetic vectors of each size."""
    rng = np.random.default_rng(seed)
    sift, llama = {}, {}
    for size in sizes:
        topics = normalised(rng.standard_normal((max(1, size // 10), DIM), dtype=np.float32))
        vectors, asked = clustered_vectors(rng, topics, size), clustered_vectors(rng, topics, queries)
        kinds, exact = faiss_kinds(vectors, asked)
        baseline = llama_synthetic(vectors, asked[:llama_queries], exact, embed_model)
        baseline["sift_over_llama_index"] = {
            "build_vectors_per_s_flat": ratio(baseline["build_s"], kinds["flat"]["build_s"]),
            **{
                f"{p}_{kind}": ratio(kinds[kind][f"{p}_ms"], baseline[f"{p}_ms"])
                for p in ("p50", "p95")
                for kind in KINDS
            },
        }
        sift[str(size)], llama[str(size)] = kinds, baseline
    return sift, llama


# ---------------------------------------------------------------------------------------------- pgvector


def pgvector_server(folder: Path, url: str | None):
    """(create-database function, stop function): --pgvector-url's server, else a pgserver in ``folder`` (stopped by
    the stop function, before ``folder`` is removed: pgserver would otherwise outlive its deleted data folder)."""
    from sqlalchemy import create_engine, text

    if url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")

        def create(name: str) -> str:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            return url.rsplit("/", 1)[0] + f"/{name}"

        return create, admin.dispose
    import pgserver

    server = pgserver.get_server(folder / "pgdata", cleanup_mode="delete")

    def create(name: str) -> str:
        server.psql(f'CREATE DATABASE "{name}";')
        return server.get_uri(name).replace("postgresql://", "postgresql+psycopg://", 1)

    return create, server.cleanup


def write_synthetic(store: Store, corpus: str, vectors: np.ndarray, texts: list[str] | None = None) -> float:
    """The vectors as passages of documents of 1,000, through Store.write_document; returns the seconds taken."""
    corpus_id = store.corpus(corpus, create=True).id
    start = time.perf_counter()
    for first in range(0, len(vectors), 1000):
        rows = vectors[first : first + 1000]
        chunks = [
            Chunk(n, texts[first + n] if texts else f"passage {first + n}", 0, 1, 1, row) for n, row in enumerate(rows)
        ]
        meta = DocumentMeta(f"doc-{first}", f"{first:064x}", "text/plain", 1, None, None)
        store.write_document(corpus_id, meta, chunks)
    store.save_indexes()
    return time.perf_counter() - start


def full_text_search(store: Store, corpus_id: int, query: str) -> list:
    from sqlalchemy import text

    with store.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT c.id, ts_rank(to_tsvector('english', c.text), q) AS r FROM chunks c "
                "JOIN documents d ON d.id = c.document_id, websearch_to_tsquery('english', :q) q "
                "WHERE d.corpus_id = :corpus AND to_tsvector('english', c.text) @@ q ORDER BY r DESC LIMIT :k"
            ),
            {"q": query, "corpus": corpus_id, "k": K},
        ).all()


def pgvector_side_by_side(args, folder: Path, settings: Settings, asked: list[str]) -> dict:
    """FAISS + SQLite and pgvector + PostgreSQL in this run: ingest, write throughput, latency, recall, lexical."""
    create, stop = pgvector_server(folder, args.pgvector_url)
    try:
        return side_by_side(args, folder, settings, asked, create)
    finally:
        stop()


def side_by_side(args, folder: Path, settings: Settings, asked: list[str], create) -> dict:
    """The measurements, each store pair in fresh databases that ``create`` makes."""
    found: dict = {
        "hnsw": {
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
            "ef_search": settings.hnsw_ef_search,
        }
    }

    def store_pair(name: str) -> tuple[Store, Store]:
        faiss_settings = settings.model_copy(update={"data_dir": folder / f"faiss-{name}", "vector_store": "faiss"})
        pg_settings = settings.model_copy(
            update={
                "data_dir": folder / f"pg-{name}",
                "database_url": create(f"bench_{name}"),
                "vector_store": "pgvector",
            }
        )
        return open_store(faiss_settings), open_store(pg_settings)

    if args.docs:
        log("ingest into FAISS + SQLite and into pgvector")
        docs = folder / "pg-docs"
        write_documents(docs, args.docs)
        ingest = {}
        model = Sift(settings).embedder
        for kind, store in zip(("faiss", "pgvector"), store_pair("ingest"), strict=True):
            sift = Sift(settings)
            sift.__dict__.update(store=store, embedder=model)
            _, seconds = timed(lambda sift=sift: sift.ingest_paths([docs], CORPUS))
            chunks = len(store.chunk_ids(store.corpus(CORPUS).id))
            ingest[kind] = {"chunks": chunks, "s": sig(seconds), "chunks_per_s": sig(chunks / seconds)}
        found["ingest"] = ingest
        log(f"ingest: {json.dumps(ingest)}")

    rng = np.random.default_rng(args.seed)  # the sweep's vectors and queries, drawn in the same order
    found["synthetic"], found["lexical"] = {}, {}
    with DBPEDIA.open(encoding="utf-8") as lines:
        abstracts = [f"{entry['title']}. {entry['text']}" for entry in map(json.loads, lines)]
    for size in args.sizes:
        topics = normalised(rng.standard_normal((max(1, size // 10), DIM), dtype=np.float32))
        vectors, queries = clustered_vectors(rng, topics, size), clustered_vectors(rng, topics, args.queries)
        texts = [f"{abstracts[n % len(abstracts)]} passage{n}" for n in range(size)]
        faiss_store, pg_store = store_pair(f"s{size}")
        found["synthetic"][str(size)], found["lexical"][str(size)] = stores_at_size(
            faiss_store, pg_store, vectors, texts, queries, asked
        )
        # a size's figures as soon as they are known: the larger sizes may be stopped on a slow machine
        log(f"{size:,}: {json.dumps({'dense': found['synthetic'][str(size)], 'lexical': found['lexical'][str(size)]})}")
        faiss_store.engine.dispose()
        pg_store.engine.dispose()
    return found


def stores_at_size(
    faiss_store: Store, pg_store: Store, vectors: np.ndarray, texts: list[str], queries: np.ndarray, asked: list[str]
) -> tuple[dict, dict]:
    """Both stores over the same passages: write throughput, dense latency and recall; then the lexical choices."""
    from sqlalchemy import text

    stores = {"faiss": faiss_store, "pgvector": pg_store}
    dense = {}
    for kind, store in stores.items():
        log(f"{kind}: writing {len(vectors):,} passages")
        seconds = write_synthetic(store, "synthetic", vectors, texts)
        dense[kind] = {"write_s": sig(seconds), "write_vectors_per_s": sig(len(vectors) / seconds)}
    ids = {kind: store.corpus("synthetic").id for kind, store in stores.items()}

    def searcher(kind: str):
        return lambda q: stores[kind].vector_hits(ids[kind], q[None], K)

    timings = latency({kind: searcher(kind) for kind in stores}, queries)
    # the two fresh stores number their passages alike (1, 2, ... in write order), so their ids compare directly
    exact, hnsw = (np.array([[i for i, _ in searcher(kind)(q)] for q in queries]) for kind in stores)
    for kind in stores:
        dense[kind].update(timings[kind])
    dense["pgvector"]["recall_at_10"] = recall(hnsw, exact)

    log(f"lexical over {len(vectors):,} passages: PostgreSQL full-text search, bm25s rebuilt from SQL")
    with pg_store.engine.begin() as connection:
        connection.execute(text("CREATE INDEX chunks_fts ON chunks USING gin (to_tsvector('english', text))"))
    rebuilt, rebuild_s = timed(lambda: pg_store.lexical_index(ids["pgvector"]))
    lexical = latency(
        {
            "postgres_fts": lambda q: full_text_search(pg_store, ids["pgvector"], q),
            "bm25s": lambda q: rebuilt.search(q, K),
        },
        asked,
    )
    return dense, {"bm25s_rebuild_s": sig(rebuild_s), **lexical}


def run_pgvector_only(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="sift-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=None, vector_store="faiss")
        report = {
            "machine": machine(settings),
            "settings": {"sizes": args.sizes, "queries": args.queries, "docs": args.docs, "k": K, "seed": args.seed},
        }
        report["pgvector"] = pgvector_side_by_side(args, Path(tmp), settings, questions(args.queries))
        report["machine"]["load_average_end"] = load_average()
        return report


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="sift-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=None, vector_store="faiss")
        report = {
            "machine": machine(settings),
            "settings": {
                **settings.model_dump(
                    mode="json",
                    include={
                        "embedding_model",
                        "embedding_batch_size",
                        "device",
                        "chunk_size",
                        "chunk_overlap",
                        "index_type",
                    },
                ),
                "database": "sqlite (temporary)",
                "docs": args.docs,
                "sizes": args.sizes,
                "queries": args.queries,
                "llama_queries": args.llama_queries,
                "k": K,
                "seed": args.seed,
            },
        }
        sift = Sift(settings)
        model = sift.embedder
        model.encode(["warm-up"], normalize_embeddings=True)
        sift.store.corpus(CORPUS, create=True)  # opens (and migrates) the database outside the timings
        report["corpus"] = write_documents(Path(tmp) / "docs", args.docs)
        asked = questions(args.queries)
        embed_model = SentenceTransformerEmbedding(model, settings.embedding_batch_size)

        # 1. embedding: Sift's pipeline, the bare model, then llama-index's index build, on the same chunk texts
        report["embedding"], texts, chunk_vectors = embedding(sift, Path(tmp) / "docs")
        report["corpus"]["chunks"] = len(texts)
        log("building llama-index's index over the chunk texts")
        llama, build_s = timed(lambda: VectorStoreIndex([TextNode(text=t) for t in texts], embed_model=embed_model))
        llama_ingest = {
            "build_s": sig(build_s),
            "chunks_per_s": sig(len(texts) / build_s),
            "embed_batch_size": embed_model.embed_batch_size,
        }

        # 2. search: the synthetic size sweep, the real corpus's vectors, and both retrievers end to end
        synthetic, llama_synthetic_sweep = sweep(args.sizes, args.queries, args.llama_queries, args.seed, embed_model)
        question_vectors = model.encode(
            asked, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)
        retriever = llama.as_retriever(similarity_top_k=K)
        log("Sift and llama-index retrievers over the ingested corpus")
        end_to_end = latency(
            {"sift": lambda q: sift.retriever.search(q, CORPUS, K), "llama": retriever.retrieve}, asked
        )
        report["search"] = {
            "k": K,
            "synthetic": synthetic,
            "real_corpus_faiss": faiss_kinds(chunk_vectors, question_vectors)[0],
            "real_corpus_end_to_end": {"index_type": settings.index_type, **end_to_end["sift"]},
            "lexical": lexical_sweep(args.sizes, asked, synthetic),
        }

        # 3. llama-index's default in-memory index, measured above alongside Sift
        report["llama_index_baseline"] = {
            "ingest": llama_ingest,
            "real_corpus_end_to_end": end_to_end["llama"],
            "synthetic": llama_synthetic_sweep,
            "sift_over_llama_index": {
                "ingest_chunks_per_s": ratio(build_s, report["embedding"]["pipeline_s"]),
                **{
                    f"end_to_end_{p}": ratio(end_to_end["sift"][f"{p}_ms"], end_to_end["llama"][f"{p}_ms"])
                    for p in ("p50", "p95")
                },
            },
        }
        if args.pgvector:
            report["pgvector"] = pgvector_side_by_side(args, Path(tmp), settings, asked)
        report["machine"]["load_average_end"] = load_average()
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=60, help="documents to ingest, 1 in 5 an article (default 60)")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10_000, 100_000],
        help="comma-separated vector counts for the search sweep (default 10000,100000)",
    )
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement (default 200)")
    parser.add_argument(
        "--llama-queries",
        type=int,
        default=30,
        help="queries for llama-index's synthetic sweep, whose Python scan is slow (default 30)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pgvector", action="store_true", help="also measure pgvector beside FAISS (see above)")
    parser.add_argument("--pgvector-only", action="store_true", help="only the pgvector beside FAISS section")
    parser.add_argument("--pgvector-url", help="an admin URL of a PostgreSQL with pgvector (default: pgserver)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    emit(run_pgvector_only(args) if args.pgvector_only else run(args), args.out)


if __name__ == "__main__":
    main()
