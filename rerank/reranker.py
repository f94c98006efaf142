"""The reranker: one face, ``Reranker.rerank(query, candidates) -> RerankResult``, whatever the mode and strategy.

Modes: ``none`` (retrieval order, with a trace), ``relevance`` (the LLM judges relevance only), ``rebel-one-turn``
(relevance + REBEL's five fixed criteria), ``rebel-two-turn`` (criteria and weights first inferred for the query),
``cross-encoder`` (a sentence-transformers CrossEncoder scores relevance). Strategies for the LLM modes: ``logits``
(expected score from next-token probabilities, relevance by query likelihood; no text generated) and ``generative``
(the model writes its scores; REBEL's way). In every mode the first-stage signals — the retrieval score and the
query-passage embedding similarity — are criteria of the composite too, so a weak model cannot sink the ranking.

Example::

    >>> from sift.rerank import Reranker
    >>> reranker = Reranker("relevance", "logits", lm=language_model(settings), embedder=minilm)  # doctest: +SKIP
    >>> result = reranker.rerank("how do lobsters molt", candidates)                                  # doctest: +SKIP
    >>> result.trace.to_dict()["candidates"][0]["final_rank"]                                         # doctest: +SKIP
    1
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from sift.rerank import generative, logits
from sift.rerank.composite import DIVERSITY, combine
from sift.rerank.criteria import (EMBEDDING, ONE_TURN, REBEL_ONE_TURN_WEIGHTS, RELEVANCE, RETRIEVAL, TWO_TURN_MENU,
                             Criterion, criterion)
from sift.rerank.llm import LanguageModel
from sift.rerank.prompts import passage_block
from sift.rerank.types import RankedCandidate, RerankResult, RerankTrace
from sift.retrieval.types import Candidate

MODES = ("none", "relevance", "rebel-one-turn", "rebel-two-turn", "cross-encoder")
LLM_MODES = ("relevance", "rebel-one-turn", "rebel-two-turn")
STRATEGIES = ("logits", "generative")

# First-stage signals' weights, on REBEL's scale (LLM relevance 1.0). Chosen on DL19 (rerank/README.md): MiniLM
# similarity is the strongest signal the packaged models have (0.642 alone over the BM25 top-100, 0.656 with BM25 at a
# quarter of its weight), and SmolLM2-135M's relevance only helps as a tie-breaker-sized term beside it.
# With a stronger LLM, lower these (SIFT_RERANK_WEIGHTS).
FIRST_STAGE_WEIGHTS = {EMBEDDING: 4.0, RETRIEVAL: 1.0}
TWO_TURN_MAX = 3  # inferred secondary criteria kept per query: bounds the cost of the second turn


def default_weights(mode: str) -> dict[str, float]:
    if mode == "none":
        return {}
    if mode == "rebel-one-turn":
        return {**REBEL_ONE_TURN_WEIGHTS, **FIRST_STAGE_WEIGHTS}
    return {RELEVANCE.name: 1.0, **FIRST_STAGE_WEIGHTS}  # relevance, cross-encoder; two-turn adds inferred ones


@dataclass
class Reranker:
    """Reorders candidates; holds the models the mode needs (``lm``: a LocalLM or ServerLM; ``embedder``: anything
    with a sentence-transformers ``encode``; ``cross_encoder``: a sentence-transformers CrossEncoder)."""

    mode: str = "relevance"
    strategy: str | None = "logits"
    lm: LanguageModel | None = None
    embedder: object | None = None
    cross_encoder: object | None = None
    weights: dict[str, float] | None = None  # overrides, merged over default_weights(mode)
    relevance_method: str = "query-likelihood"  # logits strategy: "query-likelihood" or "judge"
    batch_size: int = 16
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Unknown rerank mode {self.mode!r}; choose from {', '.join(MODES)}.")
        if self.mode in LLM_MODES:
            if self.strategy not in STRATEGIES:
                raise ValueError(f"Unknown strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}.")
            if self.lm is None:
                raise ValueError(f"Mode {self.mode!r} needs a language model.")
        else:
            self.strategy = None
        if self.mode == "cross-encoder" and self.cross_encoder is None:
            raise ValueError("Mode 'cross-encoder' needs a CrossEncoder.")
        if self.relevance_method not in ("query-likelihood", "judge"):
            raise ValueError("relevance_method is 'query-likelihood' or 'judge'.")

    @property
    def model_name(self) -> str | None:
        if self.mode in LLM_MODES:
            return getattr(self.lm, "name", None)
        if self.mode == "cross-encoder":
            return str(getattr(self.cross_encoder, "model_name_or_path", None) or type(self.cross_encoder).__name__)
        return None

    def rerank(self, query: str, candidates: list[Candidate]) -> RerankResult:
        start = time.perf_counter()
        timings: dict[str, float] = {}
        spent: list[int] = []  # tokens of each model call this rerank makes; the model may serve others meanwhile
        weights = {**default_weights(self.mode), **(self.weights or {})}
        scores: dict[str, np.ndarray] = {}
        methods: dict[str, str] = {}
        notes: dict[str, str] = {}
        inferred = None
        n = len(candidates)

        if self.mode == "none" or n == 0:
            scores[RETRIEVAL] = np.array([c.score for c in candidates], dtype=np.float64)
            weights, methods = {RETRIEVAL: 0.0}, {RETRIEVAL: "recorded; retrieval order kept"}
            order, composite, rows = combine(scores, weights)  # all weights 0: ties keep retrieval order
        else:
            scores[RETRIEVAL] = np.array([c.score for c in candidates], dtype=np.float64)
            methods[RETRIEVAL] = "first-stage score"
            embeddings = self._embed(query, candidates, scores, methods, notes, timings)
            secondary = self._secondary_criteria(query, weights, timings, spent)
            if self.mode == "rebel-two-turn":
                secondary, inferred = secondary
            if weights.get("recency") and "recency" not in {c.name for c in secondary} and any(
                    c.document_date for c in candidates):
                secondary.append(criterion("recency"))  # a weight alone asks for it in any mode, when dated
            self._score(query, candidates, secondary, embeddings, scores, methods, notes, timings, spent)
            t = time.perf_counter()
            order, composite, rows = combine(scores, weights, embeddings, notes)
            if DIVERSITY in weights and DIVERSITY not in scores:
                methods[DIVERSITY] = "mmr over embeddings" if embeddings is not None else "unavailable"
            timings["composite"] = _ms(t)

        ranked = []
        for final, i in enumerate(order, start=1):
            c = candidates[i]
            ranked.append(RankedCandidate(c, c.rank, c.score, rows[i], float(composite[i]), final, c.rank - final))
        timings["total"] = _ms(start)
        trace = RerankTrace(
            query=query, mode=self.mode, strategy=self.strategy, model=self.model_name, weights=weights,
            criteria_methods=methods, inferred=inferred, candidates=ranked, timings_ms=timings,
            tokens_processed=sum(spent), notes=list(self.notes),
        )
        return RerankResult([candidates[i] for i in order], trace)

    # ------------------------------------------------------------------------------------------ stages

    def _embed(self, query, candidates, scores, methods, notes, timings) -> np.ndarray | None:
        if self.embedder is None:
            scores[EMBEDDING] = np.full(len(candidates), np.nan)
            notes[EMBEDDING] = "no embedding model given"
            return None
        t = time.perf_counter()
        vectors = self.embedder.encode([query] + [c.text for c in candidates], batch_size=64,
                                       normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        scores[EMBEDDING] = (vectors[1:] @ vectors[0]).astype(np.float64)
        methods[EMBEDDING] = "cosine(query, passage)"
        timings["embedding"] = _ms(t)
        return vectors[1:]

    def _secondary_criteria(self, query, weights, timings, spent):
        if self.mode == "rebel-one-turn":
            return [criterion(name) for name in ONE_TURN]
        if self.mode != "rebel-two-turn":
            return []
        t = time.perf_counter()
        menu = [criterion(name) for name in TWO_TURN_MENU]
        if self.strategy == "logits":
            scored = logits.importance(self.lm, query, menu)
            spent.append(scored.tokens)
            imp = scored.values
            raw = {c.name: (None if np.isnan(v) else round(float(v), 3)) for c, v in zip(menu, imp)}
            picked = {n: v for n, v in sorted(raw.items(), key=lambda kv: -(kv[1] or 0)) if v is not None}
            picked = dict(list(picked.items())[:TWO_TURN_MAX])
            text = None
        else:
            picked, text, tokens = generative.infer_criteria(self.lm, query, menu)
            spent.append(tokens)
            raw = None
        fallback = not picked
        if fallback:  # the model named nothing usable: REBEL's fixed criteria, said so in the trace
            picked = {name: 2.5 for name in ONE_TURN}
        for name, importance in picked.items():
            # importance 2.5 of 5 (the middle) maps to REBEL's one-turn weight for a secondary criterion
            weights.setdefault(name, REBEL_ONE_TURN_WEIGHTS["depth"] * importance / 2.5)
        timings["infer_criteria"] = _ms(t)
        inferred = {"criteria": {n: weights[n] for n in picked}, "importance": picked, "fallback": fallback,
                    "raw_importance": raw, "raw_text": text}
        return [criterion(name) for name in picked], inferred

    def _score(self, query, candidates, secondary: list[Criterion], embeddings, scores, methods, notes, timings,
               spent):
        llm_criteria: list[Criterion] = []
        for c in secondary:
            if c.name == DIVERSITY and embeddings is not None:
                continue  # set property: MMR in the composite
            if c.name == "recency" and any(x.document_date for x in candidates):
                scores["recency"] = np.array([x.document_date.timestamp() if x.document_date else np.nan
                                              for x in candidates])
                methods["recency"] = "document date"
                continue
            llm_criteria.append(c)
        t = time.perf_counter()
        if self.mode == "cross-encoder":
            pairs = [(query, c.text) for c in candidates]
            scores[RELEVANCE.name] = np.asarray(self.cross_encoder.predict(pairs, batch_size=self.batch_size,
                                                                           show_progress_bar=False), dtype=np.float64)
            methods[RELEVANCE.name] = "cross-encoder"
            timings["cross_encoder"] = _ms(t)
            return
        blocks = [passage_block(c.text, source=c.source or None, date=c.document_date.date().isoformat() if c.document_date
                                else None) for c in candidates]
        if self.strategy == "generative":
            crit = [RELEVANCE] + llm_criteria
            scored, _ = generative.score_generative(self.lm, query, blocks, crit, self.batch_size)
            spent.append(scored.tokens)
            values = scored.values
            for j, c in enumerate(crit):
                scores[c.name] = values[:, j]
                methods[c.name] = "generated text"
                if np.isnan(values[:, j]).any():
                    notes[c.name] = "not found in the model's text; neutral"
            timings["llm_generate"] = _ms(t)
            return
        if self.relevance_method == "query-likelihood":
            scored = logits.query_likelihood(self.lm, query, [c.text for c in candidates])
            spent.append(scored.tokens)
            scores[RELEVANCE.name] = scored.values
            methods[RELEVANCE.name] = "query likelihood (mean log P(query | passage))"
            timings["llm_query_likelihood"] = _ms(t)
        else:
            llm_criteria = [RELEVANCE] + llm_criteria
        if llm_criteria:
            t = time.perf_counter()
            scored = logits.judge_scores(self.lm, query, blocks, llm_criteria)
            spent.append(scored.tokens)
            values = scored.values
            for j, c in enumerate(llm_criteria):
                scores[c.name] = values[:, j]
                methods[c.name] = "expected score from next-token logits"
            timings["llm_judge"] = _ms(t)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
