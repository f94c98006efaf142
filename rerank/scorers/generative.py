"""The generative judge (REBEL's way, kept as the baseline and for servers without log-probabilities): the model
writes its scores as text and ``parse_scores`` reads them.

Each passage is judged in its own prompt (pointwise), so its scores mean the same thing whatever batch it ran in.
The parser is lenient about format (markdown, "7/10", "Relevance - 7", decimals, any order, any case) and strict
about meaning: a number outside the criterion's scale, or a criterion not written, is missing and falls back.

Example::

    >>> from sift.rerank.criteria import criterion
    >>> parse_scores("**Relevance**: 7/10\\nDepth - 3.5\\nClarity: lots", [criterion("relevance"), criterion("depth"),
    ...                                                                  criterion("clarity")])
    {'relevance': 7.0, 'depth': 3.5}
"""

from __future__ import annotations

import logging
import re

import numpy as np

from sift.rerank import prompts
from sift.rerank.criteria import Criterion
from sift.rerank.scorers.base import Signal
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

_NUMBER = r"(\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?"


def parse_scores(text: str, criteria: list[Criterion]) -> dict[str, float]:
    """The scores found in ``text`` for each criterion; criteria not found or out of scale are absent."""
    found: dict[str, float] = {}
    clean = text.replace("*", "").replace("#", "")
    for c in criteria:
        names = {c.name, c.label.lower()}
        pattern = r"(?:{})[^\n\d]{{0,20}}?[:=\-]\s*{}".format("|".join(re.escape(n) for n in names), _NUMBER)
        m = re.search(pattern, clean, flags=re.IGNORECASE)
        if not m:
            continue
        value, out_of = float(m.group(1)), m.group(2)
        if out_of and float(out_of) > 0 and int(out_of) != c.scale:
            value = value * c.scale / float(out_of)  # "8/10" for a 0-5 criterion
        if 0 <= value <= c.scale:
            found[c.name] = value
    return found


class GenerativeJudge:
    name = "llm_generate"

    def __init__(self, lm, criteria: list[Criterion], batch_size: int | None = None):
        self.lm = lm
        self.criteria = criteria
        self.batch_size = batch_size

    def score(self, query: str, candidates: list[Candidate]) -> Signal:
        question = prompts.generative_question(self.criteria)
        chats = [
            [
                {"role": "system", "content": prompts.SYSTEM},
                {"role": "user", "content": prompts.judge_user(query, prompts.candidate_block(c), question)},
            ]
            for c in candidates
        ]
        # "Depth: 3\n" is about 5 tokens
        found = self.lm.generate(chats, max_new_tokens=6 * len(self.criteria) + 2, batch_size=self.batch_size)
        values = np.full((len(candidates), len(self.criteria)), np.nan)
        for i, text in enumerate(found.texts):
            parsed = parse_scores(text, self.criteria)
            values[i] = [parsed.get(c.name, np.nan) for c in self.criteria]
        notes = {
            c.name: "not found in the model's text; neutral"
            for j, c in enumerate(self.criteria)
            if np.isnan(values[:, j]).any()
        }
        return Signal(
            {c.name: values[:, j] for j, c in enumerate(self.criteria)}, "generated text", notes, tokens=found.tokens
        )
