"""Moving a corpus's vectors between vector stores (``sift migrate-vectors``): FAISS files <-> pgvector rows.

Both stores live beside the same SQL rows, which keep every passage's vector too; so a move copies what the target
lacks, then verifies it against the source: the same number of vectors as passages on both sides, and a random
sample of vectors equal to the last bit. The source is never touched before that passes, and only removed when
asked (``remove_source``). Re-running continues an interrupted move: pgvector takes the passages it lacks, a batch
per transaction (a chunk's vector is keyed by its id, so nothing is copied twice); a FAISS file is rebuilt whole
from SQL and written atomically.

Example::

    >>> report = migrate_vectors(faiss_store, pgvector_store, "notes")  # doctest: +SKIP
    >>> report.verified, report.copied, report.target_count  # doctest: +SKIP
    (True, 1204, 1204)
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np

from sift.ingestion import lexical, vectors
from sift.ingestion.store import Store
from sift.ingestion.vector_store import PgVectors

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 200


@dataclass(frozen=True)
class MigrationReport:
    """What a move did and found; ``verified`` is True only when every check passed."""

    corpus: str
    source: str
    target: str
    passages: int
    source_count: int
    target_count: int
    copied: int
    sampled: int
    mismatched: int
    source_removed: bool

    @property
    def verified(self) -> bool:
        return self.source_count == self.target_count == self.passages and self.mismatched == 0

    def lines(self) -> list[str]:
        """The report as a user reads it."""
        return [
            f"{self.corpus}: {self.source} -> {self.target}",
            f"  passages in SQL      {self.passages:,}",
            f"  vectors in {self.source:<9} {self.source_count:,}",
            f"  vectors in {self.target:<9} {self.target_count:,} ({self.copied:,} copied by this run)",
            f"  sample compared      {self.sampled:,} vectors, {self.mismatched:,} different",
            "  verified: yes" + ("; source removed" if self.source_removed else "; source left in place")
            if self.verified
            else "  verified: NO; the source is untouched. Re-run to continue, or see the log.",
        ]


def migrate_vectors(
    source: Store, target: Store, corpus_name: str, *, remove_source: bool = False, batch: int = 1000
) -> MigrationReport:
    """Copy a corpus's vectors from ``source``'s vector store to ``target``'s (two stores over one database), verify,
    and with ``remove_source`` remove the source's copy once verified."""
    if source.vectors.kind == target.vectors.kind:
        raise ValueError(f"The corpus's vectors are in {source.vectors.kind} already.")
    corpus = target.corpus(corpus_name)
    copied = 0
    if isinstance(target.vectors, PgVectors):
        copied = target.vectors.fill_from_sql(corpus.id, batch)
    else:
        # Built whole from SQL and written atomically: a crash leaves no file, and the next run builds it again.
        copied = target.vectors.count(corpus.id)
    chunk_ids = sorted(target.chunk_ids(corpus.id))
    sample = sorted(random.Random(corpus.id).sample(chunk_ids, min(SAMPLE_SIZE, len(chunk_ids))))
    want, got = source.vectors.stored(corpus.id, sample), target.vectors.stored(corpus.id, sample)
    mismatched = sum(
        1 for i in sample if i not in want or i not in got or not np.array_equal(want[i], got[i].astype(np.float32))
    )
    report = MigrationReport(
        corpus=corpus.name,
        source=source.vectors.kind,
        target=target.vectors.kind,
        passages=len(chunk_ids),
        source_count=source.vectors.count(corpus.id),
        target_count=target.vectors.count(corpus.id),
        copied=copied,
        sampled=len(sample),
        mismatched=mismatched,
        source_removed=False,
    )
    if not report.verified:
        logger.warning("migrating %s's vectors to %s did not verify: %s", corpus.name, report.target, report)
        return report
    if remove_source:
        _remove(source, corpus.id)
        return MigrationReport(**{**report.__dict__, "source_removed": True})
    return report


def _remove(store: Store, corpus_id: int) -> None:
    if isinstance(store.vectors, PgVectors):
        store.vectors.remove_corpus(corpus_id)
    else:
        store.vectors.forget(corpus_id)
        vectors.remove_indexes(store.index_folder, corpus_id)
        lexical.remove_indexes(store.index_folder, corpus_id)
