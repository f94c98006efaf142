"""The LLM stage's latency budget: how many of the cascade's passages the model can score in a given number of
seconds, from the prefill rate measured on this machine.

Scoring a passage costs its own tokens plus a few of the prompt's (the question asked after it, the query), and the
model runs them at a rate that depends on the machine and on what else runs on it. ``PrefillRate`` keeps a running
estimate of both, updated from every LLM stage the reranker times; ``passages_within`` takes the passages in their
cheap (first-stage) order and keeps the longest prefix whose predicted time fits the budget.

Example::

    >>> rate = PrefillRate(tokens_per_s=1000.0, overhead_tokens=50.0)
    >>> passages_within(rate.seconds([200, 250, 150, 200]), budget_s=0.6)
    2
    >>> rate.record(passage_tokens=400, passages=2, tokens=500, seconds=1.0)  # a slower machine than guessed
    >>> round(rate.tokens_per_s), round(rate.overhead_tokens)
    (500, 50)
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

# Before any measurement: SmolLM2-135M (fp32, torch) prefills about 1,000 tokens/s on two CPU cores (issue #16), and
# relevance by query likelihood adds about 50 tokens per passage to its text (the question after it, the query).
FIRST_TOKENS_PER_S = 1000.0
FIRST_OVERHEAD_TOKENS = 50.0


@dataclass
class PrefillRate:
    """A running estimate (exponentially weighted, ``smoothing`` the weight of the newest measurement) of the LLM
    stage's tokens per second and of the prompt tokens each passage adds to its own. Safe to share between threads:
    the reranks of several sessions update one estimate."""

    tokens_per_s: float = FIRST_TOKENS_PER_S
    overhead_tokens: float = FIRST_OVERHEAD_TOKENS
    smoothing: float = 0.5
    measured: int = 0  # LLM stages recorded; the first replaces the first guess outright
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def seconds(self, passage_tokens: list[int] | np.ndarray) -> np.ndarray:
        """Predicted seconds to score each passage, given its text's token count."""
        return (np.asarray(passage_tokens, dtype=np.float64) + self.overhead_tokens) / self.tokens_per_s

    def record(self, passage_tokens: int, passages: int, tokens: int, seconds: float) -> None:
        """Fold in one LLM stage: ``passages`` passages of ``passage_tokens`` text tokens in all, ``tokens`` run
        through the model, in ``seconds``."""
        if passages < 1 or tokens < 1 or seconds <= 0:
            return
        rate = tokens / seconds
        overhead = max(0.0, (tokens - passage_tokens) / passages)
        with self.lock:
            weight = 1.0 if self.measured == 0 else self.smoothing
            self.tokens_per_s += weight * (rate - self.tokens_per_s)
            self.overhead_tokens += weight * (overhead - self.overhead_tokens)
            self.measured += 1


def passages_within(seconds: np.ndarray, budget_s: float) -> int:
    """How many of the passages (best first) fit the budget together: at least one, so the mode's model always has
    its say on the best passage.

    >>> passages_within(np.array([0.3, 0.3, 0.3]), 0.01), passages_within(np.array([0.3, 0.3, 0.3]), 10.0)
    (1, 3)
    """
    fits = int(np.searchsorted(np.cumsum(seconds), budget_s, side="right"))
    return max(1, min(fits, len(seconds)))
