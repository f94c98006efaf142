"""The reranker: one face, ``Reranker.rerank(query, candidates) -> RerankResult``, whatever the mode and strategy.

A mode is a list of scorers (``sift.rerank.scorers``), one per signal; the composite is applied last, over what they
found. Every mode but ``none`` keeps the first-stage signals — ``dense`` (the query-passage cosine) and ``lexical``
(the BM25 score) — as criteria of the composite, so a weak model cannot sink the ranking. See ``rerank/README.md``
for the modes, strategies, defaults and the benchmark behind them.

A cascade (``llm_k``): the cheap first-stage signals score every candidate, and only the best ``llm_k`` of them by
those signals alone go on to the mode's model; they are placed first, by the full composite, and the rest follow in
their first-stage order. Each candidate's ``stage`` in the trace says which of the two placed it.

A latency budget (``llm_budget_s``) caps the cascade further: of those best candidates, the model scores the longest
best-first run its measured prefill rate (``sift.rerank.budget``) can get through in that many seconds; the trace
records the budget, the passages scored and the seconds the LLM stage took.

The ``rebel-reference`` strategy (the rebel modes only) is REBEL's own procedure, kept as the yardstick Sift is
measured against: the model's written final score alone ranks, no first-stage signal, no cascade; the candidates the
model leaves out of its lists follow the scored ones in retrieval order, at stage ``omitted``.

Example::

    >>> from sift.retrieval.types import Candidate
    >>> candidates = [Candidate(i, f"passage {i}", i, "notes.md", 1.0 / i, i) for i in (1, 2, 3)]
    >>> result = Reranker(Mode.NONE).rerank("anything", candidates)
    >>> [c.final_rank for c in result.trace.candidates], result.trace.tokens_processed
    ([1, 2, 3], 0)
    >>> [c.stage for c in result.trace.candidates]
    ['first-stage', 'first-stage', 'first-stage']
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np

from sift.rerank.budget import PrefillRate, passages_within
from sift.rerank.composite import DIVERSITY, combine
from sift.rerank.criteria import DENSE, LEXICAL, ONE_TURN, REBEL_ONE_TURN_WEIGHTS, RELEVANCE, criterion
from sift.rerank.inference import infer_criteria
from sift.rerank.modes import Mode, RelevanceMethod, Strategy
from sift.rerank.scorers import (
    CrossEncoderRelevance,
    DenseSimilarity,
    DocumentDate,
    GenerativeJudge,
    LexicalScore,
    LogitJudge,
    QueryLikelihood,
    RebelReference,
    Scorer,
    Signal,
)
from sift.rerank.scorers.listwise import REBEL_FINAL
from sift.rerank.scorers.recency import RECENCY
from sift.rerank.tuning import WeightsProfile
from sift.rerank.types import (
    FIRST_STAGE,
    LLM_STAGE,
    OMITTED_STAGE,
    CriterionScore,
    InferredCriteria,
    RerankResult,
    RerankTrace,
    TraceCandidate,
)
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

# First-stage signals' weights, on REBEL's scale (LLM relevance 1.0). Chosen on DL19 (rerank/README.md): MiniLM
# similarity is the strongest signal the packaged models have (0.642 alone over the BM25 top-100, 0.656 with BM25 at a
# quarter of its weight), and SmolLM2-135M's relevance only helps as a tie-breaker-sized term beside it.
# With a stronger LLM, lower these (SIFT_RERANK_WEIGHTS).
FIRST_STAGE_WEIGHTS = {DENSE: 4.0, LEXICAL: 1.0}
# What calibrate() scores: two passages of about 170 tokens each, the size of a passage in a corpus.
CALIBRATION_PASSAGE = "A lighthouse keeper trims the wick, winds the clockwork and logs the weather at dusk. " * 10
CALIBRATION_QUERY = "What does a lighthouse keeper do at dusk?"
REBEL_MODES = (Mode.REBEL_ONE_TURN, Mode.REBEL_TWO_TURN)  # the modes REBEL's own procedure (the yardstick) has


def default_weights(mode: Mode | str) -> dict[str, float]:
    """The composite weights a mode starts from (two-turn adds the weights it infers per query).

    >>> default_weights("relevance")
    {'relevance': 1.0, 'dense': 4.0, 'lexical': 1.0}
    """
    mode = Mode(mode)
    if mode == Mode.NONE:
        return {}
    if mode == Mode.REBEL_ONE_TURN:
        return {**REBEL_ONE_TURN_WEIGHTS, **FIRST_STAGE_WEIGHTS}
    return {RELEVANCE.name: 1.0, **FIRST_STAGE_WEIGHTS}


def starting_weights(
    mode: Mode | str, profile: WeightsProfile | None = None, weights: dict[str, float] | None = None
) -> dict[str, float]:
    """The mode's defaults, the profile's fitted weights over them, and the weights set by hand over both.

    >>> starting_weights("relevance", weights={"lexical": 0.5})
    {'relevance': 1.0, 'dense': 4.0, 'lexical': 0.5}
    """
    return {**default_weights(mode), **(profile.weights if profile else {}), **(weights or {})}


@dataclass
class Reranker:
    """Reorders candidates; holds the models the mode needs (``lm``: a ``sift.rerank.llm`` LanguageModel;
    ``embedder``: anything with a sentence-transformers ``encode``; ``cross_encoder``: a CrossEncoder)."""

    mode: Mode = Mode.RELEVANCE
    strategy: Strategy | None = Strategy.LOGITS
    lm: object | None = None
    embedder: object | None = None
    cross_encoder: object | None = None
    weights: dict[str, float] | None = None  # set by hand: merged over the profile's weights and default_weights(mode)
    profile: WeightsProfile | None = None  # weights fitted for these models (``sift tune``), over default_weights(mode)
    relevance_method: RelevanceMethod = RelevanceMethod.QUERY_LIKELIHOOD
    batch_size: int = 16
    llm_k: int | None = None  # the cascade: candidates the model scores, the best by the first stage (None: all)
    llm_budget_s: float | None = None  # seconds the LLM stage may take; caps llm_k (None: no cap)
    prefill: PrefillRate = field(default_factory=PrefillRate)  # measured here; copies made by replace() share it
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.mode = _choice(Mode, self.mode, "rerank mode")
        self.relevance_method = _choice(RelevanceMethod, self.relevance_method, "relevance method")
        if self.mode.uses_llm:
            self.strategy = _choice(Strategy, self.strategy, "strategy")
            if self.lm is None:
                raise ValueError(f"Mode {self.mode.value!r} needs a language model.")
            if self.strategy == Strategy.REBEL_REFERENCE:
                if self.mode not in REBEL_MODES:
                    raise ValueError(
                        f"Strategy {self.strategy.value!r} is REBEL's own procedure, for the modes "
                        f"{', '.join(REBEL_MODES)}, not {self.mode.value!r}."
                    )
                # REBEL's model sees every candidate: the cascade and the latency budget are Sift's
                self.llm_k = self.llm_budget_s = None
        else:
            self.strategy = None
        if self.mode == Mode.CROSS_ENCODER and self.cross_encoder is None:
            raise ValueError("Mode 'cross-encoder' needs a CrossEncoder.")
        if self.llm_k is not None and self.llm_k < 1:
            raise ValueError(f"llm_k must be at least 1 (or None for every candidate), not {self.llm_k}.")
        if self.llm_budget_s is not None and not self.llm_budget_s > 0:
            raise ValueError(f"llm_budget_s must be over 0 seconds (or None for no budget), not {self.llm_budget_s}.")

    @property
    def model_name(self) -> str | None:
        if self.mode.uses_llm:
            return getattr(self.lm, "name", None)
        if self.mode == Mode.CROSS_ENCODER:
            return str(getattr(self.cross_encoder, "model_name_or_path", None) or type(self.cross_encoder).__name__)
        return None

    @property
    def base_weights(self) -> dict[str, float]:
        """The weights a query starts from (two-turn adds the ones it infers). The REBEL reference ranks by the
        model's final score alone, as REBEL does: a yardstick takes no weights."""
        if self.strategy == Strategy.REBEL_REFERENCE:
            return {REBEL_FINAL: 1.0}
        return starting_weights(self.mode, self.profile, self.weights)

    def calibrate(self) -> float | None:
        """Measure the model's prefill rate now, before any question, so that the first question's latency budget
        is sized by this machine rather than by the first guess (1,000 tokens/s, which a busy 2-core machine misses
        by 5-10x): scores two passages of a typical length. Returns the tokens/s measured; None for a mode without
        an LLM or a rate already measured.

        >>> Reranker(mode=Mode.NONE).calibrate() is None
        True
        """
        if not self.mode.uses_llm or self.prefill.measured:
            return None
        probe = [
            Candidate(chunk_id=i, text=CALIBRATION_PASSAGE, document_id=0, source="calibration", score=0.0, rank=i + 1)
            for i in range(2)
        ]
        replace(self, llm_k=None, llm_budget_s=None).rerank(CALIBRATION_QUERY, probe)  # shares self.prefill
        logger.info("LLM prefill measured at %.0f tokens/s", self.prefill.tokens_per_s)
        return self.prefill.tokens_per_s

    def rerank(self, query: str, candidates: list[Candidate]) -> RerankResult:
        start = time.perf_counter()
        timings: dict[str, float] = {}
        weights = self.base_weights
        inferred, tokens = None, 0
        if self.mode == Mode.NONE or not candidates:
            # Retrieval order, with the first-stage signals recorded: every weight 0, so ties keep that order.
            weights, scorers = {DENSE: 0.0, LEXICAL: 0.0}, [DenseSimilarity(), LexicalScore()]
        else:
            if self.mode == Mode.REBEL_TWO_TURN:
                t = time.perf_counter()
                inferred, tokens = infer_criteria(self.lm, self.strategy, query)
                timings["infer_criteria"] = _ms(t)
                for name, weight in inferred.criteria.items():
                    weights.setdefault(name, weight)  # a weight the user set wins over the inferred one
            scorers = self._scorers(weights, inferred, candidates)

        first_stage = [s for s in scorers if isinstance(s, DenseSimilarity | LexicalScore)]
        model_stage = [s for s in scorers if not isinstance(s, DenseSimilarity | LexicalScore)]
        cheap = self._run(first_stage, query, candidates, timings)
        picked = list(range(len(candidates)))
        cheap_order, cheap_composite, cheap_rows = [], None, None
        budget = self.llm_budget_s if self.mode.uses_llm else None
        rate = self.prefill.tokens_per_s  # the rate this rerank is sized with, before its own stage updates it
        passage_tokens: dict[int, int] = {}  # candidate index -> its text's LLM tokens, counted once per rerank
        if model_stage and (budget is not None or (self.llm_k is not None and self.llm_k < len(candidates))):
            # The first-stage composite alone, normalised over every candidate, picks what the model sees.
            cheap_weights = {name: weights.get(name, 0.0) for name in (DENSE, LEXICAL)}
            cheap_order, cheap_composite, cheap_rows = combine(_scores(cheap), cheap_weights)
            best = cheap_order[: self.llm_k or len(candidates)]
            if budget is not None:
                left = budget - timings.get("infer_criteria", 0.0) / 1000.0  # two-turn's question came first
                passage_tokens = self._tokens(candidates, best)
                best = best[: passages_within(self.prefill.seconds([passage_tokens[i] for i in best]), left)]
            picked = sorted(best)  # retrieval order, which ties keep
            cheap_order = cheap_order[len(best) :]
        subset = [candidates[i] for i in picked]
        # The model's criteria exist for the picked candidates only, so the composite is normalised over them, the
        # first-stage scores included: each z-score then compares a passage with the same set on every criterion.
        t = time.perf_counter()
        model_signals = self._run(model_stage, query, subset, timings)
        llm_seconds = time.perf_counter() - t
        if self.mode.uses_llm:
            passage_tokens = passage_tokens or self._tokens(candidates, picked)
            text_tokens = sum(passage_tokens[i] for i in picked)
            self.prefill.record(text_tokens, len(picked), sum(s.tokens for s in model_signals), llm_seconds)
        signals = [_select(s, picked) for s in cheap] + model_signals
        t = time.perf_counter()
        scores = _scores(signals)
        methods = {name: method for s in signals for name, method in s.methods().items()}
        notes = {name: note for s in signals for name, note in s.notes.items()}
        vectors = next((s.vectors for s in signals if s.vectors is not None), None)
        if self.mode == Mode.NONE:
            methods = {name: f"{method}; recorded, retrieval order kept" for name, method in methods.items()}
        order, composite, rows = combine(scores, weights, vectors, notes)
        omitted = _omitted(scores, rows) if REBEL_FINAL in scores else set()
        order = [j for j in order if j not in omitted] + sorted(omitted)
        if weights.get(DIVERSITY) and DIVERSITY not in scores:
            methods[DIVERSITY] = "mmr over embeddings" if vectors is not None else "unavailable"
        if self.mode != Mode.NONE:
            timings["composite"] = _ms(t)
        timings["total"] = _ms(start)

        stage = LLM_STAGE if model_stage else FIRST_STAGE
        placed = [(picked[j], rows[j], composite[j], OMITTED_STAGE if j in omitted else stage) for j in order]
        placed += [(i, cheap_rows[i], cheap_composite[i], FIRST_STAGE) for i in cheap_order]
        ranked = [_trace_candidate(candidates[i], final, *rest) for final, (i, *rest) in enumerate(placed, 1)]
        llm_signals = [s for s, scorer in zip(model_signals, model_stage, strict=True) if hasattr(scorer, "lm")]
        trace = RerankTrace(
            query=query,
            mode=self.mode.value,
            strategy=self.strategy.value if self.strategy else None,
            model=self.model_name,
            weights=weights,
            criteria_methods=methods,
            inferred=inferred,
            candidates=ranked,
            timings_ms=timings,
            tokens_processed=tokens + sum(s.tokens for s in signals),
            llm_k=len(picked) if model_stage else 0,
            llm_budget_s=budget,
            llm_seconds=llm_seconds if self.mode.uses_llm else None,
            prefill_tokens_per_s=rate if self.mode.uses_llm else None,
            weights_profile=self.profile.name if self.profile and self.mode != Mode.NONE else None,
            notes=[*self.notes, *_unscored(llm_signals)],
        )
        return RerankResult([candidates[i] for i, *_ in placed], trace)

    def _tokens(self, candidates: list[Candidate], indices: list[int]) -> dict[int, int]:
        """The LLM tokens of each candidate's text at ``indices``: the model's own count where it has a tokenizer
        here, else about four characters a token (a model behind a server)."""
        encode = getattr(self.lm, "encode", None)
        count = (lambda text: len(encode(text))) if encode else (lambda text: len(text) // 4 + 1)
        return {i: count(candidates[i].text) for i in indices}

    @staticmethod
    def _run(scorers: list[Scorer], query: str, candidates: list[Candidate], timings: dict[str, float]) -> list[Signal]:
        signals = []
        for scorer in scorers:
            t = time.perf_counter()
            signals.append(scorer.score(query, candidates))
            timings[scorer.name] = _ms(t)
        return signals

    def _scorers(
        self, weights: dict[str, float], inferred: InferredCriteria | None, candidates: list[Candidate]
    ) -> list[Scorer]:
        """The scorers this mode runs: the first-stage signals, then what judges relevance and the other criteria."""
        scorers: list[Scorer] = [DenseSimilarity(self.embedder, vectors=bool(weights.get(DIVERSITY))), LexicalScore()]
        secondary = (
            list(ONE_TURN) if self.mode == Mode.REBEL_ONE_TURN else list(inferred.importance) if inferred else []
        )
        dated = any(c.document_date for c in candidates)
        if weights.get(RECENCY) and RECENCY not in secondary and dated:
            secondary.append(RECENCY)  # a weight alone asks for it in any mode, when the documents are dated
        if dated and RECENCY in secondary:
            scorers.append(DocumentDate())  # a fact the documents carry: no need to ask the model
        if self.mode == Mode.CROSS_ENCODER:
            return [*scorers, CrossEncoderRelevance(self.cross_encoder, self.batch_size)]
        if self.strategy == Strategy.REBEL_REFERENCE:
            # REBEL as published sees the passages alone: no first-stage signal is computed or blended in
            written = inferred.raw_text if inferred and not inferred.fallback else None
            return [RebelReference(self.lm, written, self.batch_size)]
        # Diversity is a property of the ordering (MMR over the embeddings, in the composite), not of one passage.
        answered_elsewhere = ({RECENCY} if dated else set()) | ({DIVERSITY} if self.embedder is not None else set())
        llm_criteria = [criterion(name) for name in secondary if name not in answered_elsewhere]
        if self.strategy == Strategy.GENERATIVE:
            return [*scorers, GenerativeJudge(self.lm, [RELEVANCE, *llm_criteria], self.batch_size)]
        if self.relevance_method == RelevanceMethod.QUERY_LIKELIHOOD:
            scorers.append(QueryLikelihood(self.lm))
        else:
            llm_criteria = [RELEVANCE, *llm_criteria]
        if llm_criteria:
            scorers.append(LogitJudge(self.lm, llm_criteria))
        return scorers


def _unscored(signals: list[Signal]) -> list[str]:
    """Says so, in words, where the model's criteria scored no passage at all (a server that gives no
    log-probabilities, text the model wrote that holds no score): their fallback is the first-stage order, and a
    trace that reads like a model ranking would hide that.

    >>> _unscored([Signal({"relevance": np.array([np.nan, np.nan])}, "judge", {"relevance": "no log-probabilities"})])
    ["The LLM's scores were not used (relevance: no log-probabilities); first-stage order."]
    """
    unscored: dict[str, list[str]] = {}  # why -> the criteria it left unscored
    scored = False
    for signal in signals:
        for name, values in signal.scores.items():
            if values.size and not np.isfinite(values).any():
                unscored.setdefault(signal.notes.get(name) or "no score could be read", []).append(name)
            else:
                scored = True
    reasons = "; ".join(f"{', '.join(names)}: {why}" for why, names in unscored.items())
    if not unscored:
        return []
    if not scored:
        return [f"The LLM's scores were not used ({reasons}); first-stage order."]
    return [f"Not scored for any passage ({reasons}); the other criteria ranked the passages."]


def _omitted(scores: dict[str, np.ndarray], rows: list[list[CriterionScore]]) -> set[int]:
    """The candidates the REBEL reference's model left out of its lists, their trace rows saying so."""
    omitted = set(np.flatnonzero(~np.isfinite(scores[REBEL_FINAL])).tolist())
    for j in omitted:
        for s in rows[j]:
            if s.name == REBEL_FINAL:
                s.note = "not in the model's list (REBEL drops it); kept in retrieval order below the scored ones"
    return omitted


def _scores(signals: list[Signal]) -> dict[str, np.ndarray]:
    return {name: values for s in signals for name, values in s.scores.items()}


def _select(signal: Signal, picked: list[int]) -> Signal:
    """The signal for the candidates at ``picked`` only."""
    vectors = signal.vectors[picked] if signal.vectors is not None else None
    return replace(signal, scores={name: values[picked] for name, values in signal.scores.items()}, vectors=vectors)


def _trace_candidate(c: Candidate, final_rank: int, criteria, composite: float, stage: str) -> TraceCandidate:
    return TraceCandidate(
        chunk_id=c.chunk_id,
        document_id=c.document_id,
        source=c.source,
        title=c.title,
        document_date=c.document_date,
        page_start=c.page_start,
        page_end=c.page_end,
        section=c.section,
        retrieval_rank=c.rank,
        retrieval_score=c.score,
        criteria=criteria,
        composite=float(composite),
        final_rank=final_rank,
        rank_change=c.rank - final_rank,
        stage=stage,
    )


def _choice(kind, value, what: str):
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"Unknown {what} {value!r}; choose from {', '.join(k.value for k in kind)}.") from None


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
