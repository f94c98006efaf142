"""Answer latency: first token and full answer, p50/p95, idle and with an ingestion running beside the questions.

    .venv/bin/python bench/latency.py                      # ~8 min on 2 cores: the README's figures
    .venv/bin/python bench/latency.py --quick              # ~2 min: a smoke test (tests/test_bench_smoke.py)
    .venv/bin/python bench/latency.py --budgets 0,1,2,3 --beside none --out /tmp/latency.json

Everything is written to a temporary data directory over SQLite (./data and any SIFT_DATABASE_URL are left alone);
other SIFT_* settings and sift.toml apply. Prints one JSON object (also written to --out):

machine     CPUs and CPU model, load average at start and end (other work on the machine skews every timing),
            library versions, torch threads.
settings    the Sift settings that matter here and this benchmark's parameters.
runs        one row per corpus, condition and budget: ``sample`` is the sample corpus (sample_corpus/, the
            questions of tests/sample_questions.json), ``cmu`` the CMU WikiQA articles of a seeded sample of its
            questions (../shared/datasets/cmu-wikiqa-s10). Conditions: ``idle``, and ``ingesting`` while Sift's
            ingestion worker (sift.app.job_worker, as the app and ``sift serve`` start it) embeds every CMU WikiQA
            article into other corpora, job after job. Budgets: rerank_llm_budget_s for the question (0: none, the
            cascade's llm_k alone). Each question is asked once per budget, the budgets taking turns on every
            question, after one untimed question per corpus. Figures in seconds: first_token (from the question
            to its answer's first streamed token), answer (to the finished answer), rerank (the reranker's own
            time) and llm_stage (its LLM stage); llm_scored is the mean number of passages the LLM scored.
rerank_slowdown
            per budget, the rerank time p50 with the ingestion beside it over the idle one, both corpora pooled
            (issue #16's target: at most 1.5).
chosen_budget
            per answer style (--styles: each question is asked in each), the largest budget whose idle first-token
            p50, both corpora pooled, is within --target-first-token seconds (None when none is).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from ingest_search import load_average, log, machine

from sift.app.config import Settings
from sift.app.evals.qa import load_cmu, sample
from sift.app.jobs import Jobs
from sift.app.pipeline import Answer, Sift, Token
from sift.app.worker_control import start_worker
from sift.ingestion.ingest import IngestItem

REPO = Path(__file__).resolve().parents[1]
WIKIQA = REPO.parent / "shared" / "datasets" / "cmu-wikiqa-s10"
SAMPLE_QUESTIONS = REPO / "tests" / "sample_questions.json"
LOAD_JOBS = 30  # ingestion jobs queued for the "ingesting" condition: more than the questions take to ask


def ask_timed(sift: Sift, question: str, corpus: str, budget: float, style: str | None = None) -> dict:
    """One question through the whole pipeline, timed at its first token and at its answer."""
    start = time.perf_counter()
    first = None
    for event in sift.ask_stream(question, corpus, llm_budget_s=budget, answer_style=style):
        if isinstance(event, Token) and first is None:
            first = time.perf_counter() - start
        elif isinstance(event, Answer):
            trace = event.rerank
            return {
                "first_token": first,
                "answer": time.perf_counter() - start,
                "rerank": event.timings_ms.get("rerank", 0.0) / 1000,
                "llm_stage": trace.llm_seconds or 0.0,
                "llm_scored": trace.llm_k or 0,
            }
    raise RuntimeError("ask_stream ended without an answer")


def summary(rows: list[dict]) -> dict:
    out = {"questions": len(rows)}
    for key in ("first_token", "answer", "rerank", "llm_stage"):
        p50, p95 = np.percentile([r[key] for r in rows], [50, 95])
        out[key] = {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}
    out["llm_scored"] = round(float(np.mean([r["llm_scored"] for r in rows])), 2)
    return out


def question_sets(sift: Sift, n_sample: int, n_cmu: int) -> dict[str, list[str]]:
    """The fixed questions of each corpus, their documents ingested."""
    sift.ensure_sample_corpus()
    questions = [q["question"] for q in json.loads(SAMPLE_QUESTIONS.read_text())][:n_sample]
    cmu, _ = load_cmu(WIKIQA)
    chosen = sample(cmu, n_cmu)
    articles = sorted({q.article for q in chosen})
    sift.ingest([IngestItem.from_path(WIKIQA / a, a) for a in articles], "cmu")
    return {"sample": questions, "cmu": [q.text for q in chosen]}


class IngestionBeside:
    """Sift's ingestion worker embedding every CMU WikiQA article, job after job, while the questions are asked."""

    def __init__(self, sift: Sift):
        self.sift = sift
        self.worker = None

    def __enter__(self) -> IngestionBeside:
        jobs = Jobs.of(self.sift)
        articles = sorted(WIKIQA.glob("data/*/*.txt"))
        for n in range(LOAD_JOBS):
            corpus = self.sift.create_corpus(f"load-{n}")
            files = [(f"{a.parent.name}-{a.name}", a.open("rb")) for a in articles]
            jobs.submit(corpus, self.sift.store.corpus(corpus).id, files)
            for _, stream in files:
                stream.close()
        self.worker = start_worker(self.sift.settings, on_demand=True)
        while not any(j.status == "running" for j in jobs.recent(limit=LOAD_JOBS)):  # models loaded, embedding
            if self.worker.poll() is not None:
                raise RuntimeError(f"the ingestion worker exited ({self.worker.returncode}) before its first job")
            time.sleep(0.5)
        time.sleep(3)  # past the first file's parsing: embedding, as for most of a job
        log(f"ingestion worker {self.worker.pid} running")
        return self

    def __exit__(self, *exc) -> None:
        self.worker.terminate()
        try:
            self.worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()


