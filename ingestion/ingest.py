"""Files -> stored passages: load, chunk, embed, write; one result per file. Also re-extraction of a corpus from
the original files it kept (after an extraction change).

Each file is its own transaction: one bad file never stops the others, and a crash at any moment loses at most the
file being written. Identical content is not re-embedded. Each passage is stored with its pages and section path,
and embedded with the document's title and that path in front (``embedding_text``); the stored text stays plain.

Example::

    >>> from sentence_transformers import SentenceTransformer
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> store = Store.open(f"sqlite:///{folder}/sift.db", folder)
    >>> model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> options = IngestOptions(chunk_size=200, chunk_overlap=30, embedding_batch_size=64, max_file_bytes=2**20)
    >>> ingestor = Ingestor(store, model, options)  # doctest: +SKIP
    >>> [r.status for r in ingestor.ingest("notes", [IngestItem.from_bytes("a.txt", b"Tides.")])]  # doctest: +SKIP
    ['added']
    >>> [r.status for r in ingestor.reindex("notes")]  # doctest: +SKIP
    ['unchanged']
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from sift.ingestion.chunking import chunk_text, embedding_text
from sift.ingestion.isolation import IsolatedParser, ParseLimits
from sift.ingestion.loaders import (
    MAX_EXPANSION,
    LoadedDocument,
    UnreadableFile,
    load_document,
    media_type_of,
    safe_source_name,
)
from sift.ingestion.store import Chunk, CorpusDeleted, DocumentMeta, Store, StoreError, readable_database_error

logger = logging.getLogger(__name__)

Status = Literal["added", "unchanged", "replaced", "failed"]

EXTRACTION_VERSION = 3
"""How files become passages (loaders, chunking, the embedded text). Bumped with every change to them: stores built
by an older version are due a ``sift reindex`` (the evals' scratch stores are rebuilt)."""

# A passage of chunk_size tokens holds at least this many characters a token (dense text: numbers, symbols, CJK):
# a file may make as many passages as its text's limit (MAX_EXPANSION x the upload limit) fills at that density.
_DENSEST_CHARACTERS_PER_TOKEN = 2

NOT_KEPT = "the original file was not kept when it was ingested; upload it again"
SAME_NAME = "another file stored in this batch has the same name (names are compared in Unicode NFC form); rename one"


@dataclass(frozen=True)
class IngestOptions:
    """How files become passages: passage length and overlap in embedding-model tokens, how many passages are
    embedded at once, the largest file accepted (refused before it is read), and the limits a file's parsing runs
    under in a child process (None: parsed in this process, as tests of the loaders themselves do)."""

    chunk_size: int
    chunk_overlap: int
    embedding_batch_size: int
    max_file_bytes: int
    parse_limits: ParseLimits | None = None


@dataclass(frozen=True)
class IngestItem:
    """One file to ingest: its source name, its size (checked before reading) and how to read it."""

    source: str
    size: int
    read: Callable[[], bytes]

    @classmethod
    def from_path(cls, path: Path, source: str | None = None) -> IngestItem:
        return cls(safe_source_name(source or path.name), path.stat().st_size, path.read_bytes)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> IngestItem:
        return cls(safe_source_name(name), len(data), lambda: data)


@dataclass(frozen=True)
class FileResult:
    source: str
    status: Status
    reason: str | None = None
    document_id: int | None = None
    chunks: int = 0


ProgressCallback = Callable[[int, int, FileResult], None]
"""Called after each file with (files done, files in all, that file's result)."""


def collect_files(paths: Iterable[Path]) -> list[IngestItem]:
    """Files named directly, and every non-hidden file under named folders (recursively, in a stable order).

    Files in folders are named by their path from the folder's parent (``docs/a/b.md``), so two folders can hold
    files of the same name.
    """
    items: list[IngestItem] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path.parent)
                if file.is_file() and not any(part.startswith(".") for part in relative.parts):
                    items.append(IngestItem.from_path(file, relative.as_posix()))
        elif path.is_file():
            items.append(IngestItem.from_path(path))
        else:
            raise FileNotFoundError(f"No such file or folder: {path}")
    return items


