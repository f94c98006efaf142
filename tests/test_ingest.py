"""Ingestion over real files: every supported format, idempotency, replacement, deletion, progress."""

from __future__ import annotations

import itertools
import json

import faiss
import numpy as np
import pytest
from sqlalchemy import text

from sift.app.pipeline import Sift
from sift.ingestion.ingest import IngestItem
from tests.conftest import SAMPLE_CORPUS


def vector_ids(sift: Sift, corpus: str) -> set[int]:
    """The chunk ids the corpus's vector store holds vectors for (FAISS's id map, or pgvector's rows)."""
    corpus_id = sift.store.corpus(corpus).id
    if sift.store.vectors.kind == "pgvector":
        with sift.store.engine.connect() as connection:
            query = text("SELECT chunk_id FROM chunk_vectors WHERE corpus_id = :c")
            return set(connection.execute(query, {"c": corpus_id}).scalars())
    index = sift.store.vector_index(corpus_id)
    return set() if index is None else set(faiss.vector_to_array(index.id_map).tolist())


def sql_ids(sift: Sift, corpus: str) -> set[int]:
    return sift.store.chunk_ids(sift.store.corpus(corpus).id)


def test_sample_corpus_every_format(store_settings):
    sift = Sift(store_settings)
    seen = []
    results = sift.ingest_paths(
        [SAMPLE_CORPUS], "sample", on_progress=lambda done, total, r: seen.append((done, total))
    )

    assert [r.status for r in results] == ["added"] * 6, results
    assert seen == [(i, 6) for i in range(1, 7)]
    documents = {d.source.split("/")[-1]: d for d in sift.documents("sample")}
    assert set(documents) == {p.name for p in SAMPLE_CORPUS.iterdir()}
    assert {d.media_type for d in documents.values()} >= {
        "text/plain",
        "text/markdown",
        "text/html",
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }
    # Titles and dates come from each format's own metadata.
    assert documents["history-of-lighthouses.md"].document_date.date().isoformat() == "2024-03-01"
    assert documents["famous-lighthouses-of-the-world.html"].title == "Famous Lighthouses of the World"
    assert documents["famous-lighthouses-of-the-world.html"].document_date.year == 2023
    assert documents["how-fresnel-lenses-work.pdf"].title == "How the Fresnel Lens Works"
    assert documents["how-fresnel-lenses-work.pdf"].document_date.year == 2022
    assert documents["automation-of-lighthouses.docx"].title.startswith("The Automation of Lighthouses")
    assert all(d.chunks >= 2 for d in documents.values())
    assert sql_ids(sift, "sample") == vector_ids(sift, "sample")


def test_chunks_are_sized_and_located(settings):
    sift = Sift(settings)
    text = (SAMPLE_CORPUS / "lighthouse-keepers-daily-life.txt").read_text()
    sift.ingest([IngestItem.from_bytes("keepers.txt", text.encode())], "c")
    with sift.store.session() as session:
        from sift.ingestion.schema import ChunkRow

        rows = session.query(ChunkRow).order_by(ChunkRow.ordinal).all()
    assert [r.ordinal for r in rows] == list(range(len(rows)))
    for row in rows:
        assert text[row.start_char : row.end_char] == row.text
        assert 0 < row.token_count <= settings.chunk_size
    # In order, nothing skipped, and sentence-level overlap where sentences are short enough to carry over.
    assert all(a.start_char < b.start_char <= a.end_char + 2 for a, b in itertools.pairwise(rows))
    assert any(b.start_char < a.end_char for a, b in itertools.pairwise(rows))
    # Stored embeddings are the normalised vectors FAISS holds.
    vector = np.frombuffer(rows[0].embedding, dtype=np.float32)
    assert vector.shape == (384,) and abs(np.linalg.norm(vector) - 1) < 1e-4


def test_unchanged_replaced_and_deleted(store_settings):
    sift = Sift(store_settings)
    first = IngestItem.from_bytes("notes.md", b"# Tides\nThe moon pulls the sea twice a day.")
    other = IngestItem.from_bytes("other.txt", b"Granite towers resist the waves.")
    assert [r.status for r in sift.ingest([first, other], "c")] == ["added", "added"]
    ids_before = sql_ids(sift, "c")

    again = sift.ingest([first], "c")
    assert again[0].status == "unchanged"
    assert sql_ids(sift, "c") == ids_before  # not re-embedded

    changed = IngestItem.from_bytes("notes.md", b"# Tides\nSpring tides come at new and full moon.")
    result = sift.ingest([changed], "c")[0]
    assert result.status == "replaced"
    documents = {d.source: d for d in sift.documents("c")}
    assert len(documents) == 2
    assert result.document_id == documents["notes.md"].id
    ids_after = sql_ids(sift, "c")
    assert ids_after == vector_ids(sift, "c")
    assert len(ids_before - ids_after) == 1 and len(ids_after - ids_before) == 1  # old passage out, new one in
    top = sift.search("spring tides", "c", k=1)[0]
    assert "Spring tides" in top.text

    sift.delete_document("c", documents["notes.md"].id)
    assert [d.source for d in sift.documents("c")] == ["other.txt"]
    assert sql_ids(sift, "c") == vector_ids(sift, "c") and len(vector_ids(sift, "c")) == 1

    assert sift.delete_corpus("c") == 1
    assert sift.corpora() == []
    assert not list((store_settings.data_dir / "indexes").glob("corpus-*"))


def test_reopened_store_sees_everything(backend_settings):
    Sift(backend_settings).ingest_paths([SAMPLE_CORPUS / "history-of-lighthouses.md"], "c")
    reopened = Sift(backend_settings)
    hits = reopened.search("Who designed the Pharos of Alexandria?", "c", k=3)
    assert hits and hits[0].source == "history-of-lighthouses.md"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_folder_names_and_missing_path(settings, tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Alpha passage about harbours.")
    (folder / "sub" / "b.md").write_text("# Beta\nA passage about beacons.")
    (folder / ".hidden.txt").write_text("never ingested")
    results = Sift(settings).ingest_paths([folder], "c")
    assert sorted(r.source for r in results) == ["docs/a.txt", "docs/sub/b.md"]
    with pytest.raises(FileNotFoundError):
        Sift(settings).ingest_paths([tmp_path / "nope"], "c")


def test_sample_questions_find_their_document(backend_settings):
    sift = Sift(backend_settings)
    sift.ingest_paths(sorted(SAMPLE_CORPUS.iterdir()), "sample")
    questions = json.loads((SAMPLE_CORPUS.parent / "tests" / "sample_questions.json").read_text())
    found = 0
    for q in questions:
        hits = sift.search(q["question"], "sample", k=5)
        found += any(h.source == q["source"] and q["expected_phrase"] in " ".join(h.text.split()) for h in hits)
    assert found >= len(questions) - 1, f"only {found}/{len(questions)} questions found their passage in the top 5"
