"""`sift reindex`: every document re-extracted and re-embedded from the original file it kept, with the settings of
now; unchanged where the same passages come out. (Killing it mid-way: tests/test_crash_safety.py.)"""

from __future__ import annotations

import json

from sift.app.pipeline import Sift
from sift.ingestion.ingest import IngestItem
from tests.conftest import SAMPLE_CORPUS
from tests.test_cli import sift as run_cli
from tests.test_crash_safety import assert_sql_and_vectors_agree

SOURCES = ["history-of-lighthouses.md", "lighthouse-keepers-daily-life.txt", "how-fresnel-lenses-work.pdf"]


def passages(sift: Sift, corpus: str) -> dict[str, list[str]]:
    return {d.source: [c.text for c in sift.store.document_chunks(d.id)] for d in sift.documents(corpus)}


def test_reindex_with_a_new_chunk_size_replaces_every_document(any_db_settings, embedder):
    sift = Sift(any_db_settings)
    sift.embedder = embedder
    sift.ingest([IngestItem.from_path(SAMPLE_CORPUS / name) for name in SOURCES], "sample")
    before = passages(sift, "sample")

    smaller = Sift(any_db_settings.model_copy(update={"chunk_size": 64, "chunk_overlap": 8}))
    smaller.embedder = embedder
    seen = []
    results = smaller.reindex("sample", on_progress=lambda done, total, result: seen.append((done, total)))

    assert [(r.source, r.status) for r in results] == [(name, "replaced") for name in SOURCES]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    after = passages(smaller, "sample")
    for result in results:
        assert len(after[result.source]) == result.chunks > len(before[result.source])
    assert [d.source for d in smaller.documents("sample")] == sorted(SOURCES)  # same documents, same ids
    assert {r.document_id for r in results} == {d.id for d in sift.documents("sample")}
    assert_sql_and_vectors_agree(smaller.store, "sample")
    [hit] = smaller.search("How does a Fresnel lens bend light?", "sample", k=1)
    assert hit.source == "how-fresnel-lenses-work.pdf" and hit.page_start >= 1

    # Nothing changed since: the same passages and vectors come out, nothing is rewritten.
    again = smaller.reindex("sample")
    assert [r.status for r in again] == ["unchanged"] * 3
    assert passages(smaller, "sample") == after


def test_reindex_from_the_cli(tmp_path):
    note = tmp_path / "note.md"
    note.write_text("# Harbour lights\n\nRed to port, green to starboard.")
    data_dir = tmp_path / "data"
    run_cli(data_dir, "ingest", str(note), "--corpus", "harbour")

    shown = run_cli(data_dir, "reindex", "--corpus", "harbour")
    assert "unchanged  note.md (1 passages)" in shown.stdout
    assert "harbour: 0 added, 0 replaced, 1 unchanged, 0 failed" in shown.stdout
    assert "file" in shown.stderr  # the progress bar
    reported = json.loads(run_cli(data_dir, "reindex", "--corpus", "harbour", "--json").stdout)
    assert [(f["source"], f["status"]) for f in reported["files"]] == [("note.md", "unchanged")]

    missing = run_cli(data_dir, "reindex", "--corpus", "atlas", check=False)
    assert missing.returncode == 1 and "No corpus named 'atlas'" in missing.stderr
