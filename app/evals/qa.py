"""``sift eval qa``: end-to-end answer quality on the CMU Wikipedia question-answer data (S10).

The articles the questions name are ingested into a scratch store, and each distinct question (an article file and
a question with at least one reference answer) is asked through the whole pipeline once per mode and answer style.
Reported per row:

- whether answers are right: the share that contain a reference answer (``contains_reference``: its words, whole
  and in order, after SQuAD normalisation), the share of the best reference's words they have
  (``gold_token_recall``), and SQuAD's exact match and token F1 against the best reference; an unanswered question
  counts as an empty answer, and yes/no questions count like the rest;
- citation accuracy (the share of cited passages that come from the question's article), the rate of "cannot
  answer", the share of answers marked verified and, of those, the share that are right (``verified_right``), the
  share the answer check found to address the question and the share written extractively (None where the
  answers do not say);
- the ceiling: over the top ``answer_top_n`` passages each answer was written from (its rerank trace's final
  order), the share whose passages contain a reference (``ceiling_passages``), and the best single sentence of
  them by each measure (``oracle_sentence_contains``: some sentence contains a reference; ``_f1``, ``_recall``);
- latency per stage.

``--limit`` takes a fixed pseudo-random sample (seed 0) rather than the first questions, which all come from the
first few articles.

Example::

    >>> report = evaluate_qa(Settings(), Path("../shared/datasets/cmu-wikiqa-s10"), [("relevance", "logits")],
    ...                      limit=150)                                           # doctest: +SKIP
    >>> row = report.rows[0]                                                      # doctest: +SKIP
    >>> row.style, row.metrics["contains_reference"], row.metrics["ceiling_passages"]  # doctest: +SKIP
    (None, 0.14, 0.4133)
"""

from __future__ import annotations

import csv
import logging
import random
import time
from dataclasses import dataclass
from functools import partial
from itertools import product
from pathlib import Path

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, ingest_dataset, mean, scratch_sift
from sift.app.evals.metrics import (
    Ceiling,
    best_over_references,
    ceiling,
    contains_any,
    exact_match,
    token_f1,
    token_recall,
)
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
class Scores:
    """How right one answer is against its question's references, and the ceiling its passages set."""

    exact_match: float
    f1: float
    contains: bool
    recall: float
    ceiling: Ceiling


@dataclass(frozen=True)
class Asked:
    """One question asked, its answer, how long it took, its turn in its conversation (1: it opens one), and how
    right the answer is."""

    question: Question
    answer: Answer
    ms: float
    turn: int
    scores: Scores


