"""Evaluate a reranker on a TREC DL folder (e.g. trec-dl19): nDCG@10 (trec_eval's linear gain, via ranx), latency,
tokens, passages/s, and baselines measured in the same run over the same queries.

The folder holds ``bm25_retrieve_results_*.json`` (queries with their BM25 top-100, text included) and
``qrels.*.txt``. The reranker sees the BM25 top-K; the rest of the top-100 keeps BM25 order below them, as in the
published reranking figures. Baselines: BM25 order, and the dense similarity alone over the same top-K (read
from the trace, so it costs nothing extra). The candidates carry the folder's BM25 scores (Anserini over all of MS
MARCO) as their ``lexical`` signal; the ``dense`` one the reranker computes with its embedder.

What it measures comes back as a ``RerankEvaluation``; ``Machine`` says where it was measured.

Example::

    >>> found = evaluate_rerank(reranker, "/work/shared/datasets/trec-dl19", candidates=20, limit=5)  # doctest: +SKIP
    >>> found.ndcg_at_10.reranked > found.ndcg_at_10.bm25                                          # doctest: +SKIP
    True
    >>> Machine.model_validate({"cpu_count": 2, "torch": "2.13.0+cpu"}).gpu is None
    True
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from sift.rerank.types import FiniteFloat, RerankTrace
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


Figure = FiniteFloat
"""A measured number, or None where there was nothing to measure: NaN and infinities become None, so reports stay
valid JSON (which has neither)."""


class Machine(BaseModel):
    """Where figures were measured; every field may be missing from reports written elsewhere."""

    cpu_count: int | None = None
    # Reports written before this field existed must load and write back unchanged: an unknown model is left out.
    cpu_model: str | None = Field(default=None, exclude_if=lambda model: model is None)
    torch: str | None = None
    torch_threads: int | None = None
    device: str | None = None
    python: str | None = None
    gpu: str | None = None

    @classmethod
    def current(cls, device: str | None = None) -> Machine:
        """This machine; ``device`` is where the model runs (default: cuda if there is a GPU, else cpu)."""
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        return cls(
            cpu_count=os.cpu_count(),
            cpu_model=cpu_model(),
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            device=device or ("cuda" if gpu else "cpu"),
            python=platform.python_version(),
            gpu=gpu,
        )


def cpu_model() -> str:
    """The processor's model name (Linux's /proc/cpuinfo; elsewhere what the platform module knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


class Ndcg(BaseModel):
    """nDCG@10 of the reranked order and of the baselines, over the same queries (None: nothing to measure)."""

    reranked: Figure
    bm25: Figure
    embedding: Figure = None  # only when the trace holds an embedding score for every candidate


class RerankEvaluation(BaseModel):
    """What ``evaluate_rerank`` measured for one reranker: quality, time per query, tokens, passages/s, and how
    close the logit strategy came to the model's prefill floor."""

    mode: str
    strategy: str | None
    model: str | None
    relevance_method: str | None  # how the logit strategy scored relevance; None for other strategies
    candidates: int
    queries: int
    limit: int | None
    ndcg_at_10: Ndcg
    ms_per_query: Figure
    ms_per_query_median: Figure
    tokens_per_query: Figure
    llm_scored_per_query: Figure = None  # passages the LLM scored, mean per query (None: no LLM)
    passages_per_s: Figure
    prefill_tokens_per_s: Figure
    prefill_floor_ratio: Figure
    weights: dict[str, float] | None  # what the reranker started from: defaults, fitted profile, hand-set
    machine: Machine
    traces: list[RerankTrace] = []  # one per query, with keep_traces (bench/rerank_weights.py re-scores them)


def load_trec(folder: str | Path) -> tuple[list[dict], str]:
    """(queries with BM25 hits, qrels path) from a TREC DL folder."""
    folder = Path(folder)
    runs = sorted(folder.glob("bm25_retrieve_results_*.json"))
    qrels = sorted(folder.glob("qrels*.txt"))
    if not runs or not qrels:
        raise FileNotFoundError(f"{folder} needs bm25_retrieve_results_*.json and qrels*.txt")
    return json.loads(runs[0].read_text()), str(qrels[0])


def to_candidates(hits: list[dict]) -> list[Candidate]:
    return [
        Candidate(
            chunk_id=i,
            text=h["content"],
            document_id=i,
            source="msmarco",
            score=float(h["score"]),
            rank=i + 1,
            lexical=float(h["score"]),
        )
        for i, h in enumerate(hits)
    ]


def judged_queries(trec_dir: str | Path, limit: int | None = None) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """The folder's queries that have relevance judgements (the first ``limit`` of them), and those judgements."""
    from ranx import Qrels

    queries, qrels_path = load_trec(trec_dir)
    all_qrels = Qrels.from_file(qrels_path, kind="trec").to_dict()
    queries = [q for q in queries if str(q["hits"][0]["qid"]) in all_qrels][: limit or None]
    return queries, {str(q["hits"][0]["qid"]): all_qrels[str(q["hits"][0]["qid"])] for q in queries}


