"""``sift eval rerank`` in the shared report format: one row per mode / strategy and candidate count on a TREC DL
folder.

The measuring is ``rerank.evaluation.evaluate_rerank`` (the reranker alone, on the BM25 candidates the folder ships);
this module runs it for each mode and each number of candidates, and turns its figures into report rows. The BM25
order and the embedding similarity, measured in the same run over the same queries, are columns of every row. The
LLM scores the best ``settings.rerank_llm_k`` candidates of each query (the cascade); a row's variant says how many,
and its K, where that is not the report's only setup.

With ``rebel_reference``, REBEL's own procedure (one- and two-turn, the ``rebel-reference`` strategy) runs after the
modes asked for, on the same candidates, and every row says how many times faster it is than REBEL two-turn at the
same K (``speedup``): the yardstick the issue's target is set against.

Example::

    >>> report = evaluate_rerank_modes(Settings(), Path("../shared/datasets/trec-dl19"), [("relevance", "logits")],
    ...                                candidates=[20, 100], limit=5)               # doctest: +SKIP
    >>> report = evaluate_rerank_modes(Settings(), Path("../shared/datasets/trec-dl19"), [("relevance", "logits")],
    ...                                limit=8, rebel_reference=True)              # doctest: +SKIP
    >>> [row.speedup for row in report.rows]                                       # doctest: +SKIP
    [5.3, 1.2, 1.0]
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from itertools import product
from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress
from sift.app.evals.reports import Report, ReportRow
from sift.app.reranker import build_reranker
from sift.rerank.evaluation import evaluate_rerank

logger = logging.getLogger(__name__)

REBEL_REFERENCE_MODES = [("rebel-one-turn", "rebel-reference"), ("rebel-two-turn", "rebel-reference")]
YARDSTICK = REBEL_REFERENCE_MODES[-1]  # the row every other is timed against: REBEL as published, two-turn


def evaluate_rerank_modes(
    settings: Settings,
    folder: Path,
    modes: list[tuple[str, str | None]],
    candidates: list[int] | None = None,
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
    rebel_reference: bool = False,
    llm_budget_s: float | None = None,
) -> Report:
    """nDCG@10 (with the BM25 and embedding baselines), time, tokens and passages/s per mode and candidate count
    (default: 20); with ``rebel_reference``, REBEL's procedure too and each row's speed-up over its two-turn form;
    with ``llm_budget_s``, Sift's LLM stage has that many seconds per query, as in the app (REBEL's takes none)."""
    candidates = candidates or [20]
    if rebel_reference:
        modes = list(dict.fromkeys([*modes, *REBEL_REFERENCE_MODES]))
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
            "llm_budget_s": llm_budget_s,
            "batch_size": settings.rerank_batch_size,
            **({"speedup_against": ":".join(YARDSTICK)} if rebel_reference else {}),
        },
    )
    measured: list[tuple[int, tuple[str, str | None]]] = []  # each row's K and mode
    for (mode, strategy), k in product(modes, candidates):
        # The budget goes to Sift's strategies only: the reranker drops it for REBEL's, which sees every candidate.
        reranker = replace(build_reranker(settings, mode, strategy), llm_budget_s=llm_budget_s)
        budget = reranker.llm_budget_s if reranker.mode.uses_llm else None
        scored = min(k, reranker.llm_k or k) if reranker.mode.uses_llm else None
        # A row names its K (and how many of them the LLM scored, at most) where the report has several, or a cascade.
        shown = len(candidates) > 1 or (scored or k) < k or budget is not None
        variant = (
            (f"K={k}" + (f", LLM {scored}" if scored else "") + (f" within {budget:g} s" if budget else ""))
            if shown
            else None
        )
        label = f"Reranking with {mode}" + (f" ({strategy})" if strategy else "") + (f", {variant}" if variant else "")
        found = evaluate_rerank(
            reranker, folder, k, limit, on_query=partial(on_progress, label) if on_progress else None
        )
        ndcg = found.ndcg_at_10
        measured.append((k, (mode, strategy)))
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
                llm_scored_per_query=found.llm_scored_per_query,
                passages_per_s=found.passages_per_s,
                prefill_tokens_per_s=found.prefill_tokens_per_s,
                prefill_floor_ratio=found.prefill_floor_ratio,
                weights=found.weights,
            )
        )
    if rebel_reference:
        _speedups(report.rows, measured)
    return report


def _speedups(rows: list[ReportRow], measured: list[tuple[int, tuple[str, str | None]]]) -> None:
    """Each row's time against the yardstick's at the same K: how many times faster it is."""
    yardstick = {k: row.ms_per_query for row, (k, mode) in zip(rows, measured, strict=True) if mode == YARDSTICK}
    for row, (k, _) in zip(rows, measured, strict=True):
        if yardstick.get(k) and row.ms_per_query:
            row.speedup = round(yardstick[k] / row.ms_per_query, 2)
