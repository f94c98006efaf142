"""Sift's evals: the reranker on TREC DL, retrieval on BEIR, answers on CMU WikiQA, follow-up rewriting on CANARD;
one report format for all.

``run_eval`` is the one entry the CLI's siblings (the app's Evaluation page, ``make bench``) need: it runs an eval
and writes its report into the results folder.

Example::

    >>> files = run_eval(Settings(), "retrieval", Path("../shared/datasets/dbpedia-entity-5k"), ["none"], limit=5)
    ...                                                                           # doctest: +SKIP
    >>> files.load().rows[0].metrics["ndcg@10"]                                   # doctest: +SKIP
    0.38
"""

from __future__ import annotations

from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, parse_modes
from sift.app.evals.reports import ReportFiles, list_reports, write_report

EVALS = {
    "rerank": ("The reranker alone on TREC DL (nDCG@10)", "trec-dl19"),
    "retrieval": ("Retrieval and reranking on a BEIR collection (nDCG@10, recall, MRR)", "dbpedia-entity-5k"),
    "qa": ("Answers end to end on CMU WikiQA (exact match, F1, citations)", "cmu-wikiqa-s10"),
}
"""Eval kind -> (what it measures, the dataset folder it uses by default under settings.datasets_dir)."""
REWRITE = "rewrite"
"""The follow-up rewriting eval on CANARD: it compares rewrite methods, not rerank modes (so not in ``EVALS``, whose
kinds the Evaluation page runs with modes)."""


def default_dataset(settings: Settings, kind: str) -> Path:
    return settings.datasets_dir / EVALS[kind][1]


def run_eval(
    settings: Settings,
    kind: str,
    dataset: Path,
    modes: list[str] | None = None,
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    strategy: str | None = None,
    command: str | None = None,
    **options,
) -> ReportFiles:
    """Run eval ``kind`` ("rerank", "retrieval" or "qa") for ``modes`` (``mode`` or ``mode:strategy``; bare modes
    take ``strategy``, default: the settings') and write its report into the settings' results folder. "rewrite"
    compares rewrite ``methods`` (an option) instead of modes.

    Without ``modes``, the rerank eval runs the settings' mode, and the others compare it with ``none``.
    ``options`` go to the eval itself (e.g. ``candidates`` for rerank, ``conversations`` for qa).
    """
    from sift.app.evals.qa import evaluate_qa
    from sift.app.evals.rerank import evaluate_rerank_modes
    from sift.app.evals.retrieval import evaluate_retrieval
    from sift.app.evals.rewrite import evaluate_rewrite

    if kind == REWRITE:
        report = evaluate_rewrite(
            settings, Path(dataset), limit=limit, on_progress=on_progress, command=command, **options
        )
        return write_report(report, settings.resolved_results_dir())
    if kind not in EVALS:
        raise ValueError(f"Unknown eval {kind!r}; choose from {', '.join(EVALS)}.")
    modes = modes or ([settings.rerank_mode] if kind == "rerank" else ["none", settings.rerank_mode])
    parsed = parse_modes(modes, strategy or settings.rerank_strategy)
    evaluate = {"rerank": evaluate_rerank_modes, "retrieval": evaluate_retrieval, "qa": evaluate_qa}[kind]
    report = evaluate(settings, Path(dataset), parsed, limit=limit, on_progress=on_progress, command=command, **options)
    return write_report(report, settings.resolved_results_dir())


def reports(settings: Settings) -> list[ReportFiles]:
    """The reports in the results folder, newest first."""
    return list_reports(settings.resolved_results_dir())
