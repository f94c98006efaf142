"""``sift eval rewrite``: follow-up questions made to stand alone, on CANARD's human rewrites (QuAC conversations).

Each question comes with the conversation before it (the article's title, then earlier questions and answers; each
earlier exchange becomes a ``Turn`` that cites the article) and a person's stand-alone rewrite. A question is
*self-contained* when it opens its conversation or the person left it as it was; the others are *follow-ups*. Per
method, reported: the share of self-contained questions left unchanged, the follow-ups' token F1 against the
person's rewrite (beside the F1 of the question as asked, the bar to beat), the share of follow-ups whose rewrite
names what the person added (at least half of the content words the person added), and the time per question.

Methods: ``legacy`` (Sift 0.1's rewriter, the baseline: always asks the LLM), ``referent`` (the referent filled in
from the conversation, no LLM) and ``referent+llm`` (the LLM asked last, its rewrite kept only if it keeps the
question's words). ``--limit`` takes a seeded sample (seed 0), the same for every method.

Example::

    >>> report = evaluate_rewrite(Settings(), Path("../shared/datasets/canard-dev"), ["referent"])  # doctest: +SKIP
    >>> report.rows[0].metrics["unchanged_self_contained"]                                          # doctest: +SKIP
    0.988
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, mean
from sift.app.evals.metrics import normalize_answer, token_f1
from sift.app.evals.reports import Report, ReportRow
from sift.app.followup import Turn, legacy_rewrite, standalone_question

logger = logging.getLogger(__name__)

METHODS = ("legacy", "referent", "referent+llm")
DATASET_FILE = "dev.json"


@dataclass(frozen=True, eq=False)  # hashed by identity: two examples may read the same
class Example:
    """One CANARD question: the conversation before it, the question, and a person's stand-alone rewrite."""

    history: list[Turn]
    question: str
    rewrite: str
    question_no: int

    @property
    def self_contained(self) -> bool:
        return self.question_no == 1 or normalize_answer(self.rewrite) == normalize_answer(self.question)


def load_canard(folder: Path) -> list[Example]:
    """CANARD's questions; History is [article title, section title, q1, a1, q2, a2, ...]."""
    path = folder / DATASET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not the CANARD folder: no {DATASET_FILE}")
    examples = []
    for item in json.loads(path.read_text()):
        title, _section, *exchanges = item["History"]
        history = [Turn(q, a, (title,)) for q, a in zip(exchanges[::2], exchanges[1::2], strict=False)]
        examples.append(Example(history, item["Question"], item["Rewrite"], int(item["Question_no"])))
    return examples


def added_words(example: Example) -> set[str]:
    """The content words the person's rewrite added to the question (what a rewrite should name): no stop words
    ("the", "did"), which name nothing."""
    asked = set(normalize_answer(example.question).split())
    return {w for w in normalize_answer(example.rewrite).split() if w not in asked and w not in ENGLISH_STOP_WORDS}


def names_added(rewritten: str, example: Example) -> bool:
    wanted = added_words(example)
    return len(wanted & set(normalize_answer(rewritten).split())) >= len(wanted) / 2


def rewriters(settings: Settings, methods: list[str]) -> dict[str, Callable[[str, list[Turn]], str]]:
    """Method name -> (question, history) -> the question to search for; the LLM loads only if a method needs it."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown rewrite method {unknown[0]!r}; choose from {', '.join(METHODS)}.")
    llm = None
    if any(m != "referent" for m in methods):
        from sift.app.models import language_model

        llm = language_model(settings)
    every = {
        "legacy": lambda q, h: legacy_rewrite(q, h, llm).standalone,
        "referent": lambda q, h: standalone_question(q, h).standalone,
        "referent+llm": lambda q, h: standalone_question(q, h, llm).standalone,
    }
    return {m: every[m] for m in methods}


def evaluate_rewrite(
    settings: Settings,
    folder: Path,
    methods: list[str] | None = None,
    limit: int | None = None,
    on_progress: EvalProgress | None = None,
    command: str | None = None,
) -> Report:
    """Unchanged self-contained questions, follow-ups' F1 and named additions, and time per question, per method."""
    examples = load_canard(folder)
    chosen = examples if not limit or limit >= len(examples) else random.Random(0).sample(examples, limit)
    follow_ups = [e for e in chosen if not e.self_contained]
    named = [e for e in follow_ups if added_words(e)]  # rewrites that only reword add nothing to name
    report = Report.new(
        "rewrite",
        folder,
        "f1",
        command=command,
        setup={
            "questions": len(chosen),
            "questions_available": len(examples),
            "sample": f"seeded (0) sample of {limit}" if limit and limit < len(examples) else "all",
            "self_contained": len(chosen) - len(follow_ups),
            "follow_ups": len(follow_ups),
            "follow_ups_with_added_words": len(named),
            "llm_model": settings.llm_base_url or settings.llm_model,
        },
    )
    as_asked = _share([token_f1(e.question, e.rewrite) for e in follow_ups])
    for method, rewrite in rewriters(settings, list(methods or METHODS)).items():
        outputs: dict[Example, str] = {}
        times = []
        for i, example in enumerate(chosen):
            start = time.perf_counter()
            outputs[example] = rewrite(example.question, example.history)
            times.append(1000 * (time.perf_counter() - start))
            if on_progress:
                on_progress(f"Rewriting with {method}", i + 1, len(chosen))
        report.rows.append(
            ReportRow(
                mode=method,
                strategy=None,
                queries=len(chosen),
                metrics={
                    "unchanged_self_contained": _share(
                        [outputs[e].strip() == e.question.strip() for e in chosen if e.self_contained]
                    ),
                    "f1": _share([token_f1(outputs[e], e.rewrite) for e in follow_ups]),
                    "f1 as asked": as_asked,  # the bar: the follow-up searched for as it was asked
                    "names_added": _share([names_added(outputs[e], e) for e in named]),
                },
                ms_per_query=mean(times),
                timings_ms={"rewrite": mean(times)},
            )
        )
    return report


def _share(values: list[float] | list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
