"""Lexical and hybrid retrieval over real stores: the BM25 index kept in agreement with SQL on every backend, exact
identifiers found where the embedding blurs them, and both first-stage signals on every candidate."""

from __future__ import annotations

import pytest

from sift.app.config import Settings
from sift.app.pipeline import Sift
from sift.ingestion import lexical
from sift.ingestion.ingest import IngestItem
from sift.rerank import Mode, Reranker
from sift.rerank.scorers import DenseSimilarity, LexicalScore
from sift.retrieval.types import Candidate

CORPUS = "tools"
# Passages about command-line flags; only one names the flag asked for, in a passage about something else.
NOTES = {
    "verbose.md": "Pass --verbose to print every step the tool takes, with timings, to the terminal.",
    "quiet.md": "The --quiet option silences progress output so that scripts can read only the results.",
    "dry-run.md": "Run with --dry-run to see which files would change without writing anything to disk.",
    "config.md": "Point --config at a TOML file to load settings; command-line flags override the file.",
    "colour.md": "Use --no-colour when the terminal cannot show ANSI colours, for example in CI logs.",
    "release.md": "Release notes for 2.0: the cache moved to ~/.cache/tool, start-up is twice as fast, and the old "
    "--frobnicate-xyz switch is gone.",
    "threads.md": "The --threads flag sets how many worker threads parse files in parallel; the default is 4.",
    # Its near namesakes, which the embedding cannot tell from it (dense ranks release.md 4th).
    "frob-all.md": "The --frobnicate-all flag frobnicates every file in the project before the build starts.",
    "frob-now.md": "Run --frobnicate-now to frobnicate the open files immediately instead of at the next save.",
    "frob-xy.md": "With --frobnicate-xy the tool frobnicates along both axes; it is slower but more thorough.",
}
QUERY = "--frobnicate-xyz"


def open_sift(settings: Settings, embedder, **changes) -> Sift:
    sift = Sift(settings.model_copy(update=changes))
    sift.__dict__["embedder"] = embedder  # the session's model, not a second copy
    return sift


def ingest(sift: Sift, notes: dict[str, str]) -> None:
    results = sift.ingest([IngestItem.from_bytes(name, text.encode()) for name, text in notes.items()], CORPUS)
    assert {r.status for r in results} <= {"added", "replaced"}


def assert_lexical_agrees_with_sql(sift: Sift) -> set[int]:
    corpus_id = sift.store.corpus(CORPUS).id
    in_sql = sift.store.chunk_ids(corpus_id)
    index = sift.store.lexical_index(corpus_id)
    indexed = set() if index is None else set(index.ids.tolist())
    assert indexed == in_sql, f"only in SQL: {in_sql - indexed}, only in BM25: {indexed - in_sql}"
    # and each row is its passage's text: a passage's own words score it above zero
    texts = sift.passage_texts(CORPUS, sorted(in_sql))
    for chunk_id, text in texts.items():
        assert index.scores(text, [chunk_id])[chunk_id] > 0
    return indexed


def test_lexical_index_follows_ingest_replace_and_delete(store_settings, embedder):
    sift = open_sift(store_settings, embedder)
    ingest(sift, NOTES)
    assert len(assert_lexical_agrees_with_sql(sift)) == len(NOTES)
    assert sift.search(QUERY, CORPUS, k=1, retrieval="lexical")[0].source == "release.md"

    ingest(sift, {"release.md": "Release notes for 2.0: the cache moved to ~/.cache/tool."})  # replaced
    assert_lexical_agrees_with_sql(sift)
    assert all(c.source != "release.md" for c in sift.search(QUERY, CORPUS, k=7, retrieval="lexical"))

    verbose = next(d.id for d in sift.documents(CORPUS) if d.source == "verbose.md")
    sift.delete_document(CORPUS, verbose)
    assert len(assert_lexical_agrees_with_sql(sift)) == len(NOTES) - 1
    # a new process reads the saved folder of the current version (FAISS); with pgvector it builds it from SQL and
    # writes no file
    reopened = open_sift(store_settings, embedder)
    corpus = reopened.store.corpus(CORPUS)
    saved = [corpus.index_version] if reopened.store.vectors.keeps_files else []
    assert [v for v, _ in lexical.existing_folders(reopened.store.index_folder, corpus.id)] == saved
    assert_lexical_agrees_with_sql(reopened)

    reopened.delete_corpus(CORPUS)
    assert lexical.existing_folders(reopened.store.index_folder, corpus.id) == []


