"""Follow-up questions: when a question needs the conversation, and what to search for beside it.

The question as asked is always retrieved; this module only decides whether something should be searched *beside*
it, and what. Cheap signals come first: a question with no pronoun that points back ("it", "they", "his"), no
ellipsis ("What about the second one?", "Why?") stands alone and is left as it is. A question that points back gets
its referent filled in from the conversation — the last thing a user question named, else the title of what the last
answer cited — and only then, where configured, the LLM is asked for a rewrite, which is kept only if it still holds
the question's own words. The pipeline fuses the candidates of both searches, so a bad rewrite can add passages but
never push out the ones the question finds by itself.

Example::

    >>> history = [Turn("Who designed the Pharos of Alexandria?", "Sostratus of Cnidus [1].", ("Famous lighthouses",))]
    >>> standalone_question("When was it built?", history).standalone
    'When was the Pharos of Alexandria built?'
    >>> standalone_question("How do Fresnel lenses work?", history).standalone
    'How do Fresnel lenses work?'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from sift.retrieval.fusion import reciprocal_rank
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

# Pronouns that point back to something named earlier; their possessive forms become "<referent>'s".
_SUBJECTS = {"he", "she", "it", "they", "him", "them"}
_POSSESSIVES = {"his", "its", "their", "hers", "theirs"}
# "her" is "his" or "him": possessive when a noun follows ("her album"), an object otherwise ("did they marry her?").
_AMBIGUOUS = {"her"}
_POINTING_BACK = _SUBJECTS | _POSSESSIVES | _AMBIGUOUS
# "one" standing for something named earlier: "Which one cannot be overridden?", "Is the other one older?" (not
# "which one of the Beatles", which names it)
_ONE = re.compile(
    r"\b(which|this|the other|the first|the second|the third|the last|the same)\s+ones?\b(?!\s+of\b)", re.I
)
_ELLIPSIS = re.compile(r"^\s*(and|but|so|what about|how about|what else|anything else|tell me more|more)\b", re.I)
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)
# Capitalised runs that name something ("Pharos of Alexandria", "Zappa and the Mothers of Invention"); linking words
# may sit inside a run but not at its ends.
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:(?:of|the|and|de|la|von|van|for|in)\s+)*[A-Z0-9][\w'’-]*)*")
_QUESTION_OPENERS = {
    "what",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "which",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "has",
    "have",
    "had",
    "tell",
    "explain",
    "describe",
    "list",
    "give",
    "name",
    "i",
    "in",
    "on",
    "at",
    "for",
    "and",
    "but",
    "besides",
    "other",
    "aside",
    "after",
    "before",
    "during",
    "a",
    "an",
    "the",
}
_NOT_A_NOUN = {
    "a",
    "an",
    "the",
    "to",
    "and",
    "or",
    "in",
    "on",
    "at",
    "for",
    "with",
    "about",
    "from",
    "by",
    "of",
    "if",
    "when",
    "that",
    "this",
    "be",
    "been",
    "is",
    "was",
    "?",
}


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: the user's question, the answer, and the titles (or names) of what the answer cited."""

    question: str
    answer: str = ""
    cited: tuple[str, ...] = ()


@dataclass(frozen=True)
class FollowUp:
    """What a question becomes: the question as asked, what to search for beside it, and why."""

    question: str
    standalone: str
    method: Literal["as asked", "referent", "llm"]
    reason: str
    # Sift 0.1 searched for its rewrite instead of the question; only the evals' baseline does that now.
    replaces_question: bool = False

    @property
    def rewritten(self) -> bool:
        return self.standalone != self.question

    @property
    def searches(self) -> list[str]:
        """What retrieval looks for: the question as asked, and the rewrite beside it when there is one."""
        if self.replaces_question:
            return [self.standalone]
        return list(dict.fromkeys([self.question, self.standalone]))


def turns(messages: Iterable[tuple[str, str, tuple[str, ...]]]) -> list[Turn]:
    """Earlier turns from a conversation's messages as (role, text, cited titles): each user question with the
    answer that followed it.

    >>> turns([("user", "Who was Grace Darling?", ()), ("assistant", "A keeper's daughter [1].", ("Keepers",))])
    [Turn(question='Who was Grace Darling?', answer="A keeper's daughter [1].", cited=('Keepers',))]
    """
    found: list[Turn] = []
    for role, text, cited in messages:
        if role == "user":
            found.append(Turn(text))
        elif found and not found[-1].answer:
            found[-1] = Turn(found[-1].question, text, cited)
    return found


