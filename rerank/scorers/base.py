"""The scorer protocol: one small class per signal, each returning a ``Signal``.

A scorer reads the query and the candidates and returns raw scores for the criteria it knows (nan where it could not
score a candidate), how it scored them, notes, and the LLM tokens it ran: nothing is kept on a shared object, so two
reranks running at once on one model each count their own tokens. The reranker runs the scorers its mode needs and
applies the composite last (``sift.rerank.composite``).

Example::

    >>> import numpy as np
    >>> signal = Signal({"lexical": np.array([0.9, 0.4])}, method="bm25 over the corpus")
    >>> signal.methods()
    {'lexical': 'bm25 over the corpus'}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    """What one scorer found: criterion -> raw scores (one per candidate, nan where not scored)."""

    scores: dict[str, np.ndarray]
    method: str
    notes: dict[str, str] = field(default_factory=dict)
    tokens: int = 0  # LLM tokens run for this signal
    vectors: np.ndarray | None = None  # unit passage embeddings, when the scorer made them (the composite's MMR)

    def methods(self) -> dict[str, str]:
        return dict.fromkeys(self.scores, self.method)


class Scorer(Protocol):
    """Scores every candidate on one signal. ``name`` labels the scorer's time in the trace."""

    name: str

    def score(self, query: str, candidates: list[Candidate]) -> Signal: ...
