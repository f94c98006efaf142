"""Two-turn mode's first turn: which criteria matter for this query, and how much (REBEL's meta-prompt, made cheap).

With the logits strategy the model is not asked to write anything: the expected 0-5 importance of every criterion on
the menu is read in one batched pass (the query is the shared head, each criterion a tail), and the highest few are
kept. With the generative strategy the model writes "criterion: weight" lines that ``parse_criteria`` reads. When
the model names nothing usable, REBEL's fixed one-turn criteria are used and the trace says so. With the
rebel-reference strategy (REBEL's procedure, the yardstick) the model writes the whole second-turn prompt, kept as
``raw_text``; when it writes nothing, REBEL's one-turn prompt is used.

Example::

    >>> inferred, tokens = infer_criteria(lm, Strategy.LOGITS, "latest iPhone battery life")   # doctest: +SKIP
    >>> inferred.importance                                                                   # doctest: +SKIP
    {'recency': 4.1, 'specificity': 3.2, 'accuracy': 3.0}
"""

from __future__ import annotations

import logging
import re

import numpy as np

from sift.rerank import prompts
from sift.rerank.criteria import ONE_TURN, REBEL_ONE_TURN_WEIGHTS, TWO_TURN_MENU, criterion
from sift.rerank.modes import Strategy
from sift.rerank.scorers.judge import expected_levels
from sift.rerank.types import InferredCriteria

logger = logging.getLogger(__name__)

TWO_TURN_MAX = 3  # inferred secondary criteria kept per query: bounds the cost of the second turn
NEUTRAL_IMPORTANCE = 2.5  # the middle of 0-5: maps to REBEL's one-turn weight for a secondary criterion
# The rebel-reference first turn writes a whole re-ranking prompt (REBEL's own one-turn prompt runs to several hundred
# tokens); this bounds its cost.
REBEL_PROMPT_TOKENS = 384


def parse_criteria(text: str, limit: int = TWO_TURN_MAX) -> dict[str, float]:
    """Two-turn inference output ("depth: 4" per line, any decoration) -> {criterion: weight 0-5}, at most ``limit``.

    >>> parse_criteria("1. **Recency**: 5\\n- clarity - 3\\nrelevance: 5\\nnonsense")
    {'recency': 5.0, 'clarity': 3.0}
    """
    found: dict[str, float] = {}
    for line in text.replace("*", "").splitlines():
        m = re.match(r"^\W*(?:\d+[.)]\s*)?([A-Za-z][A-Za-z \-]{1,30}?)\s*[:=\-]\s*(\d+(?:\.\d+)?)", line.strip())
        if not m:
            continue
        name, weight = m.group(1).strip().lower(), float(m.group(2))
        if name != "relevance" and 0 <= weight <= 5 and name not in found:
            found[name] = weight
        if len(found) == limit:
            break
    return found


def infer_criteria(lm, strategy: Strategy, query: str) -> tuple[InferredCriteria, int]:
    """The criteria to judge this query's passages on, with their composite weights; and the tokens it took."""
    if strategy == Strategy.REBEL_REFERENCE:
        chat = [{"role": "user", "content": prompts.rebel_meta_prompt(query)}]
        found = lm.generate([chat], max_new_tokens=REBEL_PROMPT_TOKENS)
        written = found.texts[0].strip()
        return InferredCriteria(criteria={}, importance={}, fallback=not written, raw_text=written), found.tokens
    menu = [criterion(name) for name in TWO_TURN_MENU]
    raw_importance, raw_text = None, None
    if strategy == Strategy.LOGITS:
        found = lm.judge(
            prompts.SYSTEM,
            lambda passage, question: f"Query: {query}\n\n{passage}{question}",
            [""],
            [(prompts.importance_question(c), prompts.importance_prefill(c)) for c in menu],
            [[str(v) for v in range(6)] for _ in menu],
        )
        importance = expected_levels(found.values[0])
        raw_importance = {
            c.name: None if np.isnan(v) else round(float(v), 3) for c, v in zip(menu, importance, strict=False)
        }
        readable = {n: v for n, v in raw_importance.items() if v is not None}
        picked = dict(sorted(readable.items(), key=lambda kv: -kv[1])[:TWO_TURN_MAX])
        tokens = found.tokens
    else:
        chat = [
            {"role": "system", "content": "You design evaluation criteria for search results."},
            {"role": "user", "content": prompts.infer_criteria_user(query, menu)},
        ]
        found = lm.generate([chat], max_new_tokens=48)
        raw_text, tokens = found.texts[0], found.tokens
        picked = parse_criteria(raw_text)
    fallback = not picked
    if fallback:
        logger.info("two-turn inference named no usable criterion for %r; using REBEL's fixed ones", query[:80])
        picked = dict.fromkeys(ONE_TURN, NEUTRAL_IMPORTANCE)
    weights = {name: REBEL_ONE_TURN_WEIGHTS["depth"] * value / NEUTRAL_IMPORTANCE for name, value in picked.items()}
    return InferredCriteria(
        criteria=weights, importance=picked, fallback=fallback, raw_importance=raw_importance, raw_text=raw_text
    ), tokens
