"""``sift eval qa``: end-to-end answer quality on the CMU Wikipedia question-answer data (S10).

The articles the questions name are ingested into a scratch store, and each distinct question (an article file and
a question with at least one reference answer) is asked through the whole pipeline once per mode. Reported, SQuAD
style: exact match and token F1 of the answer against its best reference; citation accuracy (the share of cited
passages that come from the question's article); the rate of "cannot answer"; and latency per stage. Yes/no
questions count like the rest, and an unanswered question scores 0.

``--limit`` takes a fixed pseudo-random sample (seed 0) rather than the first questions, which all come from the
first few articles.

Example::

    >>> report = evaluate_qa(Settings(), Path("../shared/datasets/cmu-wikiqa-s10"), [("relevance", "logits")],
    ...                      limit=20)                                            # doctest: +SKIP
    >>> sorted(report.rows[0].metrics)                                            # doctest: +SKIP
    ['cannot_answer_rate', 'citation_accuracy', 'exact_match', 'f1']
"""

from __future__ import annotations

import csv
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, ingest_dataset, mean, scratch_sift
from sift.app.evals.metrics import best_over_references, exact_match, token_f1
from sift.app.evals.reports import AnswerExample, Report, ReportRow
from sift.app.generation import without_citations
from sift.ingestion.ingest import IngestItem

logger = logging.getLogger(__name__)

CORPUS = "cmu-wikiqa"
QUESTIONS_FILE = "question_answer_pairs.txt"


@dataclass(frozen=True)
class Question:
    text: str
    article: str  # the article's file name in the store, e.g. "data/set4/a10.txt"
    references: tuple[str, ...]


def load_cmu(folder: Path) -> tuple[list[Question], int]:
    """The distinct questions with at least one reference answer, in file order, and how many had none."""
    path = folder / QUESTIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not the CMU question-answer folder: no {QUESTIONS_FILE}")
    answers: dict[tuple[str, str], list[str]] = {}
    with path.open(encoding="latin-1", newline="") as f:  # the dataset's own encoding
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            question, article = (row.get("Question") or "").strip(), (row.get("ArticleFile") or "").strip()
            if not question or not article:
                continue
            found = answers.setdefault((article + ".txt", question), [])
            answer = (row.get("Answer") or "").strip()
            if answer and answer != "NULL":
                found.append(answer)
    questions = [Question(q, a, tuple(dict.fromkeys(refs))) for (a, q), refs in answers.items() if refs]
    return questions, len(answers) - len(questions)


def sample(questions: list[Question], limit: int | None) -> list[Question]:
    if not limit or limit >= len(questions):
        return questions
    return random.Random(0).sample(questions, limit)


def evaluate_qa(
    settings: Settings,
    folder: Path,
    modes: list[tuple[str, str | None]],
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
) -> Report:
    """Answer quality, citation accuracy, refusals and latency per stage for each rerank mode."""
    questions, unanswerable = load_cmu(folder)
    articles = sorted({q.article for q in questions})
    missing = [a for a in articles if not (folder / a).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} article files are missing, e.g. {folder / missing[0]}")
    chosen = sample(questions, limit)
    sift = scratch_sift(settings, folder)
    ingest_dataset(sift, CORPUS, [IngestItem.from_path(folder / a, a) for a in articles], on_progress)

    report = Report.new(
        "qa",
        folder,
        "f1",
        command=command,
        setup={
            "articles": len(articles),
            "questions": len(chosen),
            "questions_available": len(questions),
            "questions_without_reference": unanswerable,
            "candidates_k": settings.candidates_k,
            "answer_top_n": settings.answer_top_n,
            "answer_max_tokens": settings.answer_max_tokens,
            "embedding_model": settings.embedding_model,
            "llm_model": settings.llm_base_url or settings.llm_model,
        },
    )
    for mode, strategy in modes:
        em, f1, refused, cited, cited_right = [], [], 0, 0, 0
        stages: dict[str, list[float]] = {}
        total_ms, examples = [], []
        for i, question in enumerate(chosen):
            start = time.perf_counter()
            answer = sift.ask(question.text, CORPUS, mode=mode, strategy=strategy)
            total_ms.append(1000 * (time.perf_counter() - start))
            prediction = without_citations(answer.text) if answer.answered else ""
            em.append(best_over_references(prediction, list(question.references), exact_match))
            f1.append(best_over_references(prediction, list(question.references), token_f1))
            refused += not answer.answered
            cited += len(answer.citations)
            cited_right += sum(c.source == question.article for c in answer.citations)
            for stage, ms in answer.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            if len(examples) < 5:
                examples.append(
                    AnswerExample(
                        question=question.text,
                        answer=answer.text,
                        references=list(question.references),
                        f1=round(f1[-1], 3),
                        cited=[c.source for c in answer.citations],
                    )
                )
            if on_progress:
                on_progress(f"Answering with {mode}" + (f" ({strategy})" if strategy else ""), i + 1, len(chosen))
        n = max(len(chosen), 1)
        report.rows.append(
            ReportRow(
                mode=mode,
                strategy=strategy,
                queries=len(chosen),
                metrics={
                    "exact_match": round(sum(em) / n, 4),
                    "f1": round(sum(f1) / n, 4),
                    "citation_accuracy": round(cited_right / cited, 4) if cited else None,
                    "cannot_answer_rate": round(refused / n, 4),
                },
                ms_per_query=mean(total_ms),
                timings_ms={s: mean(v) for s, v in stages.items()},
                citations=cited,
                examples=examples,
            )
        )
    return report
