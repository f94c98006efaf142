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

# Fitted by ``sift tune-quotes`` with the packaged models on 160 CMU WikiQA questions (3,700 sentences of their top 3
# passages), none of them among ``sift eval qa``'s held-out sample. On 100 held-out questions the top sentence holds a
# reference answer for 0.26 (an oracle's best sentence: 0.41; the query likelihood alone 0.25, the cosine alone 0.22,
# the word overlap alone 0.28). Used for any models ``sift tune-quotes`` has not fitted (a profile in data_dir/weights).
DEFAULT_WEIGHTS = {
    "likelihood": 0.5233,
    "cosine": 2.2318,
    "cosine_gap": 0.3015,
    "overlap": 1.9644,
    "exact": -0.6777,
    "position": 0.2274,
    "short": -1.5287,
    "intercept": -4.576,
}

# The LLM reads only the sentences the cheap signals rank this high: its pass costs about a millisecond a token.
LIKELIHOOD_SENTENCES = 12
_TERM = re.compile(r"[\w][\w.\-/]*[\w]|\w")
_STOP = ENGLISH_STOP_WORDS | {"does", "did", "doing"}  # scikit-learn's list lacks these question words
_IDENTIFIER = re.compile(r"\d|_|[a-z][A-Z]|^-|[A-Z]{2,}")


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


def _matches(term: str, vocabulary: set[str]) -> bool:
    """A content word matches its inflections ("ferment", "fermented"); a short word only itself."""
    if term in vocabulary:
        return True
    return len(term) >= 5 and any(w[:5] == term[:5] for w in vocabulary if len(w) >= 5)


class QuoteScorer:
    """Scores the sentences of passages for a question; ``lm`` may be None (or give no likelihood: a server without
    prompt log-probabilities), and the likelihood signal then counts as the best sentence's."""

    def __init__(self, embedder, lm=None, weights: dict[str, float] | None = None):
        self.embedder = embedder
        self.lm = lm
        self.weights = weights or DEFAULT_WEIGHTS

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
        if self.lm is None:
            return relative
        chosen = np.argsort(-cheap, kind="stable")[:LIKELIHOOD_SENTENCES]
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
