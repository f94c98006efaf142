"""``sift eval rerank`` in the shared report format: one row per mode / strategy and candidate count on a TREC DL
folder.

The measuring is ``rerank.evaluation.evaluate_rerank`` (the reranker alone, on the BM25 candidates the folder ships);
this module runs it for each mode and each number of candidates, and turns its figures into report rows. The BM25
order and the embedding similarity, measured in the same run over the same queries, are columns of every row. The
LLM scores the best ``settings.rerank_llm_k`` candidates of each query (the cascade); a row's variant says how many,
and its K, where that is not the report's only setup.

Example::

    >>> report = evaluate_rerank_modes(Settings(), Path("../shared/datasets/trec-dl19"), [("relevance", "logits")],
    ...                                candidates=[20, 100], limit=5)               # doctest: +SKIP
"""

from __future__ import annotations

import logging
from functools import partial
from itertools import product
from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress
from sift.app.evals.reports import Report, ReportRow
from sift.app.reranker import build_reranker
from sift.rerank.evaluation import evaluate_rerank

logger = logging.getLogger(__name__)


def evaluate_rerank_modes(
    settings: Settings,
    folder: Path,
    modes: list[tuple[str, str | None]],
    candidates: list[int] | None = None,
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
) -> Report:
    """nDCG@10 (with the BM25 and embedding baselines), time, tokens and passages/s per mode and candidate count
    (default: 20)."""
    candidates = candidates or [20]
    report = Report.new(
        "rerank",
        folder,
        "ndcg@10",
        command=command,
        setup={
            "candidates": ", ".join(map(str, candidates)),
            "llm_k": settings.rerank_llm_k,
            "limit": limit,
            "llm_model": settings.llm_base_url or settings.llm_model,
            "embedding_model": settings.embedding_model,
            "relevance_method": settings.rerank_relevance_method,
            "batch_size": settings.rerank_batch_size,
        },
    )
    for (mode, strategy), k in product(modes, candidates):
        reranker = build_reranker(settings, mode, strategy)
        scored = min(k, reranker.llm_k or k) if reranker.mode.uses_llm else None
        # A row names its K (and how many of them the LLM scored) where the report has several, or a cascade.
        shown = len(candidates) > 1 or (scored or k) < k
        variant = (f"K={k}" + (f", LLM {scored}" if scored else "")) if shown else None
        label = f"Reranking with {mode}" + (f" ({strategy})" if strategy else "") + (f", {variant}" if variant else "")
        found = evaluate_rerank(
            reranker, folder, k, limit, on_query=partial(on_progress, label) if on_progress else None
        )
        ndcg = found.ndcg_at_10
        report.rows.append(
            ReportRow(
                mode=mode,
                strategy=strategy,
                variant=variant,
                queries=found.queries,
                metrics={"ndcg@10": ndcg.reranked, "ndcg@10 bm25": ndcg.bm25, "ndcg@10 embedding": ndcg.embedding},
                ms_per_query=found.ms_per_query,
                timings_ms={"rerank": found.ms_per_query},
                ms_per_query_median=found.ms_per_query_median,
                tokens_per_query=found.tokens_per_query,
                passages_per_s=found.passages_per_s,
                prefill_tokens_per_s=found.prefill_tokens_per_s,
                prefill_floor_ratio=found.prefill_floor_ratio,
                weights=found.weights,
            )
        )
    return report
