"""The composite: a weighted sum of z-normalised criterion scores, with diversity as a property of the ordering.

Every criterion (LLM-scored, retrieval score, embedding similarity, ...) is z-normalised over the candidates it could
score, so weights are comparable whatever the criterion's units; a candidate a criterion could not score gets 0 (the
set's mean) and is marked ``fallback``, so it is neither helped nor hurt. Diversity is computed against the passages
already placed (MMR): a pointwise LLM sees one passage and cannot judge what the set already covers, while embeddings
can, cheaply and deterministically. Ties keep retrieval order.

Example::

    >>> import numpy as np
    >>> order, composite, rows = combine({"retrieval": np.array([3.0, 2.0, 1.0]),
    ...                                   "relevance": np.array([0.0, 9.0, np.nan])},
    ...                                  {"retrieval": 1.0, "relevance": 1.0})
    >>> order
    [1, 0, 2]
    >>> rows[2][1].fallback
    True
"""

from __future__ import annotations

import logging

import numpy as np

from sift.rerank.types import CriterionScore

logger = logging.getLogger(__name__)

DIVERSITY = "diversity"


def zscore(x: np.ndarray) -> np.ndarray:
    """z-scores of the finite entries; 0 for non-finite entries and for a criterion that does not vary."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    out = np.zeros_like(x)
    if ok.sum() >= 2:
        std = x[ok].std()
        if std > 1e-12:
            out[ok] = (x[ok] - x[ok].mean()) / std
    return out


def combine(
    scores: dict[str, np.ndarray],
    weights: dict[str, float],
    embeddings: np.ndarray | None = None,
    notes: dict[str, str] | None = None,
) -> tuple[list[int], np.ndarray, list[list[CriterionScore]]]:
    """Order candidates (given in retrieval order) by the weighted composite.

    ``scores`` maps criterion -> raw scores (nan where not scored); ``embeddings`` (unit rows) enable MMR diversity
    when ``weights`` has a ``diversity`` entry that ``scores`` does not. Returns (order, composite, rows) where rows[i]
    holds candidate i's CriterionScore list.
    """
    notes = notes or {}
    n = len(next(iter(scores.values()))) if scores else (len(embeddings) if embeddings is not None else 0)
    rows: list[list[CriterionScore]] = [[] for _ in range(n)]
    composite = np.zeros(n)
    for name, raw in scores.items():
        w = weights.get(name, 0.0)
        z = zscore(raw)
        composite += w * z
        for i in range(n):
            missing = not np.isfinite(raw[i])
            rows[i].append(
                CriterionScore(
                    name=name,
                    score=None if missing else float(raw[i]),
                    normalized=float(z[i]),
                    weight=w,
                    fallback=missing,
                    note=notes.get(name, "not scored; neutral" if missing else ""),
                )
            )
    w_div = weights.get(DIVERSITY, 0.0)
    if DIVERSITY in scores or not w_div:
        order = sorted(range(n), key=lambda i: (-round(composite[i], 9), i))
        return order, composite, rows
    if embeddings is None:
        for i in range(n):
            rows[i].append(
                CriterionScore(
                    name=DIVERSITY, score=None, weight=w_div, fallback=True, note="no embeddings; diversity not applied"
                )
            )
        order = sorted(range(n), key=lambda i: (-round(composite[i], 9), i))
        return order, composite, rows
    return _mmr(composite, embeddings, w_div, rows)


def _mmr(base: np.ndarray, emb: np.ndarray, w: float, rows):
    """Greedy MMR: at each step add the candidate maximising base + w * z(1 - max cosine to those already placed)."""
    n = len(base)
    sims = emb @ emb.T
    remaining = list(range(n))
    max_sim = np.full(n, -1.0)
    order, final = [], base.copy()
    while remaining:
        novelty = 1.0 - max_sim[remaining]
        z = zscore(novelty)
        total = base[remaining] + w * z
        k = max(range(len(remaining)), key=lambda j: (round(total[j], 9), -remaining[j]))
        i = remaining.pop(k)
        final[i] = total[k]
        rows[i].append(
            CriterionScore(
                name=DIVERSITY,
                score=float(novelty[k]),
                normalized=float(z[k]),
                weight=w,
                note="1 - max cosine to passages placed above (MMR)",
            )
        )
        order.append(i)
        max_sim = np.maximum(max_sim, sims[i])
    return order, final, rows
