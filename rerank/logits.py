"""The logit strategy: no free text. Each criterion's score is the expected value of the next-token distribution over
the score levels ("0".."10"), and relevance can instead be the query likelihood: the mean log-probability of the
query's tokens after the passage (UPR). Both run as prefix-shared batched forward passes on the local backend.

Example::

    >>> from sift.rerank.criteria import criterion
    >>> scores = judge_scores(lm, "lobster roll", blocks, [criterion("relevance"), criterion("depth")])  # doctest: +SKIP
    >>> scores.values.shape, scores.tokens                                                   # doctest: +SKIP
    ((20, 2), 3120)
"""

from __future__ import annotations

import numpy as np

from sift.rerank import prompts
from sift.rerank.criteria import Criterion
from sift.rerank.llm import LanguageModel, Scored


def judge_scores(lm: LanguageModel, query: str, blocks: list[str], criteria: list[Criterion]) -> Scored:
    """[n_passages, n_criteria] expected scores on each criterion's scale; nan where no level was readable."""
    levels = [[str(v) for v in range(c.scale + 1)] for c in criteria]
    judged = lm.judge(
        prompts.SYSTEM,
        lambda passage, question: prompts.judge_user(query, passage, question),
        blocks,
        [(prompts.judge_question(c), prompts.judge_prefill(c)) for c in criteria],
        levels,
    )
    probs = judged.values
    values = np.arange(probs.shape[2], dtype=np.float64)
    expected = np.nansum(probs * values, axis=2) + np.where(np.isnan(probs).all(axis=2), np.nan, 0.0)
    return Scored(expected, judged.tokens)


def query_likelihood(lm: LanguageModel, query: str, texts: list[str]) -> Scored:
    """Mean log P(query | passage) per passage; higher is more relevant."""
    return lm.query_likelihood(prompts.QL_HEAD, texts, prompts.QL_TAIL, query)


def importance(lm: LanguageModel, query: str, menu: list[Criterion]) -> Scored:
    """Two-turn inference without generation: the expected 0-5 importance of each menu criterion for this query,
    read in one batched pass (the query is the shared head, each criterion a tail)."""
    judged = lm.judge(
        prompts.SYSTEM,
        lambda passage, question: f"Query: {query}\n\n{passage}{question}",
        [""],
        [(prompts.importance_question(c), prompts.importance_prefill(c)) for c in menu],
        [[str(v) for v in range(6)] for _ in menu],
    )
    probs = judged.values[0]
    expected = np.nansum(probs * np.arange(probs.shape[1]), axis=1) + np.where(np.isnan(probs).all(axis=1), np.nan, 0.0)
    return Scored(expected, judged.tokens)
