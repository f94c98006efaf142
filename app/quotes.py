"""Quote-first answers: the sentences of the reranked passages that answer the question, quoted verbatim.

A small model writes answers that are often wrong even when it was handed the right passage; a quoted sentence
cannot be worse than the passage it comes from. Each sentence of the passages an answer is written from is scored
by signals Sift already has:

- ``likelihood``: the LLM's mean log-probability of the question given the sentence (the reranker's query-likelihood
  pass, over sentences instead of passages), relative to the question's best sentence;
- ``cosine`` and ``cosine_gap``: the embedding cosine of the sentence to the question, and its gap to the best one;
- ``overlap`` and ``exact``: the share of the question's content words in the sentence, and of its identifiers and
  numbers (``VX7731``, ``-d``, ``1759``), matched whole;
- ``position``: 1 / the passage's rank after reranking; ``short``: sentences of under six words (headings, captions).

A logistic model over them (``sift tune-quotes`` fits it on labelled questions: a sentence is right when it contains
a reference answer) turns them into the chance that a sentence answers the question. That chance also says whether
an answer (a quote, or a model's sentence through the evidence that supports it) addresses the question at all.

Example::

    >>> from sift.retrieval.types import Candidate
    >>> passages = [Candidate(1, "Kombucha is fermented tea. A SCOBY ferments it for one to three weeks.", 1,
    ...                       "kombucha.md", 0.6, 1)]
    >>> quotes = QuoteScorer(minilm, lm).score("How long does a SCOBY ferment the tea?", passages)  # doctest: +SKIP
    >>> quotes[0].text, round(quotes[0].chance, 2)                                                 # doctest: +SKIP
    ('A SCOBY ferments it for one to three weeks.', 0.71)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from sift.app.evidence import sentences
from sift.rerank import prompts
from sift.rerank.llm import ServerError
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)

FEATURES = ("likelihood", "cosine", "cosine_gap", "overlap", "exact", "position", "short")
"""The sentence scorer's signals, in the order of its weights."""

# Fitted as ``sift tune-quotes --limit 250`` fits them (a logistic regression, C=1) with the packaged models on 250
# CMU WikiQA questions (their top 3 passages' sentences), none of them in ``sift eval qa``'s held-out sample. With
# the LLM reading no sentence (answer_quote_llm_sentences 0) the likelihood is 0 for all: on 150 held-out questions
# its query likelihood over the 6 sentences the other signals rank highest added nothing to them (top sentence right
# 0.256 with it, 0.264 without, in 5-fold cross-validation) and cost 2-10 s a question on two busy cores. Used for
# any models ``sift tune-quotes`` has not fitted (a profile in data_dir/weights).
DEFAULT_WEIGHTS = {
    "likelihood": 0.0,
    "cosine": 1.8239,
    "cosine_gap": 1.298,
    "overlap": 2.1162,
    "exact": 0.2609,
    "position": 0.5573,
    "short": -1.6264,
    "intercept": -4.9111,
}