def fuse(rankings: list[list[Candidate]], k: int = 60) -> list[Candidate]:
    """Reciprocal rank fusion (Cormack et al., 2009) of several searches' candidates, best first.

    Each passage scores the sum of ``1 / (k + rank)`` over the searches that found it, and keeps its best first-stage
    ``score``; ``rank`` becomes its fused rank. Nothing is cut: every passage a search found stays, so a second
    search can add passages but never push out those of the first. Ties go to the earlier search's order.

    >>> def found(*ids):  # a search's candidates, best first
    ...     return [Candidate(i, "...", 1, "doc.md", 0.5, rank) for rank, i in enumerate(ids, start=1)]
    >>> [(p.chunk_id, p.rank) for p in fuse([found(1, 2), found(3, 2)])]  # 2: found by both
    [(2, 1), (1, 2), (3, 3)]
    """
    fused = reciprocal_rank([[c.chunk_id for c in ranking] for ranking in rankings], k)
    best: dict[int, Candidate] = {}
    for candidate in (c for ranking in rankings for c in ranking):
        kept = best.get(candidate.chunk_id)
        if kept is None or candidate.score > kept.score:
            best[candidate.chunk_id] = candidate
    # sorted() is stable: among equal sums, the order passages were first seen in (the first search's) stands.
    order = sorted(fused, key=fused.__getitem__, reverse=True)
    return [replace(best[chunk_id], rank=rank) for rank, chunk_id in enumerate(order, start=1)]


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def points_back(question: str) -> str | None:
    """Why the question needs the conversation (a pronoun, an ellipsis, too short to stand alone), or None.

    A pronoun after a name the question gives itself points at that name ("What did Michelangelo do in his last
    years?"), so it stands alone.

    >>> points_back("When did they disband?"), points_back("Did Fernandez have a label?")
    ("pronoun 'they'", None)
    >>> points_back("What did Michelangelo paint in his last years?")
    >>> points_back("Which one cannot be overridden?")
    "'which one' without a noun"
    """
    pronoun = next((m for m in _WORD.finditer(question) if m.group(0).lower() in _POINTING_BACK), None)
    if pronoun:
        if any(start < pronoun.start() for start, _ in _names_at(question)):
            return None
        return f"pronoun {pronoun.group(0).lower()!r}"
    tokens = words(question)
    if _ELLIPSIS.match(question):
        return "ellipsis"
    if one := _ONE.search(question):
        return f"{one.group(0).lower()!r} without a noun"
    if len(tokens) <= 2:
        return "too short to stand alone"
    return None


def referent(history: list[Turn], question: str) -> str | None:
    """What the conversation is about: the last name a user question gave that this question lacks, else the title
    of what the last answer cited."""
    asked = question.lower()
    for turn in reversed(history):
        for name in _names(turn.question):
            if name.lower() not in asked:
                return name
        for title in turn.cited:
            if title and title.lower() not in asked:
                return title
    return None


def _names(text: str) -> list[str]:
    """Capitalised runs in a question, longest first, without the question word a sentence starts with."""
    return sorted((name for _, name in _names_at(text)), key=len, reverse=True)


def _names_at(text: str) -> list[tuple[int, str]]:
    """(start, name) of each capitalised run. A single capitalised word opening the question is left out: it is
    capitalised for being first ("Some", "Many"), not for being a name."""
    found = []
    for match in _NAME.finditer(text):
        parts = match.group(0).split()
        while parts and parts[0].lower() in _QUESTION_OPENERS:
            parts = parts[1:]
        while parts and parts[-1].lower() in {"of", "the", "and", "de", "la", "von", "van", "for", "in"}:
            parts = parts[:-1]
        opens_the_question = not text[: match.start()].strip()
        if parts and not (opens_the_question and len(parts) == 1 and parts[0] == match.group(0).split()[0]):
            found.append((match.start(), " ".join(parts)))
    return found