def run(args: argparse.Namespace) -> dict:
    # Budget 0 is measured as no budget at all, not as the ceiling a question would get.
    settings = Settings(data_dir=Path(args.data_dir), database_url=None, max_rerank_llm_budget_s=None)
    sift = Sift(settings)
    report = {"machine": machine(settings) | {"load_average_start": load_average()}}
    log("ingesting the corpora")
    questions = question_sets(sift, args.sample_questions, args.cmu_questions)
    report["settings"] = {
        "candidates_k": settings.candidates_k,
        "rerank_mode": str(settings.rerank_mode),
        "rerank_strategy": str(settings.rerank_strategy),
        "rerank_llm_k": settings.rerank_llm_k,
        "rerank_llm_budget_s_default": settings.rerank_llm_budget_s,
        "answer_top_n": settings.answer_top_n,
        "budgets": args.budgets,
        "questions": {corpus: len(qs) for corpus, qs in questions.items()},
        "beside": args.beside,
        "answer_styles": args.styles,
    }
    for corpus, qs in questions.items():  # warm: models loaded, the prefill rate measured once
        ask_timed(sift, qs[0], corpus, args.budgets[0])

    conditions = ["idle"] + (["ingesting"] if args.beside == "worker" else [])
    timings: dict[tuple[str, str, float, str], list[dict]] = {}
    for condition in conditions:
        log(f"asking, {condition}")
        with IngestionBeside(sift) if condition == "ingesting" else nullcontext():
            for corpus, qs in questions.items():
                for question in qs:
                    for budget in args.budgets:
                        for style in args.styles:  # the styles take turns too, so that load skews them alike
                            timings.setdefault((corpus, condition, budget, style), []).append(
                                ask_timed(sift, question, corpus, budget, style)
                            )
    report["runs"] = [
        {"corpus": corpus, "condition": condition, "budget_s": budget, "answer_style": style, **summary(rows)}
        for (corpus, condition, budget, style), rows in timings.items()
    ]
    pooled = {
        (condition, budget, style): [
            r for (_, c, b, s), rows in timings.items() if (c, b, s) == (condition, budget, style) for r in rows
        ]
        for condition in conditions
        for budget in args.budgets
        for style in args.styles
    }
    first = args.styles[0]
    if "ingesting" in conditions:
        p50 = {key: summary(rows)["rerank"]["p50"] for key, rows in pooled.items()}
        report["rerank_slowdown"] = {
            str(b): round(p50["ingesting", b, first] / p50["idle", b, first], 2) for b in args.budgets
        }
    report["chosen_budget"] = {}
    for style in args.styles:
        within = [
            b
            for b in args.budgets
            if summary(pooled["idle", b, style])["first_token"]["p50"] <= args.target_first_token
        ]
        report["chosen_budget"][style] = max((b for b in within if b > 0), default=None)
    report["machine"]["load_average_end"] = load_average()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 question per corpus, budgets 0 and 1: a smoke test")
    parser.add_argument("--budgets", default="0,1,1.5,2,3", help="rerank_llm_budget_s values, comma-separated")
    parser.add_argument("--sample-questions", type=int, default=8)
    parser.add_argument("--cmu-questions", type=int, default=8)
    parser.add_argument("--styles", default="auto", help="answer styles, comma-separated: auto,generative,extractive")
    parser.add_argument("--beside", choices=("worker", "none"), default="worker", help="the ingestion beside")
    parser.add_argument("--target-first-token", type=float, default=3.0, help="seconds, p50, for chosen_budget")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.styles = args.styles.split(",")
    if args.quick:
        args.budgets, args.sample_questions, args.cmu_questions = [0.0, 1.0], 1, 1
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="sift-latency-") as data_dir:
        args.data_dir = data_dir
        report = run(args)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
