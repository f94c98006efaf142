"""Fit the composite's weights to judged queries: coordinate ascent on mean nDCG@10 over the reranker's own traces.

A trace holds every criterion's raw score for every candidate, so any weighting can be replayed offline exactly as
the reranker would apply it (``composite.zscore`` per criterion over the candidates the model scored, ties in
retrieval order, the cascade's first-stage tail kept below). Coordinate ascent (Metzler & Croft, 2007) changes one
weight at a time over a geometric grid and keeps a change only when nDCG@10 rises; it starts from the hand-set
weights, from equal ones and (with few criteria) from the best points of a coarse grid, and keeps the hand-set
weights unless another weighting measures better. The weights are scale-free (z-scores), so a fit is written on
REBEL's scale: LLM relevance 1.

Example::

    >>> import numpy as np
    >>> query = JudgedQuery(scores={"good": np.array([1.0, 2.0, 3.0]), "noisy": np.array([3.0, 2.0, 1.0])},
    ...                     gains=np.array([0.0, 1.0, 3.0]), tail_gains=np.array([]), ideal_dcg=3.63)
    >>> fit = fit_weights([query], start={"good": 1.0, "noisy": 1.0})
    >>> fit.weights["good"] > fit.weights["noisy"], fit.ndcg > ndcg_at_10([query], {"good": 1.0, "noisy": 1.0})
    (True, True)
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from sift.rerank.composite import DIVERSITY, zscore
from sift.rerank.criteria import RELEVANCE
from sift.rerank.types import LLM_STAGE, RerankTrace, TraceCandidate

logger = logging.getLogger(__name__)

CUTOFF = 10
DISCOUNT = 1.0 / np.log2(np.arange(2, CUTOFF + 2))
# One weight's values tried while the others stay: 0 (the criterion left out) and factors of sqrt(2) from 1/16 to 16.
GRID = np.concatenate([[0.0], np.geomspace(1 / 16, 16, 17)])
# Every weighting on this coarser grid is tried first when there are few criteria (6^4 = 1,296 at most), and ascent
# starts from the best few as well as from the hand-set and equal weights.
COARSE = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
COARSE_MAX_CRITERIA, COARSE_STARTS = 4, 3


@dataclass(frozen=True)
class JudgedQuery:
    """One query's reranked candidates with their judgments: ``scores`` are the raw criterion scores of the
    candidates the composite ordered (NaN: not scored), in retrieval order; ``gains`` their graded relevance;
    ``tail_gains`` those of the candidates the cascade left in first-stage order below them; ``ideal_dcg`` the DCG@10
    of the best order of every document judged for the query (trec_eval's linear gain)."""

    scores: dict[str, np.ndarray]
    gains: np.ndarray
    tail_gains: np.ndarray
    ideal_dcg: float

    @classmethod
    def from_trace(cls, trace: RerankTrace, gains: dict[int, float], judged: list[float]) -> JudgedQuery:
        """From a rerank trace; ``gains`` maps a candidate's chunk id to its judged relevance (missing: 0),
        ``judged`` holds every judgment of the query. The candidates the model scored are the ones the composite
        ordered (all of them without a model)."""
        rows = sorted(trace.candidates, key=lambda r: r.retrieval_rank)
        ordered = [r for r in rows if r.stage == LLM_STAGE] or rows
        placed = {r.chunk_id for r in ordered}
        tail = sorted((r for r in rows if r.chunk_id not in placed), key=lambda r: r.final_rank)
        names = [name for name in trace.criterion_names() if name != DIVERSITY]
        weighed = [name for name in names if name in trace.weights]
        scores = {name: np.array([_raw(r, name) for r in ordered], dtype=np.float64) for name in weighed}
        ideal = np.sort(np.asarray(judged, dtype=np.float64))[::-1][:CUTOFF]
        return cls(
            scores=scores,
            gains=np.array([gains.get(r.chunk_id, 0.0) for r in ordered], dtype=np.float64),
            tail_gains=np.array([gains.get(r.chunk_id, 0.0) for r in tail[:CUTOFF]], dtype=np.float64),
            ideal_dcg=float(ideal @ DISCOUNT[: len(ideal)]),
        )

    def ndcg(self, weights: np.ndarray, names: list[str]) -> np.ndarray:
        """nDCG@10 under each column of ``weights`` (criteria x settings), ordered as ``combine`` orders."""
        if self.ideal_dcg <= 0:
            return np.zeros(weights.shape[1])
        z = np.column_stack([zscore(self.scores[n]) if n in self.scores else np.zeros(len(self.gains)) for n in names])
        composite = np.round(z @ weights, 9)
        order = np.argsort(-composite, axis=0, kind="stable")  # stable: ties keep retrieval order
        gains = np.vstack([self.gains[order], np.tile(self.tail_gains[:, None], (1, weights.shape[1]))])[:CUTOFF]
        return (DISCOUNT[: len(gains)] @ gains) / self.ideal_dcg


def _raw(row: TraceCandidate, name: str) -> float:
    score = next((s.score for s in row.criteria if s.name == name), None)
    return np.nan if score is None else score


def ndcg_at_10(queries: list[JudgedQuery], weights: dict[str, float]) -> float:
    """Mean nDCG@10 over the queries with these weights (criteria missing from ``weights`` weigh 0)."""
    names = sorted(weights)
    column = np.array([[weights[n]] for n in names])
    return round(float(np.mean([q.ndcg(column, names)[0] for q in queries])), 4) if queries else 0.0


class Fit(BaseModel):
    """A fitted weighting and the mean nDCG@10 it reached on the queries it was fitted to."""

    weights: dict[str, float]
    ndcg: float
    queries: int


def fit_weights(queries: list[JudgedQuery], start: dict[str, float], max_passes: int = 20) -> Fit:
    """Coordinate ascent over the criteria of ``start`` (the hand-set weights, tried first), returning the best
    weights found, on REBEL's scale."""
    names = sorted(start)
    starts = [np.array([start[n] for n in names], dtype=np.float64), np.ones(len(names))]
    if len(names) <= COARSE_MAX_CRITERIA:  # one weight at a time gets stuck: start from the coarse grid's best too
        coarse = np.array(list(itertools.product(COARSE, repeat=len(names)))).T
        coarse = coarse[:, coarse.any(axis=0)]
        found = _mean_ndcg(queries, names, coarse)
        starts += [coarse[:, k] for k in np.argsort(-found, kind="stable")[:COARSE_STARTS]]
    best_w, best = starts[0], -1.0
    for w in starts:
        w, score = _ascend(queries, names, w.copy(), max_passes)
        if score > best + 1e-9:
            best_w, best = w, score
    weights = dict(zip(names, _rebel_scale(best_w, names), strict=True))
    logger.info("Fitted weights on %d queries: %s (nDCG@10 %.4f)", len(queries), weights, best)
    return Fit(weights=weights, ndcg=round(best, 4), queries=len(queries))


def _ascend(queries: list[JudgedQuery], names: list[str], w: np.ndarray, max_passes: int) -> tuple[np.ndarray, float]:
    best = _mean_ndcg(queries, names, w[:, None])[0]
    for _ in range(max_passes):
        improved = False
        for j in range(len(names)):
            trials = np.tile(w[:, None], (1, len(GRID)))
            trials[j] = GRID * max(w.max(), 1e-12)  # relative to the largest weight: the scale does not matter
            if not trials.any(axis=0).all():
                trials[:, ~trials.any(axis=0)] = w[:, None]  # every weight 0 orders nothing
            found = _mean_ndcg(queries, names, trials)
            k = int(np.argmax(found))
            if found[k] > best + 1e-9:
                w, best, improved = trials[:, k].copy(), float(found[k]), True
        if not improved:
            break
    return w, float(best)


def _mean_ndcg(queries: list[JudgedQuery], names: list[str], weights: np.ndarray) -> np.ndarray:
    return np.mean([q.ndcg(weights, names) for q in queries], axis=0)


def _rebel_scale(w: np.ndarray, names: list[str]) -> list[float]:
    """Weights divided by the LLM relevance weight (REBEL's scale), or by the largest where relevance weighs 0."""
    unit = w[names.index(RELEVANCE.name)] if RELEVANCE.name in names else 0.0
    unit = unit if unit > 0 else w.max()
    return [round(float(x / unit), 4) for x in w]


class WeightsProfile(BaseModel):
    """Composite weights fitted for one set of models and one rerank mode (``sift tune``): the reranker's defaults
    wherever its models match ``identity``; weights set by hand still win."""

    name: str  # a short key derived from ``identity``
    identity: dict[str, str]  # the models, mode, strategy and relevance method the fit holds for
    weights: dict[str, float]
    fitted_on: list[str] = Field(default_factory=list)  # the datasets, e.g. "trec-dl19 (43 queries)"
    created: datetime | None = None