def fill_in(question: str, name: str) -> str:
    """The question with its first pointing-back pronoun replaced by ``name`` (``one of name`` for a bare "which
    one", ``about name`` added to an ellipsis).

    >>> fill_in("What was his position?", "Ozzie Smith")
    "What was Ozzie Smith's position?"
    >>> fill_in("What else is significant?", "Pinhead")
    'What else is significant about Pinhead?'
    >>> fill_in("Which one cannot be overridden?", "Lint Levels")
    'Which one of Lint Levels cannot be overridden?'
    """
    tokens = list(_WORD.finditer(question))
    the = "the " if _takes_article(name) else ""
    for i, match in enumerate(tokens):
        word = match.group(0).lower()
        following = tokens[i + 1].group(0).lower() if i + 1 < len(tokens) else "?"
        if word in _POSSESSIVES or (word in _AMBIGUOUS and following not in _NOT_A_NOUN):
            replacement = f"{the}{name}'s"
        elif word in _SUBJECTS or word in _AMBIGUOUS:
            replacement = f"{the}{name}"
        else:
            continue
        if match.start() == 0:
            replacement = replacement[0].upper() + replacement[1:]
        return question[: match.start()] + replacement + question[match.end() :]
    if one := _ONE.search(question):
        return f"{question[: one.end()]} of {the}{name}{question[one.end() :]}"
    body = question.rstrip().rstrip("?").rstrip()
    return f"{body} about {the}{name}?"


def _takes_article(name: str) -> bool:
    # "the Pharos of Alexandria", but not "the Ozzie Smith": a name with a linking word inside reads as a thing.
    inner = name.split()[1:-1]
    return any(w in {"of", "for"} for w in inner) and not name.lower().startswith("the ")


def standalone_question(question: str, history: list[Turn], llm=None, max_new_tokens: int = 48) -> FollowUp:
    """What to search for beside ``question``, given the earlier ``history`` (oldest first).

    ``llm`` (anything with ``chat(messages, max_new_tokens)``), when given, is asked last, and its rewrite is kept only
    if it keeps the question's own words; otherwise the referent filled in from the conversation stands.
    """
    why = points_back(question) if history else None
    if why is None:
        return FollowUp(question, question, "as asked", "stands alone" if history else "first question")
    name = referent(history, question)
    filled = fill_in(question, name) if name else question
    if llm is None:
        if name is None:
            return FollowUp(question, question, "as asked", f"{why}, but nothing earlier to refer to")
        return FollowUp(question, filled, "referent", f"{why} -> {name}")
    rewritten = _llm_rewrite(llm, question, history, max_new_tokens)
    problem = _rewrite_problem(rewritten, question)
    if problem is None:
        return FollowUp(question, rewritten, "llm", f"{why}; rewritten by the LLM")
    logger.info("LLM rewrite of %r rejected (%s): %r", question[:80], problem, rewritten[:120])
    method = "referent" if name else "as asked"
    return FollowUp(
        question, filled, method, f"{why}; LLM rewrite rejected ({problem})" + (f" -> {name}" if name else "")
    )


REWRITE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace pronouns "
    "and references with what they refer to. Reply with the rewritten question only."
)


def _llm_rewrite(llm, question: str, history: list[Turn], max_new_tokens: int) -> str:
    transcript = "\n".join(f"user: {t.question}\nassistant: {t.answer[:300]}" for t in history[-3:])
    messages = [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast question: {question}"},
    ]
    lines = llm.chat(messages, max_new_tokens=max_new_tokens).strip().strip('"').splitlines()
    return lines[0].strip() if lines else ""


def _rewrite_problem(rewritten: str, question: str) -> str | None:
    """Why an LLM rewrite cannot stand in for the question, or None when it can."""
    if not rewritten.endswith("?"):
        return "not a question"
    if len(rewritten) > 3 * len(question) + 80:
        return "too long"
    own = {w for w in words(question) if len(w) > 3 and w not in _SUBJECTS | _POSSESSIVES | _AMBIGUOUS}
    kept = set(words(rewritten))
    if own and len(own & kept) / len(own) < 0.6:
        return "lost the question's words"
    return None


def legacy_rewrite(question: str, history: list[Turn], llm) -> FollowUp:
    """Sift 0.1's rewriter, kept only as the evals' baseline: always asks the LLM, and when the answer is not a
    question glues the previous question in front (the behaviour that let question 1 hijack question 2); its rewrite
    replaced the question in the search."""
    if not history:
        return FollowUp(question, question, "as asked", "first question", replaces_question=True)
    transcript = "\n".join(
        f"{role}: {text[:500]}" for t in history[-3:] for role, text in (("user", t.question), ("assistant", t.answer))
    )
    messages = [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast question: {question}"},
    ]
    lines = llm.chat(messages, max_new_tokens=64).strip().strip('"').splitlines()
    candidate = lines[0].strip() if lines else ""
    if not candidate or len(candidate) > 4 * len(question) + 100 or not candidate.rstrip().endswith("?"):
        return FollowUp(
            question, f"{history[-1].question} {question}", "llm", "0.1: previous question glued in front", True
        )
    return FollowUp(question, candidate, "llm", "0.1: rewritten by the LLM", replaces_question=True)
