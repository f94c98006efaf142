"""``sift eval``: measure Sift on standard collections; every command writes a report (JSON, Markdown, PNG plot).

    sift eval rerank --trec DIR [--mode M[:S]]... [--candidates K]... [--llm-k N] [--llm-budget S]
                     [--rebel-reference] [--limit N] [--json]
    sift eval retrieval --beir DIR [--retrieval R[:FUSION]]... [--mode M[:S]]... [--limit N] [--json]
    sift eval qa --cmu DIR [--mode M[:S]]... [--style S]... [--limit N] [--conversations] [--json]
    sift eval rewrite --canard DIR [--method M]... [--limit N] [--json]

``--mode`` may be repeated; ``relevance:generative`` names a strategy, a bare mode takes ``--strategy`` (default: the
settings'). Reports go to ``--out`` (default: the settings' results folder, ``data/results``).

Example::

    sift eval retrieval --beir ../shared/datasets/dbpedia-entity-5k --mode none --mode relevance --limit 10
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from sift.app.config import Settings
from sift.app.evals import default_dataset
from sift.app.evals.common import EvalProgress

logger = logging.getLogger(__name__)

eval_app = typer.Typer(help="Measure Sift's components on standard test collections.", no_args_is_help=True)

ModeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--mode", help="Rerank mode, or mode:strategy; repeat for several (e.g. --mode none --mode relevance:logits)."
    ),
]
StrategyOption = Annotated[
    str | None, typer.Option("--strategy", help="Strategy for modes given without one (default: the settings').")
]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, help="Only N queries / questions.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Results folder (default: data/results).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")]
LlmKOption = Annotated[
    int | None,
    typer.Option(
        "--llm-k",
        min=1,
        help="The cascade: candidates the LLM scores, the best by dense and BM25 (default: the "
        "settings' rerank_llm_k).",
    ),
]


@eval_app.callback()
def _group() -> None:
    """Measure Sift's components on standard test collections."""