@pytest.mark.parametrize("how", ["missing", "stale", "damaged"])
def test_lexical_index_is_rebuilt_when_missing_stale_or_damaged(how, settings, embedder):
    sift = open_sift(settings, embedder)
    ingest(sift, NOTES)
    corpus = sift.store.corpus(CORPUS)
    [(version, folder)] = lexical.existing_folders(sift.store.index_folder, corpus.id)
    if how == "missing":
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    elif how == "stale":  # a file of an older version, as a crash between the SQL commit and the save leaves
        folder.rename(lexical.index_path(sift.store.index_folder, corpus.id, version - 1))
    else:
        (folder / "chunk_ids.npy").write_bytes(b"\x93NUMPY garbage")

    reopened = open_sift(settings, embedder)
    assert reopened.search(QUERY, CORPUS, k=1, retrieval="lexical")[0].source == "release.md"
    assert_lexical_agrees_with_sql(reopened)
    assert [v for v, _ in lexical.existing_folders(reopened.store.index_folder, corpus.id)] == [version]


def test_hybrid_finds_an_exact_flag_that_dense_misses(backend_settings, embedder):
    settings = backend_settings
    sift = open_sift(settings, embedder)
    ingest(sift, NOTES)
    dense = [c.source for c in sift.search(QUERY, CORPUS, k=3, retrieval="dense")]
    assert "release.md" not in dense  # the embedding blurs the flag into every other flag
    for fusion in ("rrf", "minmax", "zscore"):
        hybrid = open_sift(settings, embedder, retrieval_fusion=fusion).search(QUERY, CORPUS, k=3, retrieval="hybrid")
        assert "release.md" in [c.source for c in hybrid], fusion


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_candidate_carries_both_signals(mode, backend_settings, embedder):
    sift = open_sift(backend_settings, embedder)
    ingest(sift, NOTES)
    candidates = sift.search("which flag silences progress output", CORPUS, k=5, retrieval=mode)
    assert candidates
    assert all(c.dense is not None and c.lexical is not None for c in candidates)
    query_vector = sift.retriever_for("dense").dense.embed_query("which flag silences progress output")[0]
    for c in candidates:
        [stored] = sift.store.embeddings(sift.store.corpus(CORPUS).id, [c.chunk_id]).values()
        assert c.dense == pytest.approx(float(stored @ query_vector), abs=1e-5)
    quiet = next(c for c in candidates if c.source == "quiet.md")
    assert quiet.lexical > 0 and quiet.dense > 0.3
    assert [c.rank for c in candidates] == list(range(1, len(candidates) + 1))


def test_scorers_compute_signals_candidates_lack(embedder):
    texts = ["The fog signal sounded all night.", "Brass lamps need polishing.", "A quiet harbour."]
    bare = [Candidate(i, t, i, "notes.md", 0.0, i + 1) for i, t in enumerate(texts)]
    found = LexicalScore().score("fog signal", bare)
    assert found.scores["lexical"][0] > 0 == found.scores["lexical"][1] == found.scores["lexical"][2]
    assert found.method == "bm25 over the candidates only"
    dense = DenseSimilarity(embedder).score("fog signal", bare).scores["dense"]
    assert dense[0] > dense[1] and dense[0] > dense[2]

    given = [Candidate(i, t, i, "notes.md", 0.0, i + 1, dense=0.1 * i, lexical=float(i)) for i, t in enumerate(texts)]
    assert DenseSimilarity(embedder).score("fog signal", given).scores["dense"].tolist() == [0.0, 0.1, 0.2]
    trace = Reranker(Mode.NONE).rerank("fog signal", given).trace
    assert trace.criterion_names() == ["dense", "lexical"]
    assert [[s.score for s in c.criteria] for c in trace.candidates] == [[0.1 * i, float(i)] for i in range(3)]
