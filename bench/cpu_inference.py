"""The local reranker LLM at each CPU precision (``llm_precision``: fp32, int8) on the same inputs, interleaved in one
run so a busy machine slows every variant alike: prefill tokens/s, the reranker's seconds per query, DL19 nDCG@10,
and how far each variant's rankings move from fp32's (Kendall tau). Prints one JSON object.

Every variant reranks with the same composite weights (fp32's, its fitted profile where there is one), so the only
difference is the model's arithmetic.

Example::

    PYTHONPATH=. .venv/bin/python bench/cpu_inference.py --queries 20 --candidates 20
    PYTHONPATH=. .venv/bin/python bench/cpu_inference.py --quick   # a smoke run: 2 queries, 5 passages
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from sift.app.config import Settings
from sift.app.reranker import build_reranker
from sift.rerank.evaluation import Machine, judged_queries, ndcg_at_10, prefill_rate, reranked_run, to_candidates

VARIANTS = ("fp32", "int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trec", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "trec-dl19")
    )
    parser.add_argument("--queries", type=int, default=20, help="DL19 queries (the first judged ones).")
    parser.add_argument("--candidates", type=int, default=20, help="BM25 passages reranked per query.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved prefill measurements per variant.")
    parser.add_argument("--prefill-tokens", type=int, default=1024, help="Tokens in one prefill measurement.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 2 queries, 5 passages, 1 short round.")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.candidates, args.rounds, args.prefill_tokens = 2, 5, 1, 128

    load_before = os.getloadavg()
    fp32 = build_reranker(Settings(llm_precision="fp32"), "relevance", "logits")
    weights = dict(fp32.base_weights)
    rerankers = {"fp32": fp32} | {
        v: build_reranker(Settings(llm_precision=v, rerank_weights=weights), "relevance", "logits")
        for v in VARIANTS
        if v != "fp32"
    }
    prefill = measure_prefill(rerankers, args.rounds, args.prefill_tokens)
    reranked = measure_rerank(rerankers, args.trec, args.queries, args.candidates)
    report = {
        "machine": machine(load_before),
        "settings": {
            "mode": "relevance:logits",
            "relevance_method": str(fp32.relevance_method),
            "weights": weights,
            "queries": reranked["queries"],
            "candidates": args.candidates,
            "llm_k": fp32.llm_k,
            "prefill_rounds": args.rounds,
            "prefill_tokens": args.prefill_tokens,
        },
        "variants": {
            v: {"runs_at": r.lm.precision, **prefill[v], **reranked["variants"][v]} for v, r in rerankers.items()
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


def measure_prefill(rerankers: dict, rounds: int, tokens: int) -> dict[str, dict[str, float]]:
    """Median prefill tokens/s per variant over ``rounds`` interleaved measurements, and its ratio to fp32's."""
    rates: dict[str, list[float]] = {v: [] for v in rerankers}
    for _ in range(rounds):
        for v, reranker in rerankers.items():
            rates[v].append(prefill_rate(reranker.lm, tokens=tokens))
    medians = {v: statistics.median(r) for v, r in rates.items()}
    return {
        v: {"prefill_tokens_per_s": round(m, 1), "prefill_over_fp32": round(m / medians["fp32"], 3)}
        for v, m in medians.items()
    }


def measure_rerank(rerankers: dict, trec: str, limit: int, candidates: int) -> dict:
    """Each query reranked by every variant in turn (the order alternating between queries): seconds per query,
    nDCG@10, and per query Kendall tau against fp32 of the final order and of the LLM's relevance scores."""
    queries, qrels = judged_queries(trec, limit)
    names = list(rerankers)
    seconds = {v: [] for v in names}
    runs = {v: {} for v in names}
    order_tau = {v: [] for v in names}
    relevance_tau = {v: [] for v in names}
    for n, item in enumerate(queries):
        hits = item["hits"]
        cands = to_candidates(hits[:candidates])
        results = {}
        for v in names if n % 2 == 0 else reversed(names):
            start = time.perf_counter()
            results[v] = rerankers[v].rerank(item["query"], cands)
            seconds[v].append(time.perf_counter() - start)
            runs[v][str(hits[0]["qid"])] = reranked_run(hits, results[v].candidates, candidates)
        for v in names:
            order_tau[v].append(_tau(_final_ranks(results["fp32"]), _final_ranks(results[v])))
            relevance_tau[v].append(_tau(_relevance(results["fp32"]), _relevance(results[v])))
    return {
        "queries": len(queries),
        "variants": {
            v: {
                "s_per_query": round(statistics.mean(seconds[v]), 3),
                "s_per_query_median": round(statistics.median(seconds[v]), 3),
                "rerank_over_fp32": round(sum(seconds["fp32"]) / sum(seconds[v]), 3),
                "ndcg_at_10": ndcg_at_10(qrels, runs[v]),
                "kendall_tau_order_vs_fp32": round(float(np.nanmean(order_tau[v])), 4),
                "kendall_tau_relevance_vs_fp32": round(float(np.nanmean(relevance_tau[v])), 4),
            }
            for v in names
        },
    }


def _final_ranks(result) -> list[int]:
    return [row.final_rank for row in sorted(result.trace.candidates, key=lambda r: r.chunk_id)]


def _relevance(result) -> list[float]:
    """The LLM's relevance score of each passage it scored, by passage id (the cascade leaves others unscored)."""
    scores = {
        row.chunk_id: c.score
        for row in result.trace.candidates
        for c in row.criteria
        if c.name == "relevance" and c.score is not None
    }
    return [scores[i] for i in sorted(scores)]


def _tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic) if len(a) == len(b) and len(a) > 1 else float("nan")


def machine(load_before: tuple[float, float, float]) -> dict:
    import torch

    return {
        **Machine.current().model_dump(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "quantized_engine": torch.backends.quantized.engine,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    main()
