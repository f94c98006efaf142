"""The criteria a passage can be judged on, REBEL's one-turn defaults, and the menu two-turn inference picks from.

LLM criteria are scored on REBEL's scales (relevance 0-10, the others 0-5). REBEL's one-turn composite is
``relevance + 0.5 * (depth + diversity + clarity + authoritativeness + recency)`` in raw points; Sift z-normalises
every criterion within the candidate set, which removes the scales, so the same balance per unit of full scale is
relevance 1.0 and 0.25 for each secondary criterion (0.5 * 5 / 10). Those are ``REBEL_ONE_TURN_WEIGHTS``.

Example::

    >>> from sift.rerank.criteria import criterion
    >>> criterion("depth").scale
    5
    >>> criterion("humour").description  # free-form criteria (two-turn) describe themselves
    'humour'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Criterion:
    name: str
    label: str
    description: str
    scale: int = 5


RELEVANCE = Criterion("relevance", "Relevance", "how directly the passage answers the query", 10)

KNOWN = {
    c.name: c
    for c in [
        RELEVANCE,
        Criterion("depth", "Depth", "how thorough and detailed the passage is"),
        Criterion("diversity", "Diversity", "how many viewpoints or angles it presents"),
        Criterion("clarity", "Clarity", "how clear, precise and specific it is"),
        Criterion("authoritativeness", "Authoritativeness", "how credible and expert its source is"),
        Criterion("recency", "Recency", "how up to date its information is"),
        Criterion("specificity", "Specificity", "how precisely it addresses the exact question asked"),
        Criterion("accuracy", "Accuracy", "how factually correct it appears"),
    ]
}

ONE_TURN = ["depth", "diversity", "clarity", "authoritativeness", "recency"]
REBEL_SECONDARY_WEIGHT = 0.5  # REBEL's one-turn weight of each secondary criterion, in raw points
REBEL_ONE_TURN_WEIGHTS = {"relevance": 1.0, **dict.fromkeys(ONE_TURN, REBEL_SECONDARY_WEIGHT * 5 / RELEVANCE.scale)}
TWO_TURN_MENU = [name for name in KNOWN if name != "relevance"]

# First-stage signals, criteria of their own so that a weak LLM cannot push the ranking below retrieval: the
# query-passage cosine and the BM25 score, both computed for every candidate whichever retriever found it. (Traces from
# Sift 0.1 name them "embedding" and "retrieval"; there "retrieval" was the same cosine again.)
DENSE = "dense"
LEXICAL = "lexical"


def criterion(name: str) -> Criterion:
    """The known criterion of that name, or a free-form one (two-turn) described by its own name."""
    key = name.strip().lower()
    return KNOWN.get(key) or Criterion(key, name.strip().capitalize(), key)
