"""Dense retrieval through FAISS (exact by default, IVF and HNSW selectable) and pgvector; the llama-index retriever
face."""

from __future__ import annotations

import numpy as np
import pytest
from llama_index.core.schema import QueryBundle

from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ingestion import vectors
from sift.retrieval.llama_index import SiftRetriever
from tests.conftest import SAMPLE_CORPUS, settings_for


@pytest.fixture(scope="module")
def sample_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sample") / "data"
    Sift(Settings(data_dir=data_dir)).ingest_paths(sorted(SAMPLE_CORPUS.iterdir()), "sample")
    return data_dir


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_index_kinds_agree_on_the_sample(sample_data_dir, kind):
    exact = Sift(Settings(data_dir=sample_data_dir)).search("How does a Fresnel lens bend light?", "sample", k=5)
    approximate = Sift(Settings(data_dir=sample_data_dir, index_type=kind)).store
    # A different index kind rebuilds the index from the vectors in SQL.
    corpus_id = approximate.corpus("sample").id
    index = approximate.vector_index(corpus_id)
    assert index.ntotal == len(approximate.chunk_ids(corpus_id))
    hits = Sift(Settings(data_dir=sample_data_dir, index_type=kind)).search(
        "How does a Fresnel lens bend light?", "sample", k=5
    )
    assert hits[0].source == "how-fresnel-lenses-work.pdf"
    assert hits[0].chunk_id == exact[0].chunk_id


def test_index_kinds_on_synthetic_vectors():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(5000, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = np.arange(100, 5100)
    queries = data[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    truth = vectors.build_index(ids, data, 32, "flat").search(queries, 10)[1]
    for kind in ("ivf", "hnsw"):
        found = vectors.build_index(ids, data, 32, kind).search(queries, 10)[1]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=False)])
        assert recall > 0.8, (kind, recall)
    assert set(truth[:, 0]) <= set(ids)


def test_candidates_are_typed_and_ordered(sample_data_dir):
    hits = Sift(Settings(data_dir=sample_data_dir)).search("keeper's routine at a rock station", "sample", k=8)
    assert len(hits) == 8
    assert [h.rank for h in hits] == list(range(1, 9))
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert hits[0].document_id > 0 and hits[0].text and hits[0].media_type


def test_k_larger_than_corpus_and_empty_query(settings):
    sift = Sift(settings)
    sift.ingest_paths([SAMPLE_CORPUS / "light-characteristics.md"], "c")
    total = sift.documents("c")[0].chunks
    assert len(sift.search("flashing light", "c", k=1000)) == total
    with pytest.raises(ValueError, match="empty"):
        sift.search("   ", "c")


def test_llama_index_retriever(sample_data_dir):
    sift = Sift(Settings(data_dir=sample_data_dir))
    retriever = SiftRetriever(sift.retriever, corpus="sample", k=4)
    nodes = retriever.retrieve(QueryBundle("Who was Grace Darling?"))
    assert len(nodes) == 4
    assert nodes[0].node.metadata["source"] == "lighthouse-keepers-daily-life.txt"
    assert "Grace Darling" in nodes[0].node.get_content()
    assert nodes[0].score >= nodes[-1].score


def test_pgvector_finds_what_exact_faiss_finds(sample_data_dir, request, tmp_path):
    """The same passages, in the same order, with the same cosines, from pgvector's HNSW as from FAISS's flat index."""
    pgvector = Sift(settings_for("pgvector", request, tmp_path))
    pgvector.ingest_paths(sorted(SAMPLE_CORPUS.iterdir()), "sample")
    faiss_flat = Sift(Settings(data_dir=sample_data_dir))
    for question in ("How does a Fresnel lens bend light?", "keeper's routine at a rock station"):
        want = faiss_flat.search(question, "sample", k=8, retrieval="dense")
        got = pgvector.search(question, "sample", k=8, retrieval="dense")
        assert [(h.source, h.text) for h in got] == [(h.source, h.text) for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
