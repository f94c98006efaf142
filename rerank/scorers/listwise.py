"""REBEL's reference procedure, the yardstick Sift is measured against: listwise prompts of up to 10 passages, in
which the model writes one ``Doc: n, Relevance: final`` line per passage it keeps, the final score being its own sum
``Relevance + Σ weight x criterion`` (fixed criteria one-turn, criteria it chose in a first turn two-turn).

``parse_rebel_answer`` reads the text as REBEL's parser does (each line split at commas into exactly two parts, the
number after the first colon of each), and is safer where that one fails: a line it cannot read is skipped instead of
raising, a document number outside the prompt's is ignored, a number given twice keeps its first score. A passage
the model leaves out has no score (nan): the reranker keeps such passages in retrieval order below the scored ones.

Example::

    >>> parse_rebel_answer("Doc: 2, Relevance: 8.5\\nDoc: 9, Relevance: 3\\nSure, here you go", 5)
    [(2, 8.5)]
    >>> scorer = RebelReference(lm)                                  # doctest: +SKIP
    >>> scorer.score("lobster roll", candidates).scores[REBEL_FINAL]  # doctest: +SKIP
    array([13.5, nan, 9. , ...])
"""

from __future__ import annotations

import logging
import math

import numpy as np

from sift.rerank import prompts
from sift.rerank.criteria import ONE_TURN, REBEL_SECONDARY_WEIGHT, criterion
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

REBEL_FINAL = "rebel_final"
"""The criterion the reference records: the final score the model wrote (Relevance + Σ weight x criterion)."""
REBEL_BATCH = 10  # passages per listwise prompt, as REBEL's choice_batch_size
ANSWER_TOKENS_PER_PASSAGE = 12  # "Doc: 10, Relevance: 12.5\n" is about 11 SmolLM2 tokens


def parse_rebel_answer(text: str, n_documents: int) -> list[tuple[int, float]]:
    """(document number from 1, score) for each line of ``text`` written as ``…: n, …: score``, in the order written.

    >>> parse_rebel_answer("Doc: 3, Relevance: 7\\nDoc: three, Relevance: 9\\nDoc: 3, Relevance: 1", 10)
    [(3, 7.0)]
    """
    found: dict[int, float] = {}
    for line in text.split("\n"):
        parts = line.split(",")
        if len(parts) != 2:
            continue
        try:
            number = int(parts[0].split(":")[1].strip())
            score = float(parts[1].split(":")[1].strip())
        except (IndexError, ValueError):
            continue
        if 1 <= number <= n_documents and math.isfinite(score) and number not in found:
            found[number] = score
    return list(found.items())


class RebelReference:
    """``instructions``: the second turn's prompt that a first turn wrote (two-turn); None: REBEL's one-turn prompt."""

    name = "llm_rebel_reference"

    def __init__(self, lm, instructions: str | None = None, batch_size: int | None = None):
        self.lm = lm
        self.instructions = instructions
        self.batch_size = batch_size

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        secondary = [criterion(name) for name in ONE_TURN]
        instructions = self.instructions or prompts.rebel_one_turn_instructions(secondary, REBEL_SECONDARY_WEIGHT)
        batches = [candidates[i : i + REBEL_BATCH] for i in range(0, len(candidates), REBEL_BATCH)]
        chats = [
            [{"role": "user", "content": prompts.rebel_listwise(instructions, query, [c.text for c in batch])}]
            for batch in batches
        ]
        found = self.lm.generate(chats, ANSWER_TOKENS_PER_PASSAGE * REBEL_BATCH + 8, self.batch_size)
        logger.debug("REBEL reference lists for %r: %s", query[:80], found.texts)
        scores = np.full(len(candidates), np.nan)
        for b, text in enumerate(found.texts):
            for number, value in parse_rebel_answer(text, len(batches[b])):
                scores[b * REBEL_BATCH + number - 1] = value
        turn = "two-turn, a prompt the model wrote" if self.instructions else "one-turn"
        return Signal(
            {REBEL_FINAL: scores},
            f"REBEL reference ({turn}): listwise, {REBEL_BATCH} per prompt, final score written by the model",
            tokens=found.tokens,
        )
