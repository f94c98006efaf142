"""Fusing rankings: reciprocal rank (Cormack et al., 2009) and normalised-score sums (min-max or z-score).

Reciprocal rank needs only each list's order; a normalised sum needs both scores for every passage, which Sift has:
each first-stage retriever's candidates carry the dense cosine and the BM25 score (``hybrid.Retriever``). The figures
behind the default are in README.md ("Retrieval").

Example::

    >>> {i: round(score, 4) for i, score in reciprocal_rank([[1, 2], [3, 2]]).items()}  # 2: found by both
    {1: 0.0164, 2: 0.0323, 3: 0.0164}
    >>> normalised_sum([{1: 0.9, 2: 0.5}, {1: 0.0, 2: 7.0}], "minmax")
    {1: 1.0, 2: 1.0}
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

RRF_K = 60  # the constant of Cormack et al., used unchanged by most hybrid search engines
FUSIONS = ("rrf", "minmax", "zscore")


def reciprocal_rank(rankings: list[list[int]], k: int = RRF_K, weights: list[float] | None = None) -> dict[int, float]:
    """Each id's sum of ``weight / (k + rank)`` over the rankings that hold it (in order of first appearance);
    every ranking weighs 1 unless ``weights`` says otherwise (``bench/fusion_weights.py`` sweeps them)."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for position, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + position)
    return fused


def normalised_sum(
    signals: list[dict[int, float]], method: str, weights: list[float] | None = None
) -> dict[int, float]:
    """Each id's weighted sum (every signal weighs 1 unless ``weights`` says otherwise) over the signals of its score
    normalised over all ids (``minmax``: to 0-1; ``zscore``: mean 0, standard deviation 1). A signal that is equal
    for every id adds nothing."""
    ids = list(dict.fromkeys(i for signal in signals for i in signal))
    total = np.zeros(len(ids))
    for signal, weight in zip(signals, weights or [1.0] * len(signals), strict=True):
        values = np.array([signal.get(i, 0.0) for i in ids], dtype=np.float64)
        spread = (values.max() - values.min()) if method == "minmax" else values.std()
        if len(values) and spread > 0:
            total += weight * (values - (values.min() if method == "minmax" else values.mean())) / spread
    return dict(zip(ids, total.tolist(), strict=True))
