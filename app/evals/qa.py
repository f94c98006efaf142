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
from functools import partial
from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, ingest_dataset, mean, scratch_sift
from sift.app.evals.metrics import best_over_references, exact_match, token_f1
from sift.app.evals.reports import AnswerExample, Report, ReportRow
from sift.app.followup import Turn, legacy_rewrite
from sift.app.generation import without_citations
from sift.app.pipeline import Answer, Sift
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


def arrange(questions: list[Question], limit: int | None) -> list[list[Question]]:
    """The questions arranged into seeded conversations of 3-4 turns, alternately staying on one article and
    switching article every turn, until ``limit`` questions are used (without one, until no more fit)."""
    rng = random.Random(0)
    unused: dict[str, list[Question]] = {}
    for question in rng.sample(questions, len(questions)):
        unused.setdefault(question.article, []).append(question)
    made: list[list[Question]] = []
    used = 0
    while limit is None or used < limit:
        size = rng.choice((3, 4))
        if limit is not None:
            size = min(size, limit - used)
        if len(made) % 2 == 0:  # stays on one article
            articles = [a for a, left in unused.items() if len(left) >= size]
            turns = [unused[rng.choice(articles)].pop() for _ in range(size)] if articles else []
        else:  # switches article every turn
            turns = []
            for _ in range(size):
                articles = [a for a, left in unused.items() if left and (not turns or a != turns[-1].article)]
                if not articles:
                    break
                turns.append(unused[rng.choice(articles)].pop())
        if len(turns) < min(size, 2):
            break
        made.append(turns)
        used += len(turns)
    return made


@dataclass(frozen=True)
class Asked:
    """One question asked, its answer, how long it took, and its turn in its conversation (1: it opens one)."""

    question: Question
    answer: Answer
    ms: float
    turn: int


def evaluate_qa(
    settings: Settings,
    folder: Path,
    modes: list[tuple[str, str | None]],
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
    conversations: bool = False,
) -> Report:
    """Answer quality, citation accuracy, refusals and latency per stage for each rerank mode.

    With ``conversations``, the questions are also asked inside conversations (see ``arrange``), once read by
    ``followup.standalone_question`` as Sift asks them and once by Sift 0.1's rewriter (the baseline), each row
    beside the single questions' row of the same questions, with its figures per turn."""
    questions, unanswerable = load_cmu(folder)
    articles = sorted({q.article for q in questions})
    missing = [a for a in articles if not (folder / a).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} article files are missing, e.g. {folder / missing[0]}")
    chats = arrange(questions, limit) if conversations else [[q] for q in sample(questions, limit)]
    chosen = [q for chat in chats for q in chat]
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
            "conversations": len(chats) if conversations else None,
            "conversation_turns": "3-4, seeded (0); odd ones stay on one article, even ones switch every turn"
            if conversations
            else None,
            "candidates_k": settings.candidates_k,
            "answer_top_n": settings.answer_top_n,
            "answer_passage_sentences": settings.answer_passage_sentences,
            "answer_max_tokens": settings.answer_max_tokens,
            "embedding_model": settings.embedding_model,
            "llm_model": settings.llm_base_url or settings.llm_model,
        },
    )
    for mode, strategy in modes:
        label = f"Answering with {mode}" + (f" ({strategy})" if strategy else "")
        single = [
            Asked(q, *_timed(sift, q.text, [], mode, strategy), turn)
            for q, turn in _progress(chats, label, on_progress)
        ]
        report.rows.append(_row(mode, strategy, single, "single" if conversations else None))
        if not conversations:
            continue
        alone = {id(a.question): a for a in single}
        llm = sift.generator.llm
        for variant, rewriter in (
            ("conversations", None),
            ("conversations, 0.1 rewriter", partial(legacy_rewrite, llm=llm)),
        ):
            asked: list[Asked] = []
            for question, turn in _progress(chats, f"{label} in {variant}", on_progress):
                if turn == 1:  # nothing before it: the single question's answer
                    asked.append(alone[id(question)])
                    continue
                history = [a.answer.turn for a in asked[-(turn - 1) :]]
                asked.append(Asked(question, *_timed(sift, question.text, history, mode, strategy, rewriter), turn))
            report.rows.append(_row(mode, strategy, asked, variant))
    return report


def _progress(chats: list[list[Question]], stage: str, on_progress: EvalProgress | None):
    """Each question with its turn, reporting progress as it goes."""
    total = sum(map(len, chats))
    done = 0
    for chat in chats:
        for turn, question in enumerate(chat, start=1):
            yield question, turn
            done += 1
            if on_progress:
                on_progress(stage, done, total)


def _timed(sift: Sift, question: str, history: list[Turn], mode: str, strategy: str | None, rewriter=None):
    start = time.perf_counter()
    answer = sift.ask(question, CORPUS, history, mode=mode, strategy=strategy, rewriter=rewriter)
    return answer, 1000 * (time.perf_counter() - start)


def _quality(asked: list[Asked]) -> dict[str, float | None]:
    """Exact match, F1, citation accuracy and the "cannot answer" rate of some answers."""
    n = max(len(asked), 1)
    em = f1 = 0.0
    cited = cited_right = 0
    for a in asked:
        prediction = without_citations(a.answer.text) if a.answer.answered else ""
        em += best_over_references(prediction, list(a.question.references), exact_match)
        f1 += best_over_references(prediction, list(a.question.references), token_f1)
        cited += len(a.answer.citations)
        cited_right += sum(c.source == a.question.article for c in a.answer.citations)
    return {
        "exact_match": round(em / n, 4),
        "f1": round(f1 / n, 4),
        "citation_accuracy": round(cited_right / cited, 4) if cited else None,
        "cannot_answer_rate": round(sum(not a.answer.answered for a in asked) / n, 4),
    }


def _row(mode: str, strategy: str | None, asked: list[Asked], variant: str | None) -> ReportRow:
    metrics = _quality(asked)
    if variant is not None:  # beside conversations: the same figures for first turns and for the turns after
        for name, turns in (
            ("turn 1", [a for a in asked if a.turn == 1]),
            ("turns 2+", [a for a in asked if a.turn > 1]),
        ):
            part = _quality(turns)
            metrics |= {f"{name} f1": part["f1"], f"{name} citation_accuracy": part["citation_accuracy"]}
        metrics["rewritten"] = round(
            sum(a.answer.standalone_question is not None for a in asked) / max(len(asked), 1), 4
        )
    stages: dict[str, list[float]] = {}
    for a in asked:
        for stage, ms in a.answer.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return ReportRow(
        mode=mode,
        strategy=strategy,
        variant=variant,
        queries=len(asked),
        metrics=metrics,
        ms_per_query=mean([a.ms for a in asked]),
        timings_ms={s: mean(v) for s, v in stages.items()},
        citations=sum(len(a.answer.citations) for a in asked),
        examples=[
            AnswerExample(
                question=a.question.text,
                answer=a.answer.text,
                references=list(a.question.references),
                f1=round(_quality([a])["f1"], 3),
                cited=[c.source for c in a.answer.citations],
            )
            for a in asked[:5]
        ],
    )
