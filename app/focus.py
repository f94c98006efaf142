"""The answer's prompt holds only what the answer needs: each passage cut to its sentences closest to the question.

The generator reads every prompt token before it writes the first answer token, so a shorter prompt is a sooner
first token (about a millisecond a token for SmolLM2-135M on two CPU cores). The sentences are chosen by the
cosine of their embeddings to the question (the corpus's embedding model, one batch for all passages), and kept in
the passage's own order, so the text still reads as it was written.

Example::

    >>> from sift.retrieval.types import Candidate
    >>> passage = Candidate(1, "Lighthouses warn ships. Smeaton built the third tower. It was modelled on an oak.",
    ...                     1, "a.md", 0.5, 1)
    >>> focus_passages("What was Smeaton's tower modelled on?", [passage], minilm, 2)[0].text  # doctest: +SKIP
    'Smeaton built the third tower. It was modelled on an oak.'
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from sift.app.evidence import sentences
from sift.retrieval.types import Candidate

logger = logging.getLogger(__name__)


def focus_passages(question: str, passages: list[Candidate], embedder, keep: int) -> list[Candidate]:
    """The passages with only their ``keep`` sentences most similar to the question (0: the passages unchanged)."""
    spans = [sentences(p.text) for p in passages]
    if keep < 1 or all(len(s) <= keep for s in spans):
        return passages
    texts = [question] + [p.text[s:e] for p, found in zip(passages, spans, strict=True) for s, e in found]
    vectors = embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    similarity = vectors[1:] @ vectors[0]
    focused, offset = [], 0
    for passage, found in zip(passages, spans, strict=True):
        scores = similarity[offset : offset + len(found)]
        offset += len(found)
        if len(found) <= keep:
            focused.append(passage)
            continue
        kept = np.sort(np.argsort(-scores, kind="stable")[:keep])  # the best, in the passage's order
        focused.append(replace(passage, text=" ".join(passage.text[found[i][0] : found[i][1]] for i in kept)))
    return focused
