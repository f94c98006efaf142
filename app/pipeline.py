"""The face of Sift: one object the CLI and the UI call for every action (ingest, list, delete, search, ask).

Models and the store are opened on first use and kept for the life of the object.

Example::

    >>> sift = Sift(Settings(data_dir="/tmp/sift-doc"))
    >>> results = sift.ingest_paths([Path("sample_corpus")], corpus="sample")  # doctest: +SKIP
    >>> sift.ask("Who designed the Pharos of Alexandria?", corpus="sample").citations[0].source  # doctest: +SKIP
    'sample_corpus/history-of-lighthouses.md'
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from app.config import Settings
from app.generation import CANNOT_ANSWER, Citation, Generator, finish
from app.models import Message, chat_model, embedding_model
from ingestion.ingest import FileResult, Ingestor, IngestItem, ProgressCallback, collect_files
from ingestion.store import StoredDocument, Store
from retrieval.dense import DenseRetriever
from retrieval.types import Candidate

SAMPLE_CORPUS_DIR = Path(__file__).resolve().parent.parent / "sample_corpus"
SAMPLE_CORPUS_NAME = "sample"


@dataclass
class Answer:
    """What ``ask`` returns: the answer, the passages it cites, and how it was reached."""

    question: str
    corpus: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    answered: bool = True
    standalone_question: str | None = None
    rerank: dict | None = None  # the reranker's trace, when a rerank mode ran
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The stable JSON shape of ``sift ask --json`` (see README)."""
        return {"question": self.question, "standalone_question": self.standalone_question, "corpus": self.corpus,
                "answer": self.text, "answered": self.answered, "citations": [asdict(c) for c in self.citations],
                "rerank": self.rerank, "timings_ms": self.timings_ms}


@dataclass(frozen=True)
class Status:
    """A step of ``ask_stream`` in words, for a status line ("Reranking 20 passages…")."""

    text: str


@dataclass(frozen=True)
class Token:
    """A piece of the answer as the model writes it."""

    text: str


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

    @cached_property
    def generator(self) -> Generator:
        return Generator(chat_model(self.settings), self.settings.answer_max_tokens)

    def ask(self, question: str, corpus: str, history: list[Message] | None = None, **options) -> Answer:
        """Answer a question (``ask_stream`` without the intermediate events)."""
        for event in self.ask_stream(question, corpus, history, **options):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("ask_stream ended without an answer")

    def ask_stream(self, question: str, corpus: str, history: list[Message] | None = None,
                   k: int | None = None, top_n: int | None = None) -> Iterator[Status | Token | Answer]:
        """Answer a question from a corpus, yielding Status events, then the answer's Tokens, then the Answer.

        With a conversation ``history`` (earlier user/assistant messages), the question is first rewritten to stand
        alone, so retrieval sees what "it" refers to.
        """
        if not question.strip():
            raise ValueError("The question is empty.")
        self.store.corpus(corpus)
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        standalone = question
        if history:
            yield Status("Reading the conversation…")
            standalone = self.generator.standalone_question(question, history)
            timings["rewrite"] = _elapsed_ms(clock)
        yield Status("Retrieving passages…")
        clock = time.perf_counter()
        candidates = self.search(standalone, corpus, k)
        timings["retrieve"] = _elapsed_ms(clock)
        passages = candidates[: top_n or self.settings.answer_top_n]
        answer = Answer(question, corpus, CANNOT_ANSWER, answered=False,
                        standalone_question=standalone if standalone != question else None, timings_ms=timings)
        if not passages or max(p.score for p in passages) < self.settings.answer_min_similarity:
            # Nothing in the corpus is close to the question: say so rather than let the model guess.
            yield Token(CANNOT_ANSWER)
            yield answer
            return
        yield Status(f"Writing the answer from {len(passages)} passages…")
        clock = time.perf_counter()
        pieces = []
        for piece in self.generator.stream(standalone, passages):
            pieces.append(piece)
            yield Token(piece)
        grounded = finish("".join(pieces), passages)
        timings["generate"] = _elapsed_ms(clock)
        answer.text, answer.citations, answer.answered = grounded.text, grounded.citations, grounded.answered
        yield answer


def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
