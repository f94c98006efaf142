"""``sift eval rerank``: the reranker's quality and speed on a TREC DL folder (mounted by app.cli as ``eval``).

Example::

    sift eval rerank --trec ../shared/datasets/trec-dl19 --mode relevance --strategy logits --candidates 20 --limit 10
"""

from __future__ import annotations

import json

import typer

from app.config import Settings

eval_app = typer.Typer(help="Measure Sift's components on standard test collections.", no_args_is_help=True)


@eval_app.callback()
def _group() -> None:
    """Measure Sift's components on standard test collections."""


@eval_app.command("rerank")
def rerank(
    trec: str = typer.Option(..., "--trec", help="Folder with bm25_retrieve_results_*.json and qrels*.txt."),
    mode: str | None = typer.Option(None, "--mode", help="Rerank mode (default: the settings')."),
    strategy: str | None = typer.Option(None, "--strategy", help="logits or generative (default: the settings')."),
    candidates: int = typer.Option(20, "--candidates", min=1, help="BM25 passages reranked per query."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N judged queries."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """nDCG@10 (trec_eval linear gain), latency per query, tokens processed and passages/s."""
    from app.reranker import build_reranker
    from rerank.evaluation import evaluate_rerank

    reranker = build_reranker(Settings(), mode, strategy)
    report = evaluate_rerank(reranker, trec, candidates, limit)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    ndcg = report["ndcg@10"]
    typer.echo(f"{report['mode']} / {report['strategy'] or '-'} ({report['model'] or 'no model'}), "
               f"{report['queries']} queries x {candidates} candidates")
    for name, value in ndcg.items():
        typer.echo(f"  nDCG@10 {name:<10} {value:.4f}")
    typer.echo(f"  {report['ms_per_query']:.0f} ms/query, {report['tokens_per_query']:.0f} tokens/query, "
               f"{report['passages_per_s']} passages/s"
               + (f", {report['prefill_floor_ratio']}x the prefill floor" if report["prefill_floor_ratio"] else ""))
