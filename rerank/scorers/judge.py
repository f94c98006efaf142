"""The logit judge: each criterion's score is the expected value of the model's next-token distribution over the
score levels ("0".."10"), read in prefix-shared batched passes. No text is generated, so nothing needs parsing.

Example::

    >>> from sift.rerank.criteria import criterion
    >>> scorer = LogitJudge(lm, [criterion("relevance"), criterion("depth")])   # doctest: +SKIP
    >>> sorted(scorer.score("lobster roll", candidates).scores)                 # doctest: +SKIP
    ['depth', 'relevance']
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank import prompts
from sift.rerank.criteria import Criterion
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


def expected_levels(probs: np.ndarray) -> np.ndarray:
    """The expected level along the last axis of level probabilities; nan where no level was readable.

    >>> expected_levels(np.array([[0.5, 0.5, 0.0], [np.nan, np.nan, np.nan]]))
    array([0.5, nan])
    """
    values = np.arange(probs.shape[-1], dtype=np.float64)
    return np.nansum(probs * values, axis=-1) + np.where(np.isnan(probs).all(axis=-1), np.nan, 0.0)


class LogitJudge:
    name = "llm_judge"

    def __init__(self, lm, criteria: list[Criterion]):
        self.lm = lm
        self.criteria = criteria

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        found = self.lm.judge(
            prompts.SYSTEM,
            lambda passage, question: prompts.judge_user(query, passage, question),
            [prompts.candidate_block(c) for c in candidates],
            [(prompts.judge_question(c), prompts.judge_prefill(c)) for c in self.criteria],
            [[str(v) for v in range(c.scale + 1)] for c in self.criteria],
        )
        values = expected_levels(found.values)
        return Signal(
            {c.name: values[:, j] for j, c in enumerate(self.criteria)},
            "expected score from next-token logits",
            {c.name: found.note for c in self.criteria} if found.note else {},
            tokens=found.tokens,
        )
