"""What one request may ask of the models: the question with its whole conversation, the passages it asks to be
retrieved, scored and answered from, the LLM stage's budget, and a ``/v1/rerank`` request's documents.

The admin sets the limits (``Settings``: ``max_question_chars``, ``max_history_*``, ``max_candidates_k``,
``max_rerank_llm_k``, ``max_answer_top_n``, ``max_rerank_llm_budget_s``, ``rerank_max_*``); a request past one is
refused before any work with a ``LimitExceeded`` (a ValueError: a 400 in the API) that names the limit and its setting.
The budget is not refused but capped: a question asking for more than the ceiling, or for none, gets the ceiling.

Example::

    >>> check_ask(Settings(), "Who designed the Pharos of Alexandria?", k=1000)
    Traceback (most recent call last):
    sift.app.limits.LimitExceeded: k is 1,000; the limit is 200 (SIFT_MAX_CANDIDATES_K).
    >>> question_budget(Settings(max_rerank_llm_budget_s=10), 0)  # "no budget" gets the ceiling
    10.0
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sift.app.config import Settings
from sift.app.followup import FollowUp, Turn
from sift.ingestion.store import check_text
from sift.rerank.llm import Message
from sift.rerank.modes import Strategy

logger = logging.getLogger(__name__)


class LimitExceeded(ValueError):
    """A request past one of the admin's limits; the message names the limit and its setting."""


def _over(what: str, value: int, setting: str, settings: Settings, unit: str = "") -> LimitExceeded:
    limit = getattr(settings, setting)
    return LimitExceeded(f"{what} {value:,}{unit}; the limit is {limit:,} (SIFT_{setting.upper()}).")


def check_question(settings: Settings, question: str) -> None:
    """Raise ValueError for a question Sift will not take: empty, with a NUL or a lone surrogate, or longer than
    ``max_question_chars``."""
    if not question.strip():
        raise ValueError("The question is empty.")
    check_text(question, "The question")  # InvalidText, a ValueError
    if len(question) > settings.max_question_chars:
        raise _over("The question is", len(question), "max_question_chars", settings, " characters long")


def check_history(settings: Settings, history: Sequence[Turn] | Sequence[Message]) -> None:
    """Raise LimitExceeded for a conversation given with a question (``Turn``s, or user/assistant messages) that holds
    too many messages or characters, or a user message longer than a question may be: a name in it can be copied
    into the question searched for, and every earlier question goes into the LLM's rewrite prompt."""
    messages = _messages(history)
    if len(messages) > settings.max_history_messages:
        raise _over("The history has", len(messages), "max_history_messages", settings, " messages")
    for number, (role, text) in enumerate(messages, start=1):
        if role == "user" and len(text) > settings.max_question_chars:
            raise _over(
                f"Message {number} of the history (a question) is",
                len(text),
                "max_question_chars",
                settings,
                " characters long",
            )
    total = sum(len(text) for _, text in messages)
    if total > settings.max_history_chars:
        raise _over("The history holds", total, "max_history_chars", settings, " characters")


def _messages(history: Sequence[Turn] | Sequence[Message]) -> list[tuple[str, str]]:
    """(role, text) of each message: the messages as given, or each ``Turn``'s question and answer."""
    if history and isinstance(history[0], dict):
        return [(m["role"], m["content"]) for m in history]
    return [pair for t in history for pair in [("user", t.question), ("assistant", t.answer)] if pair[1]]


def check_ask(
    settings: Settings,
    question: str,
    history: Sequence[Turn] | Sequence[Message] | None = None,
    k: int | None = None,
    llm_k: int | None = None,
    top_n: int | None = None,
    strategy: str | None = None,
) -> None:
    """Raise ValueError (LimitExceeded past a limit) for a question Sift will not take with these options."""
    check_question(settings, question)
    check_history(settings, history or [])
    for name, value, setting in [
        ("k", k, "max_candidates_k"),
        ("llm_k", llm_k, "max_rerank_llm_k"),
        ("top_n", top_n, "max_answer_top_n"),
    ]:
        if value is not None and value > getattr(settings, setting):
            raise _over(f"{name} is", value, setting, settings)
    if strategy == Strategy.REBEL_REFERENCE:
        # REBEL's procedure scores every candidate, with neither the cascade nor a budget.
        raise ValueError("Strategy 'rebel-reference' is a yardstick for `sift eval rerank`, not for questions.")


def question_budget(settings: Settings, asked: float | None) -> float | None:
    """Seconds a question's LLM stage may take: ``asked`` (None: the settings' default; 0: none), within the
    ceiling ``max_rerank_llm_budget_s``, which a question asking for no budget gets; None: no budget.

    >>> question_budget(Settings(max_rerank_llm_budget_s=10), 600), question_budget(Settings(), None)
    (10.0, 1.5)
    """
    wanted = settings.rerank_llm_budget_s if asked is None else asked or None
    ceiling = settings.max_rerank_llm_budget_s
    if ceiling is None or (wanted is not None and wanted <= ceiling):
        return wanted
    return ceiling


def within_question_limit(settings: Settings, followup: FollowUp) -> FollowUp:
    """The follow-up, or the question as asked where what it would search for beside it is longer than a question
    may be (a long name or title filled in from the conversation): the reranker and the generator read it."""
    if len(followup.standalone) <= settings.max_question_chars:
        return followup
    logger.info("Rewrite of %r dropped: %d characters", followup.question[:80], len(followup.standalone))
    reason = f"its rewrite ({followup.method}), {len(followup.standalone):,} characters, is over max_question_chars"
    return FollowUp(followup.question, followup.question, "as asked", reason)


def check_rerank(settings: Settings, query: str, documents: Sequence[str]) -> None:
    """Raise LimitExceeded for a ``/v1/rerank`` request past its limits: its query is read with every document, as
    a question is."""
    if len(query) > settings.max_question_chars:
        raise _over("The query is", len(query), "max_question_chars", settings, " characters long")
    if len(documents) > settings.rerank_max_documents:
        raise _over("The request has", len(documents), "rerank_max_documents", settings, " documents")
    for index, text in enumerate(documents):
        if len(text) > settings.rerank_max_document_chars:
            raise _over(f"Document {index} is", len(text), "rerank_max_document_chars", settings, " characters long")
    total = sum(map(len, documents))
    if total > settings.rerank_max_total_chars:
        raise _over("The documents hold", total, "rerank_max_total_chars", settings, " characters together")
