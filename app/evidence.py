"""Evidence: which sentences of each cited passage support the answer, and whether the answer is supported at all.

Every sentence of the answer is compared with every sentence of the passages it cites, by the cosine of their
embeddings (the corpus's own embedding model, in one batch: no extra LLM call). A cited passage's supporting
sentences are the ones close to an answer sentence that cites it; an answer with a sentence that no cited sentence
supports is marked unverified, so the app and the JSON do not present it as grounded.

Example::

    >>> from sift.app.models import packaged_embedding_folder                             # doctest: +SKIP
    >>> found = find_evidence("Smeaton copied an oak tree [1].", {1: "The tower was built in 1759. "
    ...                       "Smeaton modelled it on the shape of an oak tree."}, minilm)      # doctest: +SKIP
    >>> found.verified, found.spans[1]                                                      # doctest: +SKIP
    (True, [(29, 77)])
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from sift.app.generation import CITATION_MARKER, without_citations

logger = logging.getLogger(__name__)

# Calibrated with all-MiniLM-L6-v2 on SmolLM2-135M's answers to 30 CMU WikiQA questions (sift eval qa, mode none):
# the best cosine of an answer sentence to a sentence of its cited passages was 0.75-1.0 (10th-90th percentile) for
# the 6 sentences of right answers (F1 >= 0.5), and 0.02-0.23 for the same 34 sentences set against the passages
# cited for another article (a stand-in for a claim no passage makes). At 0.5 every right sentence is supported and
# no displaced one; 25 of the 30 answers were verified. Wrong answers (F1 = 0) mostly restate a passage sentence
# (median 0.73): this checks that an answer is grounded in what it cites, not that it answers the question.
SUPPORT_THRESHOLD = 0.5
CLOSE_TO_BEST = 0.1  # further sentences shown as evidence when within this of the best one
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=[ \t]*(?:[-*•>#]|\d+[.)])\s)")


@dataclass(frozen=True)
class Evidence:
    """``spans``: citation number -> (start, end) character ranges of the supporting sentences in that passage.
    ``unsupported``: answer sentences no cited sentence supports. ``verified``: there are none."""

    spans: dict[int, list[tuple[int, int]]]
    unsupported: list[str]
    verified: bool


def sentences(text: str) -> list[tuple[int, int]]:
    r"""(start, end) of each sentence, trimmed of surrounding space; linear time. A sentence ends at ., ! or ? before
    a space, at a blank line (headings, paragraphs), or before a list item or heading; a single line break inside a
    paragraph (a wrapped line) does not end one, nor does the point inside "1.5" or "v2.3.1".

    >>> sentences("One. Two!  Three")
    [(0, 4), (5, 9), (11, 16)]
    >>> text = "# Brewing\n\nAdd the\nSCOBY for 1.5 weeks.\n- Bottle it"
    >>> [text[s:e] for s, e in sentences(text)]
    ['# Brewing', 'Add the\nSCOBY for 1.5 weeks.', '- Bottle it']
    """
    found = []
    start = 0
    for m in [*_BOUNDARY.finditer(text), None]:
        end = m.start() if m else len(text)
        while start < end and text[start].isspace():
            start += 1
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        if stop - start > 1:
            found.append((start, stop))
        start = m.end() if m else len(text)
    return found


def find_evidence(answer: str, passages: dict[int, str], embedder, threshold: float = SUPPORT_THRESHOLD) -> Evidence:
    """Evidence for an answer whose ``[n]`` markers refer to ``passages[n]``."""
    claims = [(answer[s:e], [int(n) for n in CITATION_MARKER.findall(answer[s:e])]) for s, e in sentences(answer)]
    claims = [(without_citations(text), cited) for text, cited in claims]
    claims = [(text, cited) for text, cited in claims if len(re.findall(r"\w+", text)) >= 3]
    spans_of = {n: sentences(text) for n, text in passages.items()}
    pieces = [(n, s, e) for n, spans in spans_of.items() for s, e in spans]
    if not claims or not pieces:
        return Evidence({}, [text for text, _ in claims], verified=not claims)
    vectors = embedder.encode(
        [text for text, _ in claims] + [passages[n][s:e] for n, s, e in pieces],
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    similarity = vectors[: len(claims)] @ vectors[len(claims) :].T  # [claims, passage sentences]
    owner = np.array([n for n, _, _ in pieces])
    found: dict[int, set[int]] = {}
    unsupported = []
    for row, (text, cited) in enumerate(claims):
        allowed = np.isin(owner, cited) if cited else np.ones(len(pieces), dtype=bool)
        scores = np.where(allowed, similarity[row], -1.0)
        best = float(scores.max())
        if best < threshold:
            unsupported.append(text)
            continue
        for col in np.flatnonzero(scores >= max(threshold, best - CLOSE_TO_BEST)):
            found.setdefault(int(owner[col]), set()).add(int(col))
    spans = {n: sorted((pieces[c][1], pieces[c][2]) for c in cols) for n, cols in found.items()}
    return Evidence(spans, unsupported, verified=not unsupported)