@eval_app.command("rerank")
def rerank(
    trec: Annotated[Path, typer.Option("--trec", help="Folder with bm25_retrieve_results_*.json and qrels*.txt.")],
    mode: ModeOption = None,
    strategy: StrategyOption = None,
    candidates: Annotated[
        list[int] | None,
        typer.Option("--candidates", min=1, help="BM25 passages reranked per query; repeat for several (default 20)."),
    ] = None,
    llm_k: LlmKOption = None,
    rebel_reference: Annotated[
        bool,
        typer.Option(
            "--rebel-reference",
            help="Also run REBEL's own procedure (one- and two-turn: listwise prompts, written scores) on the same "
            "candidates, and give every row's speed-up over REBEL two-turn.",
        ),
    ] = False,
    llm_budget: Annotated[
        float | None,
        typer.Option(
            "--llm-budget",
            min=0,
            help="Seconds the LLM stage may take per query, as in the app (default: none, so that quality figures "
            "do not depend on the machine's speed; 0: none). REBEL's procedure takes none.",
        ),
    ] = None,
    limit: LimitOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """The reranker alone on TREC DL: nDCG@10 (trec_eval linear gain) beside BM25 and embedding order, latency per
    query, tokens processed, passages/s."""
    options = {"candidates": candidates, "rebel_reference": rebel_reference, "llm_budget_s": llm_budget or None}
    _run("rerank", trec, mode, strategy, limit, out, as_json, llm_k, **options)


@eval_app.command("retrieval")
def retrieval(
    beir: Annotated[Path, typer.Option("--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    mode: ModeOption = None,
    strategy: StrategyOption = None,
    limit: LimitOption = None,
    retrieval: Annotated[
        list[str] | None,
        typer.Option(
            "--retrieval",
            help="dense, lexical, hybrid or hybrid:FUSION (rrf, minmax, zscore); repeat for several "
            "(default: the settings').",
        ),
    ] = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrieval modes (rerank mode none keeps their order) and rerank modes on a BEIR collection ingested into a
    scratch store: nDCG@10, Recall@10/100, MRR@10."""
    _run("retrieval", beir, mode, strategy, limit, out, as_json, retrievals=retrieval)


@eval_app.command("qa")
def qa(
    cmu: Annotated[Path, typer.Option("--cmu", help="CMU question-answer folder (question_answer_pairs.txt, data/).")],
    mode: ModeOption = None,
    strategy: StrategyOption = None,
    limit: LimitOption = None,
    conversations: Annotated[
        bool,
        typer.Option(
            "--conversations",
            help="Also ask the same questions inside conversations (some switch article every turn, some stay on "
            "one), with Sift 0.1's rewriter as the baseline.",
        ),
    ] = False,
    style: Annotated[
        list[str] | None,
        typer.Option(
            "--style",
            help="Answer style: auto, generative or extractive; repeat for several, each mode's rows once per style "
            "(default: none given, Sift's own).",
        ),
    ] = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answers end to end on CMU WikiQA: whether they contain a reference answer, its words they have, exact match,
    token F1, citation accuracy, "cannot answer" and verified rates, the ceiling the answers' passages set, latency
    per stage."""
    _run("qa", cmu, mode, strategy, limit, out, as_json, conversations=conversations, styles=style)


@eval_app.command("rewrite")
def rewrite(
    canard: Annotated[Path, typer.Option("--canard", help="CANARD folder (dev.json).")],
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method", help="legacy (Sift 0.1's), referent or referent+llm; repeat for several (default: all)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="A seeded sample of N questions (the LLM methods are slow).")
    ] = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow-up questions made to stand alone, against CANARD's human rewrites: self-contained questions left
    unchanged, follow-ups' token F1, the share naming what the person added, time per question."""
    _run("rewrite", canard, None, None, limit, out, as_json, methods=method)


def _settings(out: Path | None, llm_k: int | None) -> Settings:
    """The settings, with the results folder and the cascade's LLM-scored count given on the command line."""
    settings = Settings()
    if out is not None:
        settings = settings.model_copy(update={"results_dir": out})
    if llm_k is not None:
        settings = settings.model_copy(update={"rerank_llm_k": llm_k})
    return settings


@contextmanager
def _progress() -> Iterator[EvalProgress]:
    """A progress bar per stage on stderr, closed when its stage is done (or the work stops)."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()


def _run(
    kind: str,
    dataset: Path,
    modes: list[str] | None,
    strategy: str | None,
    limit: int | None,
    out: Path | None,
    as_json: bool,
    llm_k: int | None = None,
    **options,
) -> None:
    """Run one eval with a progress bar per stage on stderr, write its report, print the table (or the JSON);
    ``llm_k`` overrides the settings' rerank_llm_k."""
    from sift.app.evals import run_eval
    from sift.app.evals.reports import markdown_table

    settings = _settings(out, llm_k)
    with _progress() as progress:
        files = run_eval(
            settings, kind, dataset, modes, limit, progress, strategy, shlex.join(["sift", *sys.argv[1:]]), **options
        )
    report = files.load()
    if as_json:
        paths = {"json": str(files.json), "markdown": str(files.markdown), "plot": str(files.plot)}
        typer.echo(json.dumps(report.model_dump(mode="json") | {"files": paths}, indent=2, allow_nan=False))
        return
    typer.echo(markdown_table(report))
    typer.echo(f"Report: {files.json}\nTable:  {files.markdown}\nPlot:   {files.plot}")


def tune(
    datasets: Annotated[
        list[Path] | None,
        typer.Argument(
            help="TREC DL folders and BEIR collections with judgments (default: trec-dl19 and dbpedia-entity-5k "
            "under the settings' datasets_dir)."
        ),
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="Rerank mode, or mode:strategy, to fit (default: the settings').")
    ] = None,
    llm_k: LlmKOption = None,
    limit: LimitOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the fit without writing the profile.")] = False,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fit the reranker's composite weights to labelled data for the configured models, report each fit on the
    other datasets beside the hand-set weights, and write the fit on all of them as the weights profile the reranker
    starts from for these models (weights in the settings still win)."""
    from sift.app.evals.common import parse_modes
    from sift.app.evals.reports import markdown_table, write_report
    from sift.app.tuning import tune as fit

    settings = _settings(out, llm_k)
    if mode is not None:
        ((name, strategy),) = parse_modes([mode], settings.rerank_strategy)
        settings = settings.model_copy(update={"rerank_mode": name, "rerank_strategy": strategy or "logits"})
    datasets = datasets or [default_dataset(settings, kind) for kind in ("rerank", "retrieval")]
    with _progress() as progress:
        report, profile, path = fit(
            settings, datasets, limit, progress, shlex.join(["sift", *sys.argv[1:]]), write=not dry_run
        )
    files = write_report(report, settings.resolved_results_dir())
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "report": report.model_dump(mode="json"),
                    "profile": profile.model_dump(mode="json"),
                    "profile_file": str(path) if path else None,
                },
                indent=2,
                allow_nan=False,
            )
        )
        return
    typer.echo(markdown_table(report))
    typer.echo(f"Profile {profile.name}: {profile.weights}")
    typer.echo(f"Written to {path}" if path else "Not written (--dry-run).")
    typer.echo(f"Report: {files.json}")


def tune_quotes(
    cmu: Annotated[
        Path | None, typer.Option("--cmu", help="CMU question-answer folder (default: in the settings' datasets_dir).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="A seeded sample of N training questions (default: all).")
    ] = None,
    held_out: Annotated[int, typer.Option("--held-out", min=1, help="Held-out questions to measure the fit on.")] = 100,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the fit without writing the profile.")] = False,
    out: OutOption = None,
) -> None:
    """Fit the quote scorer (the sentence a quote-first answer quotes) on CMU WikiQA for the configured models, report
    how often its top sentence holds a reference on held-out questions beside each signal alone and an oracle, and
    write the weights as these models' quote profile."""
    from dataclasses import asdict

    from sift.app.evals.quotes import tune_quotes as fit

    settings = _settings(out, None)
    folder = cmu or default_dataset(settings, "qa")
    with _progress() as progress:
        found = fit(settings, folder, limit, held_out, write=not dry_run, on_progress=progress)
    typer.echo(json.dumps(asdict(found), indent=2))