def reranked_run(hits: list[dict], reranked: list[Candidate], candidates: int) -> dict[str, float]:
    """One query's run for nDCG: the reranked top-``candidates`` first, the rest of ``hits`` in BM25 order below."""
    tail = {str(h["docid"]): -1000.0 - j for j, h in enumerate(hits[candidates:])}
    return {str(hits[c.chunk_id]["docid"]): float(len(reranked) - r) for r, c in enumerate(reranked)} | tail


def ndcg_at_10(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float | None:
    """nDCG@10 (trec_eval's linear gain) of ``run`` over the queries of ``qrels``; None for an empty run."""
    from ranx import Qrels, Run, evaluate

    return round(float(evaluate(Qrels(qrels), Run(run), "ndcg@10")), 4) if run else None


def prefill_rate(lm, tokens: int = 1024, batch: int = 8) -> float | None:
    """Measured tokens/s of one plain batched forward pass of the local model (the floor the logit strategy is held
    to); None for a server."""
    import torch

    model = getattr(lm, "model", None)
    if model is None:
        return None
    ids = torch.randint(100, 1000, (batch, tokens // batch), device=lm.device)
    with torch.inference_mode(), lm.lock:
        model(ids[:1, :8])  # warm-up
        start = time.perf_counter()
        model.get_decoder()(input_ids=ids)
        return tokens / (time.perf_counter() - start)


def evaluate_rerank(
    reranker,
    trec_dir: str | Path,
    candidates: int = 20,
    limit: int | None = None,
    keep_traces: bool = False,
    on_query: Callable[[int, int], None] | None = None,
) -> RerankEvaluation:
    """Rerank each query's BM25 top-``candidates`` and measure quality and speed.

    ``on_query(done, total)`` is called after each query, for a progress bar."""
    queries, qrels = judged_queries(trec_dir, limit)
    lm = getattr(reranker, "lm", None)
    rate_before = prefill_rate(lm) if lm is not None else None
    runs = {"bm25": {}, "embedding": {}, "reranked": {}}
    latencies, tokens, scored, traces = [], [], [], []
    for item in queries:
        hits = item["hits"]
        qid = str(hits[0]["qid"])
        cands = to_candidates(hits[:candidates])
        start = time.perf_counter()
        result = reranker.rerank(item["query"], cands)
        latencies.append(time.perf_counter() - start)
        tokens.append(result.trace.tokens_processed)
        scored.append(result.trace.llm_k)
        tail = {str(h["docid"]): -1000.0 - j for j, h in enumerate(hits[candidates:])}
        runs["bm25"][qid] = {str(h["docid"]): -float(j) for j, h in enumerate(hits)}
        runs["reranked"][qid] = reranked_run(hits, result.candidates, candidates)
        emb = {
            r.chunk_id: s.score
            for r in result.trace.candidates
            for s in r.criteria
            if s.name == "dense" and s.score is not None
        }
        if len(emb) == len(cands):
            # ties broken by BM25 rank, as the reranker does
            runs["embedding"][qid] = {str(hits[i]["docid"]): emb[i] - 1e-9 * i for i in emb} | tail
        if keep_traces:
            traces.append(result.trace)
        if on_query is not None:
            on_query(len(latencies), len(queries))
    rate_after = prefill_rate(lm) if lm is not None else None
    total_s, total_tokens = sum(latencies), sum(tokens)
    rates = [r for r in (rate_before, rate_after) if r]
    rate = statistics.mean(rates) if rates else None
    found = RerankEvaluation(
        mode=reranker.mode,
        strategy=reranker.strategy,
        model=reranker.model_name,
        relevance_method=reranker.relevance_method if reranker.strategy == "logits" else None,
        candidates=candidates,
        queries=len(queries),
        limit=limit,
        ndcg_at_10=Ndcg(**{name: ndcg_at_10(qrels, run) for name, run in runs.items()}),
        ms_per_query=round(1000 * total_s / max(len(queries), 1), 1),
        ms_per_query_median=round(1000 * statistics.median(latencies), 1) if latencies else None,
        tokens_per_query=round(total_tokens / max(len(queries), 1), 1),
        llm_scored_per_query=round(statistics.mean(scored), 1) if reranker.mode.uses_llm and scored else None,
        passages_per_s=round(len(queries) * candidates / total_s, 2) if total_s else None,
        prefill_tokens_per_s=round(rate, 1) if rate else None,
        prefill_floor_ratio=round(total_s / (total_tokens / rate), 3) if rate and total_tokens else None,
        weights=dict(reranker.base_weights) or None,
        machine=Machine.current(str(getattr(lm, "device", "")) or None),
        traces=traces,
    )
    logger.info(
        "Reranked %d queries with %s%s: nDCG@10 %s, %s ms/query",
        found.queries,
        found.mode,
        f":{found.strategy}" if found.strategy else "",
        found.ndcg_at_10.reranked,
        found.ms_per_query,
    )
    return found
