"""When an answer has been written: its text has started repeating itself, or it holds enough sentences.

Small models fall into loops ("Scottish-Scottish-Scottish-...") and run on past the answer; greedy decoding then
spends every remaining token on text that is cut away afterwards. Both backends apply this one rule to the text
written so far: the local model through a transformers stopping criterion, the server backend by closing the stream.

A sentence counts as written once the next one has begun, so the ``[n]`` markers a model puts after the full stop
stay with their sentence; ``first_sentences`` then drops the begun one.

Example::

    >>> stop = AnswerStop(max_sentences=2)
    >>> stop.reached("Sostratus designed it [1]. It stood 100 m tall. [1] It fell")
    True
    >>> stop.reached("Grace Darling was Scottish-Scottish-Scottish-")
    True
    >>> stop.reached("It cost 1,000,000,000 dollars. It was")
    False
    >>> first_sentences("Sostratus designed it [1]. It stood 100 m tall. [1] It fell", 2)
    'Sostratus designed it [1]. It stood 100 m tall. [1]'
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# A piece of text starting with a letter (so numbers like "1,000,000,000" are not loops), 2-80 characters long,
# written three times in a row. Only the latest text is searched: a loop is caught as it starts.
_REPEATED = re.compile(r"([^\W\d_].{1,79}?)\1\1", re.DOTALL)
_RECENT = 3 * 80
# The end of a sentence, its citation markers, and the first character of the next sentence.
_SENTENCE_END = re.compile(r"[.!?]+(?:\s*\[\d{1,3}\])*(?=\s+[^\s\[])")


@dataclass(frozen=True)
class AnswerStop:
    """Stop once the text repeats itself, or once ``max_sentences`` sentences are written (0: no cap)."""

    max_sentences: int = 0

    def reached(self, text: str) -> bool:
        if _REPEATED.search(text[-_RECENT:]):
            return True
        return self.max_sentences > 0 and len(_SENTENCE_END.findall(text)) >= self.max_sentences


def first_sentences(text: str, count: int) -> str:
    """``text`` up to the end of its ``count``-th sentence, with that sentence's markers (all of it for 0)."""
    if count > 0:
        ends = list(_SENTENCE_END.finditer(text))
        if len(ends) >= count:
            return text[: ends[count - 1].end()]
    return text
