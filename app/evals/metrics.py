"""Answer metrics (SQuAD's exact match and token F1; whether an answer contains a reference, and how much of it),
the ceiling the passages an answer was written from set, and ranking metrics (ranx, trec_eval's definitions).

Example::

    >>> normalize_answer("The Eiffel  Tower!")
    'eiffel tower'
    >>> round(token_f1("in the year 1889", "1889"), 3)
    0.5
    >>> best_over_references("Yes, it was.", ["No", "Yes"], exact_match)
    0.0
    >>> contains_any("Yes, it was.", ["No", "Yes"])
    True
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sift.app.evidence import sentences

logger = logging.getLogger(__name__)

RANKING_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (SQuAD v1.1's F1)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def contains_reference(prediction: str, reference: str) -> bool:
    """Whether the normalised reference stands in the normalised prediction as whole tokens, in order: a long right
    answer counts, which exact match would not. A reference with no words after normalisation is never contained.

    >>> contains_reference("It was built in 1759 by Smeaton [1].", "1759")
    True
    >>> contains_reference("The war ended in 1945.", "9")  # a token, not a character: "9" is not in "1945"
    False
    >>> contains_reference("Smeaton, John.", "John Smeaton")  # in order
    False
    """
    expected = normalize_answer(reference)
    return bool(expected) and f" {expected} " in f" {normalize_answer(prediction)} "


def contains_any(prediction: str, references: list[str]) -> bool:
    """Whether the prediction contains one of the references (``contains_reference``)."""
    return any(contains_reference(prediction, r) for r in references)


def token_recall(prediction: str, reference: str) -> float:
    """The share of the normalised reference's tokens (counted with repeats) that the prediction has, in any order;
    0 for a reference with no words.

    >>> token_recall("Volta was not a chemist", "Volta was not a professor of chemistry")
    0.5
    """
    predicted, expected = Counter(normalize_answer(prediction).split()), Counter(normalize_answer(reference).split())
    return sum((predicted & expected).values()) / sum(expected.values()) if expected else 0.0


def best_over_references(prediction: str, references: list[str], metric: Callable[[str, str], float]) -> float:
    """A question with several reference answers scores its best match, as SQuAD does."""
    return max((metric(prediction, r) for r in references), default=0.0)


@dataclass(frozen=True)
class Ceiling:
    """How right an answer written from some passages could be: ``passages``, they contain a reference; the best
    single sentence of them by each measure (``sentence_contains``: some sentence contains a reference)."""

    passages: bool
    sentence_contains: bool
    sentence_f1: float
    sentence_recall: float


def ceiling(passages: list[str], references: list[str]) -> Ceiling:
    """The ceiling that ``passages`` (the ones an answer was written from) set for its ``references``; sentences as
    the evidence check splits them (``evidence.sentences``).

    >>> found = ceiling(["Smeaton built the third tower. It was first lit in 1759.", "Rudyard's burned."], ["1759"])
    >>> found.passages, found.sentence_contains, round(found.sentence_f1, 3), found.sentence_recall
    (True, True, 0.286, 1.0)
    """
    lines = [text[start:end] for text in passages for start, end in sentences(text)]
    best = partial(best_over_references, references=references)
    return Ceiling(
        passages=any(contains_any(text, references) for text in passages),
        sentence_contains=any(contains_any(line, references) for line in lines),
        sentence_f1=max((best(line, metric=token_f1) for line in lines), default=0.0),
        sentence_recall=max((best(line, metric=token_recall) for line in lines), default=0.0),
    )


def ranking_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], metrics: tuple[str, ...] = RANKING_METRICS
) -> dict[str, float]:
    """Mean of each metric over the judged queries (ranx; nDCG with trec_eval's linear gain).

    ``run`` maps query id -> {document id: score}, higher first. A judged query missing from the run counts as 0.
    """
    from ranx import Qrels, Run, evaluate

    judged = {q: docs for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    full_run = {q: run.get(q) or {"__none__": 0.0} for q in judged}
    values = evaluate(Qrels(judged), Run(full_run), list(metrics), make_comparable=True)
    if len(metrics) == 1:
        values = {metrics[0]: values}
    return {m: round(float(values[m]), 4) for m in metrics}
