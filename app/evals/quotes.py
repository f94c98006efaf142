"""``sift tune-quotes``: fit the quote scorer's weights (``sift.app.quotes``) on CMU WikiQA, and measure the fit on
held-out questions.

Each question is searched and reranked as Sift answers it; every sentence of its top-n passages gets the scorer's
signals, and is labelled right when it contains a reference answer (SQuAD-normalised, whole words). A logistic
regression over the training questions' sentences gives the weights; on the held-out questions (the seeded sample
``sift eval qa --limit`` takes, up to ``HELD_OUT``, so the eval never measures a question the fit saw) the report
gives how often the top sentence is right, for the fit, for each signal alone, and for an oracle that knows the
reference, and how often the top sentence is right at each level of its chance (what ``answer_quote_addresses``
is set from).

Example::

    >>> fit = tune_quotes(Settings(), Path("../shared/datasets/cmu-wikiqa-s10"), limit=200)  # doctest: +SKIP
    >>> fit.held_out["fitted"]                                                             # doctest: +SKIP
    0.31
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sift.app.config import Settings
from sift.app.evals.common import EvalProgress, ingest_dataset, scratch_sift
from sift.app.evals.metrics import contains_any
from sift.app.evals.qa import CORPUS, Question, load_cmu, sample
from sift.app.models import quote_identity
from sift.app.pipeline import Sift
from sift.app.profiles import profile_name, save_profile
from sift.app.quotes import FEATURES, QuoteScorer
from sift.ingestion.ingest import IngestItem
from sift.rerank.tuning import WeightsProfile

logger = logging.getLogger(__name__)

HELD_OUT = 250
"""The held-out questions: ``sift eval qa``'s seeded sample of this many (a smaller --limit takes its first ones)."""
CONFIDENCE_LEVELS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass
class Labelled:
    """One question's sentences: their signals [sentences, features] and whether each holds a reference."""

    question: Question
    signals: np.ndarray
    right: np.ndarray


@dataclass
class QuoteFit:
    weights: dict[str, float]
    train_questions: int
    held_out_questions: int
    held_out: dict[str, float]  # how often the top sentence holds a reference: fitted, each signal alone, oracle
    precision_at: dict[str, dict[str, float]] = field(default_factory=dict)  # chance >= level: share kept, right
    profile_path: str | None = None


def labelled(sift: Sift, questions: list[Question], stage: str, on_progress: EvalProgress | None) -> list[Labelled]:
    scorer = sift.quote_scorer(weights={})
    reranker = sift.reranker()
    found = []
    for done, question in enumerate(questions, start=1):
        passages = reranker.rerank(question.text, sift.search(question.text, CORPUS)).candidates
        quotes, signals = scorer.features(question.text, passages[: sift.settings.answer_top_n])
        right = np.array([float(contains_any(q.text, list(question.references))) for q in quotes])
        found.append(Labelled(question, signals, right))
        if on_progress:
            on_progress(stage, done, len(questions))
    return found


def _top_right(examples: list[Labelled], score) -> float:
    hits = [float(e.right[int(np.argmax(score(e.signals)))]) for e in examples if len(e.right)]
    return round(sum(hits) / max(len(examples), 1), 4)


def tune_quotes(
    settings: Settings,
    folder: Path,
    limit: int | None = None,
    held_out: int = 100,
    write: bool = True,
    on_progress: EvalProgress | None = None,
) -> QuoteFit:
    """Fit on up to ``limit`` training questions (default: all outside the held-out sample) and report on the first
    ``held_out`` questions of the held-out sample; write the weights as the configured models' quote profile."""
    from sklearn.linear_model import LogisticRegression

    questions, _ = load_cmu(folder)
    reserved = sample(questions, HELD_OUT)
    kept = {id(q) for q in reserved}
    training = [q for q in questions if id(q) not in kept]
    training = sample(training, limit)
    sift = scratch_sift(settings, folder)
    articles = sorted({q.article for q in questions})
    ingest_dataset(sift, CORPUS, [IngestItem.from_path(folder / a, a) for a in articles], on_progress)
    train = labelled(sift, training, "Scoring training sentences", on_progress)
    test = labelled(sift, reserved[:held_out], "Scoring held-out sentences", on_progress)

    # Kept beside the reports, so that a refit (other features, another model) needs no second pass over the LLM.
    results = settings.resolved_results_dir()
    results.mkdir(parents=True, exist_ok=True)
    np.savez(
        results / "quote-signals.npz",
        **{
            f"{part}_{i}_{kind}": getattr(e, kind)
            for part, group in (("train", train), ("test", test))
            for i, e in enumerate(group)
            for kind in ("signals", "right")
        },
    )
    x = np.vstack([e.signals for e in train])
    y = np.concatenate([e.right for e in train])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    weights = {name: round(float(w), 4) for name, w in zip(FEATURES, model.coef_[0], strict=True)}
    weights["intercept"] = round(float(model.intercept_[0]), 4)
    scorer = QuoteScorer(None, None, weights)
    report = {"fitted": _top_right(test, scorer.chances)}
    for column, name in enumerate(FEATURES):
        report[f"{name} alone"] = _top_right(test, lambda s, c=column: s[:, c])
    report["oracle"] = round(sum(float(e.right.any()) for e in test) / max(len(test), 1), 4)
    chances = [scorer.chances(e.signals) for e in test]
    tops = [(c.max(), e.right[int(np.argmax(c))]) for c, e in zip(chances, test, strict=True) if len(c)]
    precision = {}
    for level in CONFIDENCE_LEVELS:
        kept_tops = [right for chance, right in tops if chance >= level]
        precision[str(level)] = {
            "kept": round(len(kept_tops) / max(len(test), 1), 4),
            "right": round(float(np.mean(kept_tops)), 4) if kept_tops else None,
        }
    fit = QuoteFit(weights, len(train), len(test), report, precision)
    if write:
        identity = quote_identity(settings)
        profile = WeightsProfile(
            name=profile_name(identity),
            identity=identity,
            weights=weights,
            fitted_on=[f"cmu-wikiqa-s10 ({len(train)} questions, {len(y)} sentences)"],
            created=datetime.now(UTC),
        )
        fit.profile_path = str(save_profile(settings, profile))
    return fit