class Ingestor:
    """Writes files into a corpus of the store."""

    def __init__(self, store: Store, model, options: IngestOptions):
        self.store = store
        self.model = model
        self.options = options
        self._parser: IsolatedParser | None = None

    def ingest(
        self, corpus_name: str, items: list[IngestItem], on_progress: ProgressCallback | None = None
    ) -> list[FileResult]:
        """One result per item, in order. A second file of the same name in one batch fails rather than silently
        replacing the first (two names on disk can differ only in their Unicode form and become one source)."""
        corpus = self.store.corpus(corpus_name, create=True)
        seen: set[str] = set()

        def ingest_one(item: IngestItem) -> FileResult:
            if item.source in seen:
                return FileResult(item.source, "failed", SAME_NAME)
            result = self._ingest_one(corpus.id, item)
            if result.status != "failed":
                seen.add(item.source)
            return result

        return self._each(items, ingest_one, lambda item: item.source, on_progress)

    def reindex(self, corpus_name: str, on_progress: ProgressCallback | None = None) -> list[FileResult]:
        """Re-extract, re-chunk and re-embed every document of a corpus from the original file it kept, each in one
        transaction: "replaced", "unchanged" (the same passages and vectors came out) or "failed" with a reason."""
        corpus = self.store.corpus(corpus_name)
        return self._each(
            self.store.document_ids(corpus.id),
            lambda document_id: self._reindex_one(corpus.id, document_id),
            str,
            on_progress,
        )

    def _each(
        self,
        work: list,
        do: Callable[..., FileResult],
        name: Callable[..., str],
        on_progress: ProgressCallback | None,
    ) -> list[FileResult]:
        """One result per piece of work, reported as it comes; the indexes are saved even when a progress callback
        stops the batch (Ctrl-C, a closed browser tab). Once the corpus is found deleted, the rest fail unread with
        that reason (``name`` gives their sources)."""
        results: list[FileResult] = []

        def report(result: FileResult) -> None:
            results.append(result)
            if on_progress is not None:
                on_progress(len(results), len(work), result)

        try:
            for position, item in enumerate(work):
                try:
                    report(do(item))
                except CorpusDeleted as exc:
                    logger.warning("corpus deleted during ingestion; %d files not written", len(work) - position)
                    for rest in work[position:]:
                        report(FileResult(name(rest), "failed", str(exc)))
                    break
        finally:
            if self._parser is not None:
                self._parser.close()
                self._parser = None
            self.store.save_indexes()
        return results

    def _load(self, source: str, data: bytes, max_expanded_bytes: int) -> LoadedDocument:
        if self.options.parse_limits is None:
            return load_document(source, data, max_expanded_bytes)
        if self._parser is None:  # one helper process per batch, closed by _each
            self._parser = IsolatedParser(self.options.parse_limits)
        return self._parser.load(source, data, max_expanded_bytes)

    def _passages(self, document: LoadedDocument, max_chars: int) -> list[Chunk]:
        """The document's passages, placed on its pages and sections, embedded with its title and section path;
        UnreadableFile when the text makes more passages than ``max_chars`` of dense text would."""
        spans = chunk_text(
            document.text,
            self.model.tokenizer,
            self.options.chunk_size,
            self.options.chunk_overlap,
            pages=document.pages,
            sections=document.sections,
            max_passages=max_chars // (_DENSEST_CHARACTERS_PER_TOKEN * self.options.chunk_size),
        )
        embeddings = self.model.encode(
            [embedding_text(s, document.title) for s in spans],
            batch_size=self.options.embedding_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [
            Chunk(
                i, s.text, s.start_char, s.end_char, s.token_count, embeddings[i], s.page_start, s.page_end, s.section
            )
            for i, s in enumerate(spans)
        ]

    def _ingest_one(self, corpus_id: int, item: IngestItem) -> FileResult:
        limit = self.options.max_file_bytes
        try:
            if item.size > limit:
                # Names the setting a user raises (the app's SIFT_MAX_UPLOAD_MB), so the message says what to do.
                raise UnreadableFile(
                    f"too large: {item.size / 2**20:.1f} MiB, the limit is {limit / 2**20:.1f} MiB (SIFT_MAX_UPLOAD_MB)"
                )
            media_type_of(item.source)  # refuses an unsupported type before reading the file
            data = item.read()
            digest = hashlib.sha256(data).hexdigest()
            if self.store.document_fingerprint(corpus_id, item.source) == digest:
                return FileResult(item.source, "unchanged")
            document = self._load(item.source, data, MAX_EXPANSION * limit)
            chunks = self._passages(document, MAX_EXPANSION * limit)
            meta = DocumentMeta(
                item.source, digest, document.media_type, len(data), document.title, document.document_date, data
            )
            status, document_id = self.store.write_document(corpus_id, meta, chunks)
            return FileResult(item.source, status, document_id=document_id, chunks=len(chunks))
        except CorpusDeleted:
            raise
        except UnreadableFile as exc:
            return FileResult(item.source, "failed", str(exc))
        except SQLAlchemyError as exc:
            logger.warning("Ingesting %s failed", item.source, exc_info=True)
            return FileResult(item.source, "failed", readable_database_error(exc))
        except OSError as exc:
            return FileResult(item.source, "failed", f"cannot read the file: {exc.strerror or exc}")
        except Exception as exc:  # one file's failure must never stop the others
            logger.warning("Ingesting %s failed", item.source, exc_info=True)
            return FileResult(item.source, "failed", f"{type(exc).__name__}: {exc}")

    def _reindex_one(self, corpus_id: int, document_id: int) -> FileResult:
        source = str(document_id)
        try:
            kept = self.store.document_meta(corpus_id, document_id)
            source = kept.source
            if kept.content is None:
                return FileResult(source, "failed", NOT_KEPT, document_id)
            # The upload limit may have been lowered since: a file already accepted is read whatever its size.
            limit = MAX_EXPANSION * max(self.options.max_file_bytes, len(kept.content))
            document = self._load(source, kept.content, limit)
            chunks = self._passages(document, limit)
            meta = replace(
                kept, media_type=document.media_type, title=document.title, document_date=document.document_date
            )
            if meta == kept and _same_passages(self.store.document_chunks(document_id), chunks):
                return FileResult(source, "unchanged", document_id=document_id, chunks=len(chunks))
            _, document_id = self.store.write_document(corpus_id, meta, chunks, if_sha256=kept.sha256)
            return FileResult(source, "replaced", document_id=document_id, chunks=len(chunks))
        except CorpusDeleted:
            raise
        except (UnreadableFile, StoreError) as exc:
            return FileResult(source, "failed", str(exc), document_id)
        except SQLAlchemyError as exc:
            logger.warning("Re-extracting %s failed", source, exc_info=True)
            return FileResult(source, "failed", readable_database_error(exc), document_id)
        except Exception as exc:  # one document's failure must never stop the others
            logger.warning("Re-extracting %s failed", source, exc_info=True)
            return FileResult(source, "failed", f"{type(exc).__name__}: {exc}", document_id)


def _same_passages(stored: list[Chunk], new: list[Chunk]) -> bool:
    """The same passages in the same places, with the same vectors (to float rounding: batches differ)."""
    return len(stored) == len(new) and all(
        replace(a, id=None, embedding=None) == replace(b, embedding=None)
        and np.allclose(a.embedding, b.embedding, atol=1e-5)
        for a, b in zip(stored, new, strict=True)
    )
