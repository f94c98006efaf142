"""The names of the reranker's modes and strategies, defined once: the settings, the CLI and the UI refer to these.

Example::

    >>> from sift.rerank.modes import Mode, Strategy
    >>> Mode("rebel-two-turn").uses_llm, Mode.NONE.uses_llm
    (True, False)
    >>> [s.value for s in Strategy]
    ['logits', 'generative', 'rebel-reference']
    >>> Strategy.REBEL_REFERENCE.yardstick
    True
"""

from __future__ import annotations

import logging
from enum import StrEnum

logger = logging.getLogger(__name__)


class Mode(StrEnum):
    """What the reranker judges a passage on.

    none: retrieval order. relevance: the LLM judges relevance. rebel-one-turn: relevance + depth, diversity,
    clarity, authoritativeness, recency. rebel-two-turn: criteria inferred per query. cross-encoder: a
    sentence-transformers CrossEncoder scores relevance. All but none blend in the first-stage signals.
    """

    NONE = "none"
    RELEVANCE = "relevance"
    REBEL_ONE_TURN = "rebel-one-turn"
    REBEL_TWO_TURN = "rebel-two-turn"
    CROSS_ENCODER = "cross-encoder"

    @property
    def uses_llm(self) -> bool:
        """Whether the mode scores with the LLM (and so has a strategy)."""
        return self in (Mode.RELEVANCE, Mode.REBEL_ONE_TURN, Mode.REBEL_TWO_TURN)


class Strategy(StrEnum):
    """How the LLM gives its scores.

    logits: read from next-token probabilities, no text generated (fast). generative: the model writes its scores
    (for servers without log-probabilities). rebel-reference: REBEL's published procedure (listwise prompts of 10
    passages, the model writes each one's final score), for the rebel modes only: a yardstick to measure Sift
    against, not a way to rank for answers.
    """

    LOGITS = "logits"
    GENERATIVE = "generative"
    REBEL_REFERENCE = "rebel-reference"

    @property
    def yardstick(self) -> bool:
        """Whether the strategy is there to be measured against (``sift eval rerank``) rather than used."""
        return self == Strategy.REBEL_REFERENCE


class RelevanceMethod(StrEnum):
    """How the logits strategy scores relevance: mean log P(query | passage), or the expected 0-10 judged score."""

    QUERY_LIKELIHOOD = "query-likelihood"
    JUDGE = "judge"
