"""What the evals share: mode specs, progress reporting and the scratch store they ingest datasets into.

Example::

    >>> parse_modes(["none", "relevance:generative"], default_strategy="logits")
    [('none', None), ('relevance', 'generative')]
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ingestion.ingest import EXTRACTION_VERSION, IngestItem
from sift.rerank import Mode, Strategy

logger = logging.getLogger(__name__)

EvalProgress = Callable[[str, int, int], None]
"""Called as work advances with (what is being done, steps done, steps in all)."""


def parse_modes(specs: list[str], default_strategy: str) -> list[tuple[str, str | None]]:
    """``mode`` or ``mode:strategy`` -> (mode, strategy); modes without an LLM have no strategy."""
    parsed = []
    for spec in specs:
        mode, _, strategy = spec.partition(":")
        if mode not in set(Mode):
            raise ValueError(f"Unknown rerank mode {mode!r}; choose from {', '.join(Mode)}.")
        if strategy and strategy not in set(Strategy):
            raise ValueError(f"Unknown strategy {strategy!r}; choose from {', '.join(Strategy)}.")
        parsed.append((mode, (strategy or default_strategy) if Mode(mode).uses_llm else None))
    return list(dict.fromkeys(parsed))


def scratch_sift(settings: Settings, dataset: Path) -> Sift:
    """A Sift over its own SQLite + FAISS store under ``data_dir/eval-stores``, never the user's store.

    The folder is named after the dataset and everything that changes its passages (embedding model, chunking, index
    type), so a second run finds the dataset already ingested and only checks that it is unchanged.
    """
    key = "|".join(
        map(
            str,
            (
                dataset.resolve(),
                settings.embedding_model,
                settings.chunk_size,
                settings.chunk_overlap,
                settings.index_type,
                f"extraction-{EXTRACTION_VERSION}",
            ),
        )
    )
    folder = settings.data_dir / "eval-stores" / f"{dataset.name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    return Sift(settings.model_copy(update={"data_dir": folder, "database_url": None, "vector_store": "faiss"}))


def ingest_dataset(sift: Sift, corpus: str, items: list[IngestItem], on_progress: EvalProgress | None) -> None:
    """Ingest (or confirm unchanged) a dataset's documents; fails loudly if any document could not be stored."""

    def progress(done: int, total: int, _result) -> None:
        if on_progress is not None:
            on_progress(f"Ingesting {corpus}", done, total)

    failed = [r for r in sift.ingest(items, corpus, progress) if r.status == "failed"]
    if failed:
        raise ValueError(
            f"{len(failed)} of {len(items)} documents of {corpus} could not be ingested, e.g. "
            f"{failed[0].source}: {failed[0].reason}"
        )


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None
