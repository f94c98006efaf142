"""Answer styles: a quote of the passages (extractive), the model's own words (generative), or the quote wherever the
model's words do not answer the question (auto), and the check that says so.

A quote is the best sentence (or two) the quote scorer (``sift.app.quotes``) finds in the passages, verbatim, with
its citation: it cannot say something else than the passage it cites. A yes-or-no question that a sentence confirms
in as many words is answered "Yes: " and that sentence. An answer *addresses* the question when a sentence that
supports it (the quote itself, or the evidence of a written answer: ``sift.app.evidence``) has at least the
settings' ``answer_quote_addresses`` chance of answering the question; else it is marked "does not answer this
question", is never verified, and under ``auto`` the quote replaces it. A quote is *verified* when it confirms a
yes-or-no question or its chance reaches ``answer_quote_verified``; other quotes say "check the passage".

Example::

    >>> from sift.app.quotes import Quote
    >>> from sift.retrieval.types import Candidate
    >>> passage = Candidate(7, "Kombucha is tea. A SCOBY ferments it for one to three weeks.", 1, "k.md", 0.6, 1)
    >>> question = "How long does a SCOBY ferment the tea?"
    >>> quoted = quote_answer(question, [Quote(0, 17, 60, passage.text[17:60], 0.8)], [passage])
    >>> quoted.text, quoted.citations[0].evidence
    ('A SCOBY ferments it for one to three weeks. [1]', [(17, 60)])
    >>> quote_answer("Is kombucha tea?", [Quote(0, 0, 16, passage.text[:16], 0.3)], [passage]).text
    'Yes: Kombucha is tea. [1]'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

from sift.app.generation import Citation, citation
from sift.app.quotes import Quote, asks_yes_or_no, confirms
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

AnswerStyle = Literal["auto", "generative", "extractive"]
ANSWER_STYLES: tuple[str, ...] = ("auto", "generative", "extractive")
DOES_NOT_ANSWER = "This does not answer the question: no sentence it rests on is about what was asked."
"""What the app, ``sift ask`` and the API's ``answers_question: false`` say under such an answer."""
QUOTE_UNSURE = "The likeliest sentence, not a sure answer: read the passage it cites to confirm."
"""Under a quote that is about the question but not verified: its chance is low, or it was asked yes or no."""
MODEL_SUMMARY = "The model's summary (not checked against the passages)"


@dataclass(frozen=True)
class Quoted:
    """A quote-first answer: the text (the quotes and their markers), their citations, and the scorer's chance."""

    text: str
    citations: list[Citation]
    chance: float
    confirmed: bool = False  # a yes-or-no question, answered "Yes" by a sentence that says so in as many words


def choose_style(requested: str, parameters: int | None, min_parameters: int) -> str:
    """``extractive`` or ``generative``: what is tried first for a requested style. ``auto`` quotes with a local model
    under ``min_parameters`` and lets a larger one (or a server's, whose size is not known) write.

    >>> choose_style("auto", 134_515_008, 1_000_000_000), choose_style("auto", None, 1_000_000_000)
    ('extractive', 'generative')
    """
    if requested not in ANSWER_STYLES:
        raise ValueError(f"Unknown answer style {requested!r}; choose from {', '.join(ANSWER_STYLES)}.")
    if requested != "auto":
        return requested
    return "extractive" if parameters is not None and parameters < min_parameters else "generative"


def auto_style_line(parameters: int | None, min_parameters: int) -> str:
    """What ``auto`` gives with a model of this size, and why, in the app's words.

    >>> auto_style_line(134_515_008, 1_000_000_000)
    'Auto: quotes (the model has 135M parameters, under 1B)'
    >>> auto_style_line(7_615_616_512, 1_000_000_000)
    'Auto: written by the model (it has 7.6B parameters), a quote where that does not answer'
    >>> auto_style_line(None, 1_000_000_000)
    "Auto: written by the model (a server's, whose size is not known), a quote where that does not answer"
    """
    if choose_style("auto", parameters, min_parameters) == "extractive":
        size, limit = parameter_count(parameters), parameter_count(min_parameters)
        return f"Auto: quotes (the model has {size} parameters, under {limit})"
    size = f"it has {parameter_count(parameters)} parameters" if parameters else "a server's, whose size is not known"
    return f"Auto: written by the model ({size}), a quote where that does not answer"


def parameter_count(parameters: int) -> str:
    """A model's size as people write it.

    >>> parameter_count(134_515_008), parameter_count(1_000_000_000)
    ('135M', '1B')
    """
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}".removesuffix(".0") + "B"
    return f"{parameters / 1e6:.0f}M"


def quote_answer(
    question: str, quotes: list[Quote], passages: list[Candidate], sentences: int = 1, within: float = 1.0
) -> Quoted:
    """The quote that answers ``question``: ``quotes`` best first, each cited with the quoted sentence as its
    evidence. A yes-or-no question that one of the three best sentences confirms in as many words
    (``sift.app.quotes.confirms``) is answered "Yes" with that sentence; otherwise the best sentence and, up to
    ``sentences``, the next ones whose chance is at least ``within`` of its, in the order they are read in the
    passages (best passage first). The chance is the best quote's (1 for a confirmation)."""
    confirming = [q for q in quotes[:3] if confirms(question, q.text)] if asks_yes_or_no(question) else []
    if confirming:
        chosen, lead, chance = confirming[:1], "Yes: ", 1.0
    else:
        best = quotes[0].chance
        chosen = [quotes[0], *(q for q in quotes[1:sentences] if q.chance >= within * best)]
        chosen.sort(key=lambda q: (q.passage, q.start))
        lead, chance = "", best
    numbers = {p: n for n, p in enumerate(dict.fromkeys(q.passage for q in chosen), start=1)}
    spans: dict[int, list[tuple[int, int]]] = {}
    for q in chosen:
        spans.setdefault(q.passage, []).append((q.start, q.end))
    cited = [replace(citation(n, passages[p]), evidence=spans[p]) for p, n in numbers.items()]
    # A wrapped line reads as one; each quote carries its passage's marker.
    text = lead + " ".join(" ".join(q.text.split()) + f" [{numbers[q.passage]}]" for q in chosen)
    return Quoted(text, cited, chance, confirmed=bool(confirming))


def support_chance(citations: list[Citation], passages: list[Candidate], quotes: list[Quote]) -> float:
    """The highest chance, among the sentences that support a written answer (its citations' evidence), that a
    sentence answers the question; 0 when nothing supports it."""
    index = {p.chunk_id: i for i, p in enumerate(passages)}
    chance = {(q.passage, q.start, q.end): q.chance for q in quotes}
    found = [chance.get((index.get(c.chunk_id), start, end), 0.0) for c in citations for start, end in c.evidence]
    return max(found, default=0.0)