def evaluate_qa(
    settings: Settings,
    folder: Path,
    modes: list[tuple[str, str | None]],
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
    conversations: bool = False,
    styles: list[str] | None = None,
) -> Report:
    """Answer quality, its ceiling, citation accuracy, refusals and latency per stage for each rerank mode and each
    answer style in ``styles`` ("auto", "generative", "extractive": ``Sift.ask``'s ``answer_style``; without any,
    Sift's own choice, and the rows' style is None).

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
            "answer_styles": ", ".join(styles) if styles else None,
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
    for (mode, strategy), style in product(modes, styles or [None]):
        ask = partial(_ask, sift, settings.answer_top_n, mode=mode, strategy=strategy, style=style)
        label = f"Answering with {mode}" + (f" ({strategy})" if strategy else "") + (f", {style}" if style else "")
        single = [ask(q, turn) for q, turn in _progress(chats, label, on_progress)]
        report.rows.append(_row(mode, strategy, style, single, "single" if conversations else None))
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
                asked.append(ask(question, turn, history, rewriter))
            report.rows.append(_row(mode, strategy, style, asked, variant))
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


def _ask(
    sift: Sift,
    top_n: int,
    question: Question,
    turn: int,
    history: list[Turn] | None = None,
    rewriter=None,
    *,
    mode: str,
    strategy: str | None,
    style: str | None,
) -> Asked:
    """Ask one question (in its conversation so far), time it and score its answer."""
    options = {"answer_style": style} if style else {}  # without a style, Sift's own choice
    start = time.perf_counter()
    answer = sift.ask(question.text, CORPUS, history or [], mode=mode, strategy=strategy, rewriter=rewriter, **options)
    ms = 1000 * (time.perf_counter() - start)
    return Asked(question, answer, ms, turn, _scores(question, answer, top_passages(sift, answer, top_n)))


def top_passages(sift: Sift, answer: Answer, top_n: int) -> list[str]:
    """The text of the ``top_n`` passages the answer was written from, best first: its rerank trace's final order
    (the trace records chunk ids; every candidate is in it)."""
    ranked = sorted(answer.rerank.candidates, key=lambda c: c.final_rank)[:top_n] if answer.rerank else []
    texts = sift.passage_texts(CORPUS, [c.chunk_id for c in ranked])
    return [texts[c.chunk_id] for c in ranked if c.chunk_id in texts]


def _scores(question: Question, answer: Answer, passages: list[str]) -> Scores:
    prediction = without_citations(answer.text) if answer.answered else ""
    references = list(question.references)
    return Scores(
        exact_match=best_over_references(prediction, references, exact_match),
        f1=best_over_references(prediction, references, token_f1),
        contains=contains_any(prediction, references),
        recall=best_over_references(prediction, references, token_recall),
        ceiling=ceiling(passages, references),
    )


def _quality(asked: list[Asked]) -> dict[str, float | None]:
    """The figures of some answers: how right they are, citations, refusals, verification, the ceiling."""
    n = max(len(asked), 1)

    def share(values) -> float:
        return round(sum(values) / n, 4)

    cited = sum(len(a.answer.citations) for a in asked)
    cited_right = sum(c.source == a.question.article for a in asked for c in a.answer.citations)
    verified = [a for a in asked if a.answer.verified]
    # Fields the answers carry only from the release that adds them: None where none says.
    addresses = [getattr(a.answer, "addresses_question", None) for a in asked]
    styles = [getattr(a.answer, "style", None) for a in asked]
    return {
        "contains_reference": share(a.scores.contains for a in asked),
        "gold_token_recall": share(a.scores.recall for a in asked),
        "exact_match": share(a.scores.exact_match for a in asked),
        "f1": share(a.scores.f1 for a in asked),
        "citation_accuracy": round(cited_right / cited, 4) if cited else None,
        "cannot_answer_rate": share(not a.answer.answered for a in asked),
        "verified_rate": share(a.answer.verified for a in asked),
        "verified_right": round(sum(a.scores.contains for a in verified) / len(verified), 4) if verified else None,
        "answers_question_rate": share(x is True for x in addresses) if any(x is not None for x in addresses) else None,
        "extractive_rate": share(x == "extractive" for x in styles) if any(x is not None for x in styles) else None,
        "ceiling_passages": share(a.scores.ceiling.passages for a in asked),
        "oracle_sentence_contains": share(a.scores.ceiling.sentence_contains for a in asked),
        "oracle_sentence_f1": share(a.scores.ceiling.sentence_f1 for a in asked),
        "oracle_sentence_recall": share(a.scores.ceiling.sentence_recall for a in asked),
    }


def _row(mode: str, strategy: str | None, style: str | None, asked: list[Asked], variant: str | None) -> ReportRow:
    metrics = _quality(asked)
    if variant is not None:  # beside conversations: the same figures for first turns and for the turns after
        for name, turns in (
            ("turn 1", [a for a in asked if a.turn == 1]),
            ("turns 2+", [a for a in asked if a.turn > 1]),
        ):
            part = _quality(turns)
            metrics |= {f"{name} {m}": part[m] for m in ("contains_reference", "f1", "citation_accuracy")}
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
        style=style,
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
                contains_reference=a.scores.contains,
                f1=round(a.scores.f1, 3),
                cited=[c.source for c in a.answer.citations],
            )
            for a in asked[:5]
        ],
    )
