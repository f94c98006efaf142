"""The face of Sift: one object the CLI and the UI call for every action (ingest, list, delete, search, ask).

Models and the store are opened on first use and kept for the life of the object.

Example::

    >>> sift = Sift(Settings(data_dir="/tmp/sift-doc"))
    >>> results = sift.ingest_paths([Path("sample_corpus")], corpus="sample")  # doctest: +SKIP
    >>> sift.ask("Who designed the Pharos of Alexandria?", corpus="sample").citations[0].source  # doctest: +SKIP
    'sample_corpus/history-of-lighthouses.md'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from app.config import Settings
from app.models import embedding_model
from ingestion.ingest import FileResult, Ingestor, IngestItem, ProgressCallback, collect_files
from ingestion.store import StoredDocument, Store
from retrieval.dense import DenseRetriever
from retrieval.types import Candidate

SAMPLE_CORPUS_DIR = Path(__file__).resolve().parent.parent / "sample_corpus"
SAMPLE_CORPUS_NAME = "sample"


@dataclass(frozen=True)
class Citation:
    """A passage an answer cites, numbered as in the answer text ([1], [2], ...)."""

    number: int
    chunk_id: int
    document_id: int
    source: str
    title: str | None
    text: str
    score: float
    rank: int


@dataclass
class Answer:
    question: str
    corpus: str
    text: str
    citations: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The stable JSON shape of ``sift ask --json`` (see README)."""
        return {"question": self.question, "corpus": self.corpus, "answer": self.text,
                "citations": [asdict(c) for c in self.citations]}


class Sift:
    """Everything a user can do with Sift, over one settings object."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

    @cached_property
    def store(self) -> Store:
        return Store.open(self.settings)

    @cached_property
    def embedder(self):
        return embedding_model(self.settings)

    @cached_property
    def retriever(self) -> DenseRetriever:
        return DenseRetriever(self.store, self.embedder)

    # ------------------------------------------------------------------------------------------ corpora

    def corpora(self) -> list[str]:
        return self.store.corpus_names()

    def documents(self, corpus: str) -> list[StoredDocument]:
        return self.store.documents(corpus)

    def ingest_paths(self, paths: list[Path], corpus: str,
                     on_progress: ProgressCallback | None = None) -> list[FileResult]:
        return self.ingest(collect_files(paths), corpus, on_progress)

    def ingest(self, items: list[IngestItem], corpus: str,
               on_progress: ProgressCallback | None = None) -> list[FileResult]:
        return Ingestor(self.store, self.embedder, self.settings).ingest(corpus, items, on_progress)

    def delete_document(self, corpus: str, document_id: int) -> str:
        return self.store.delete_document(corpus, document_id)

    def delete_corpus(self, corpus: str) -> int:
        return self.store.delete_corpus(corpus)

    def ensure_sample_corpus(self, on_progress: ProgressCallback | None = None) -> list[FileResult] | None:
        """Ingest the bundled sample corpus when the store has no corpus at all; None when it has one."""
        if self.corpora():
            return None
        return self.ingest_paths(sorted(SAMPLE_CORPUS_DIR.iterdir()), SAMPLE_CORPUS_NAME, on_progress)

    # ------------------------------------------------------------------------------------------ questions

    def search(self, query: str, corpus: str, k: int | None = None) -> list[Candidate]:
        self.store.corpus(corpus)  # a wrong name fails here, before the embedding model loads
        return self.retriever.search(query, corpus, k or self.settings.candidates_k)

    def ask(self, question: str, corpus: str, k: int | None = None, top_n: int = 3) -> Answer:
        """Until generation lands, the answer is the best passage, cited, with the next ones as further citations."""
        candidates = self.search(question, corpus, k)
        citations = [Citation(n, c.chunk_id, c.document_id, c.source, c.title, c.text, c.score, c.rank)
                     for n, c in enumerate(candidates[:top_n], start=1)]
        if not citations:
            return Answer(question, corpus, "The corpus has no passages to answer from.")
        return Answer(question, corpus, f"{citations[0].text} [1]", citations)
