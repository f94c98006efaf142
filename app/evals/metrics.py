"""Answer metrics (SQuAD's exact match and token F1) and ranking metrics (ranx, trec_eval's definitions).

Example::

    >>> normalize_answer("The Eiffel  Tower!")
    'eiffel tower'
    >>> round(token_f1("in the year 1889", "1889"), 3)
    0.5
    >>> best_over_references("Yes, it was.", ["No", "Yes"], exact_match)
    0.0
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Callable

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


def contains_reference(prediction: str, reference: str) -> float:
    """1.0 when the prediction holds the reference's normalised words in a row, as whole words.

    >>> contains_reference("It opened in 1945, at dawn.", "1945"), contains_reference("In 1945.", "9")
    (1.0, 0.0)
    """
    expected = normalize_answer(reference)
    return float(bool(expected) and f" {expected} " in f" {normalize_answer(prediction)} ")


def best_over_references(prediction: str, references: list[str], metric: Callable[[str, str], float]) -> float:
    """A question with several reference answers scores its best match, as SQuAD does."""
    return max((metric(prediction, r) for r in references), default=0.0)


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
