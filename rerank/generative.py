"""The generative strategy (REBEL's way, kept as the baseline and for servers without log-probabilities): the model
writes its scores as text and ``parse_scores`` reads them.

Each passage is judged in its own prompt (pointwise), so its scores mean the same thing whatever batch it ran in —
REBEL's listwise prompts compare passages only within a batch. The parser is lenient about format (markdown, "7/10",
"Relevance - 7", decimals, any order, any case) and strict about meaning: a number outside the criterion's scale, or a
criterion not written, is reported missing and falls back instead of being guessed.

Example::

    >>> from sift.rerank.criteria import criterion
    >>> parse_scores("**Relevance**: 7/10\\nDepth - 3.5\\nClarity: lots", [criterion("relevance"), criterion("depth"),
    ...                                                                  criterion("clarity")])
    {'relevance': 7.0, 'depth': 3.5}
"""

from __future__ import annotations

import re

import numpy as np

from sift.rerank import prompts
from sift.rerank.criteria import Criterion
from sift.rerank.llm import LanguageModel, Scored

_NUMBER = r"(\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?"


def parse_scores(text: str, criteria: list[Criterion]) -> dict[str, float]:
    """The scores found in ``text`` for each criterion; criteria not found or out of scale are absent."""
    found: dict[str, float] = {}
    clean = text.replace("*", "").replace("#", "")
    for c in criteria:
        names = {c.name, c.label.lower()}
        pattern = r"(?:%s)[^\n\d]{0,20}?[:=\-]\s*%s" % ("|".join(re.escape(n) for n in names), _NUMBER)
        m = re.search(pattern, clean, flags=re.IGNORECASE)
        if not m:
            continue
        value, out_of = float(m.group(1)), m.group(2)
        if out_of and float(out_of) > 0 and int(out_of) != c.scale:
            value = value * c.scale / float(out_of)  # "8/10" for a 0-5 criterion
        if 0 <= value <= c.scale:
            found[c.name] = value
    return found


def score_generative(lm: LanguageModel, query: str, blocks: list[str], criteria: list[Criterion],
                     batch_size: int | None = None) -> tuple[Scored, list[str]]:
    """[n_passages, n_criteria] scores (nan where the text gave none) with the tokens spent, and the raw texts."""
    question = prompts.generative_question(criteria)
    chats = [[{"role": "system", "content": prompts.SYSTEM},
              {"role": "user", "content": prompts.judge_user(query, b, question)}] for b in blocks]
    generated = lm.generate(chats, max_new_tokens=6 * len(criteria) + 2,  # "Depth: 3\n" is ~5 tokens
                            batch_size=batch_size)
    scores = np.full((len(blocks), len(criteria)), np.nan)
    for i, text in enumerate(generated.texts):
        parsed = parse_scores(text, criteria)
        for j, c in enumerate(criteria):
            scores[i, j] = parsed.get(c.name, np.nan)
    return Scored(scores, generated.tokens), generated.texts


def parse_criteria(text: str, limit: int = 3) -> dict[str, float]:
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


def infer_criteria(lm: LanguageModel, query: str, menu: list[Criterion]) -> tuple[dict[str, float], str, int]:
    """Ask the model which criteria matter for this query: ({criterion: weight 0-5}, raw text, tokens spent)."""
    chat = [{"role": "system", "content": "You design evaluation criteria for search results."},
            {"role": "user", "content": prompts.infer_criteria_user(query, menu)}]
    generated = lm.generate([chat], max_new_tokens=48)
    return parse_criteria(generated.texts[0]), generated.texts[0], generated.tokens