_TERM = re.compile(r"[\w][\w.\-/]*[\w]|\w")
_STOP = ENGLISH_STOP_WORDS | {"does", "did", "doing"}  # scikit-learn's list lacks these question words
_IDENTIFIER = re.compile(r"\d|_|[a-z][A-Z]|^-|[A-Z]{2,}")
# Words a yes-or-no question must find exactly: scikit-learn's stop words hold the number words ("eight" is not
# "one"), the ordinals ("third" is not "second") and the quantifiers ("all ants" is not "ants").
_EXACT_WORDS = frozenset(
    {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen"}
    | {"twenty", "forty", "fifty", "sixty", "hundred", "first", "second", "third", "fourth", "fifth", "last"}
    | {"all", "every", "only", "always", "most", "least"}
)
_NEGATIONS = {"not", "no", "never", "neither", "nor", "none", "nothing", "cannot", "without", "refused", "refuses"}
_YES_OR_NO = frozenset(
    {"is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "has", "have", "had", "will", "would"}
    | {"should", "shall", "may", "might", "must"}
)


@dataclass(frozen=True)
class Quote:
    """A sentence of a passage, and the chance (0-1) that it answers the question."""

    passage: int  # index into the passages scored
    start: int  # character range in the passage's text
    end: int
    text: str
    chance: float


def terms(text: str, original: bool = False) -> list[str]:
    """Words as a search for them keeps them: identifiers, flags, versions and numbers whole, lower-cased (as
    written with ``original``).

    >>> terms("Does asn1_create_element take -d or --cap-lints in v2.3.1?")
    ['does', 'asn1_create_element', 'take', '-d', 'or', '--cap-lints', 'in', 'v2.3.1']
    """
    found = []
    for m in _TERM.finditer(text):
        start = m.start()
        while start > 0 and text[start - 1] == "-" and (start < 2 or not text[start - 2].isalnum()):
            start -= 1  # a flag's dashes belong to it
        found.append(text[start : m.end()] if original else text[start : m.end()].lower())
    return found


def content_terms(text: str) -> list[str]:
    """The terms of a question that say what it is about: no stop words.

    >>> content_terms("How long does a SCOBY ferment the tea?")
    ['long', 'scoby', 'ferment', 'tea']
    """
    return list(dict.fromkeys(t for t in terms(text) if t not in _STOP))


def identifiers(text: str) -> list[str]:
    """The question's terms that must be matched exactly: numbers, codes, flags, snake_case and camelCase names.

    >>> identifiers("Which work order is about pump VX7731, the -d flag of socat 1.7 or getValue?")
    ['vx7731', '-d', '1.7', 'getvalue']
    """
    return list(dict.fromkeys(t.lower() for t in terms(text, original=True) if _IDENTIFIER.search(t)))


def asks_yes_or_no(question: str) -> bool:
    """Whether a question is answered by yes or no ("Is ...?", "Did ...?"), which no quote says in so many words; a
    choice ("Is it A or B?") is not.

    >>> asks_yes_or_no("Was Abraham Lincoln the sixteenth President?"), asks_yes_or_no("Who designed the Pharos?")
    (True, False)
    >>> asks_yes_or_no("Is the lift in Falkirk or in Glasgow?")
    False
    """
    words = terms(question)
    return bool(words) and words[0] in _YES_OR_NO and "or" not in words


def confirms(question: str, sentence: str) -> bool:
    """Whether a sentence says, in as many words, what a yes-or-no question asks: it holds every content word of the
    question (inflected as ``overlap`` counts them), every number, number word and identifier exactly, and no
    negation but the question's. Such a quote answers "yes".

    >>> confirms("Is the Giant Panda a mammal?", "The Giant Panda is a mammal native to China.")
    True
    >>> confirms("Do drums have at least eight membranes?", "Drums have at least one membrane.")
    False
    >>> confirms("Did Faraday advise on chemical weapons?", "Faraday refused to advise on chemical weapons.")
    False
    """
    words = set(terms(sentence))
    asked = content_terms(question)
    exact = identifiers(question) + [t for t in terms(question) if t in _EXACT_WORDS]
    return (
        bool(asked)
        and all(_matches(t, words) for t in asked)
        and all(t in words for t in exact)
        and _negations(sentence) == _negations(question)
    )


def _negations(text: str) -> set[str]:
    found = {t for t in terms(text) if t in _NEGATIONS}
    return found | {"n't"} if re.search(r"n't\b", text) else found


def _matches(term: str, vocabulary: set[str]) -> bool:
    """A content word matches its inflections ("ferment", "fermented"); a short word only itself."""
    if term in vocabulary:
        return True
    return len(term) >= 5 and any(w[:5] == term[:5] for w in vocabulary if len(w) >= 5)


class QuoteScorer:
    """Scores the sentences of passages for a question. The LLM reads the ``likelihood_sentences`` the cheap signals
    rank highest (its pass costs about a millisecond a token on two cores); with none, with ``lm`` None, or where
    it gives no likelihood (a server without prompt log-probabilities), the likelihood signal is 0 for all."""

    def __init__(self, embedder, lm=None, weights: dict[str, float] | None = None, likelihood_sentences: int = 0):
        self.embedder = embedder
        self.lm = lm
        self.weights = weights or DEFAULT_WEIGHTS
        self.likelihood_sentences = likelihood_sentences

    def features(self, question: str, passages: list[Candidate]) -> tuple[list[Quote], np.ndarray]:
        """Every sentence of the passages, and its signals: [sentences, len(FEATURES)]."""
        spans = [(i, s, e) for i, p in enumerate(passages) for s, e in sentences(p.text)]
        if not spans:
            return [], np.zeros((0, len(FEATURES)))
        texts = [passages[i].text[s:e] for i, s, e in spans]
        vectors = self.embedder.encode(
            [question, *texts], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        cosine = vectors[1:] @ vectors[0]
        asked = content_terms(question)
        exact = identifiers(question)
        overlap = np.zeros(len(texts))
        exact_share = np.zeros(len(texts))
        for row, text in enumerate(texts):
            words = set(terms(text))
            if asked:
                overlap[row] = sum(_matches(t, words) for t in asked) / len(asked)
            if exact:
                exact_share[row] = sum(t in words for t in exact) / len(exact)
        position = np.array([1.0 / (i + 1) for i, _, _ in spans])
        short = np.array([float(len(t.split()) < 6) for t in texts])
        cheap = cosine + overlap + exact_share
        likelihood = self._likelihood(question, texts, cheap)
        matrix = np.column_stack([likelihood, cosine, cosine - cosine.max(), overlap, exact_share, position, short])
        quotes = [Quote(i, s, e, t, 0.0) for (i, s, e), t in zip(spans, texts, strict=True)]
        return quotes, matrix

    def _likelihood(self, question: str, texts: list[str], cheap: np.ndarray) -> np.ndarray:
        """log P(question | sentence) minus the best sentence's, for the sentences the cheap signals rank highest;
        the rest, and all where the model gives none, get the lowest value read (0 where none was read)."""
        relative = np.zeros(len(texts))
        if self.lm is None or not self.likelihood_sentences:
            return relative
        chosen = np.argsort(-cheap, kind="stable")[: self.likelihood_sentences]
        try:
            found = self.lm.query_likelihood(prompts.QL_HEAD, [texts[i] for i in chosen], prompts.QL_TAIL, question)
        except ServerError as exc:  # a server without prompt log-probabilities (echo): the other signals decide
            logger.warning("No query likelihood for the quote scorer: %s", exc)
            return relative
        values = np.asarray(found.values, dtype=float)
        if not np.isfinite(values).any():
            return relative
        values = np.where(np.isfinite(values), values, np.nanmin(values))
        relative[:] = values.min() - values.max()
        relative[chosen] = values - values.max()
        return relative

    def chances(self, matrix: np.ndarray) -> np.ndarray:
        """The logistic model's chance that each sentence answers the question."""
        w = np.array([self.weights.get(name, 0.0) for name in FEATURES])
        return 1.0 / (1.0 + np.exp(-(matrix @ w + self.weights.get("intercept", 0.0))))

    def score(self, question: str, passages: list[Candidate]) -> list[Quote]:
        """The sentences of the passages, most likely to answer the question first."""
        quotes, matrix = self.features(question, passages)
        if not quotes:
            return []
        chance = self.chances(matrix)
        order = np.argsort(-chance, kind="stable")
        return [
            Quote(quotes[i].passage, quotes[i].start, quotes[i].end, quotes[i].text, round(float(chance[i]), 4))
            for i in order
        ]
