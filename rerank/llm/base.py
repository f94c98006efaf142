"""What Sift asks of a language model, wherever it runs: the protocol, its results and its errors.

The generator chats and streams; the reranker judges, measures query likelihood and generates in batches. Every
result carries the tokens its own call ran through the model, so concurrent users of one model never read each
other's figures.

Example::

    >>> scored = Scored(values=np.array([-1.2, -0.4]), tokens=96)
    >>> int(scored.values.argmax()), scored.tokens
    (1, 96)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}, as chat templates take them


@dataclass(frozen=True)
class Scored:
    """Scores read from the model, and the tokens run through it to read them; ``note`` says, in words, why no value
    could be read where that is known (a server that gives no log-probabilities), so the fallback is shown."""

    values: np.ndarray
    tokens: int
    note: str = ""


@dataclass(frozen=True)
class Generated:
    """One text per conversation, and the tokens run through the model (prompts and answers)."""

    texts: list[str]
    tokens: int


class ServerError(RuntimeError):
    """An OpenAI-compatible server refused or failed a request; the message carries the server's reason."""


class ModelNotFound(RuntimeError):
    """A configured model folder or package is not there."""


class ModelBusy(RuntimeError):
    """The model did not come free within its wait: other questions are using it. Asking again later may work."""


class LanguageModel(Protocol):
    """A chat model in this process (``LocalLM``) or behind an OpenAI-compatible server (``ServerLM``)."""

    name: str
    parameters: int | None  # the model's size; None where it is not known (behind a server)

    def chat(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        """The greedy answer to a conversation."""
        ...

    def stream(self, messages: list[Message], max_new_tokens: int = 256, max_sentences: int = 0) -> Iterator[str]:
        """The greedy answer to a conversation, piece by piece as it is written; it stops early once the text
        repeats itself or holds ``max_sentences`` sentences (0: no cap), see ``sift.rerank.llm.stopping``."""
        ...

    def judge(
        self,
        system: str,
        user: Callable[[str, str], str],
        passages: list[str],
        questions: list[tuple[str, str]],
        levels: list[list[str]],
    ) -> Scored:
        """P(answer = level) for every passage and (question, assistant prefill), renormalised over the levels.

        ``user(passage, question)`` builds the user message. Values: [n_passages, n_questions, max_levels], nan
        where no level could be read.
        """
        ...

    def query_likelihood(self, head: str, passages: list[str], tail: str, query: str) -> Scored:
        """Mean log P(query tokens | head + passage + tail) per passage (UPR-style relevance): [n_passages]."""
        ...

    def generate(
        self, conversations: list[list[Message]], max_new_tokens: int, batch_size: int | None = None
    ) -> Generated:
        """Greedy answers to several conversations, batched."""
        ...
