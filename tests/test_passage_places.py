"""Every passage knows where it sits: the pages of a PDF and the section path of an HTML page are stored with it,
travel with it through search, the rerank trace and citations, and show in the CLI; a document can be read whole
with each passage's place in it; a store from Sift 0.1 upgrades, its old passages without pages."""

from __future__ import annotations

import json
import shutil

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from sift.app.config import Settings
from sift.app.documents import DocumentNotFound, DocumentView
from sift.app.generation import finish
from sift.app.pipeline import Sift
from sift.ingestion.ingest import NOT_KEPT, IngestItem
from sift.ingestion.store import MIGRATIONS
from tests.test_cli import sift as run_cli
from tests.test_extraction import pdf_bytes
from tests.test_history import FIXTURES, QUESTION

MANUAL_PAGES = [
    "The lamp room sits at the top of the tower. The keeper trims the wicks of the oil lamps every evening. "
    "Spare wicks are kept in a brass box beside the lamps.",
    "The Fresnel lens was invented by Augustin-Jean Fresnel in 1822. Its rings of prisms bend the light of the lamp "
    "into one narrow beam that sailors see from far away.",
    "The tower is built of granite blocks dovetailed together. The first such tower stood on the Eddystone rocks "
    "and withstood the storms for a century.",
]
GUIDE_HTML = b"""<html><head><title>Keeper's guide</title></head><body><main>
<h1>Keeper's guide</h1><p>What a keeper does, watch by watch.</p>
<h2>Night watch</h2><p>Wind the clockwork that turns the lens every two hours.</p>
<h3>Fog</h3><p>In thick fog, sound the fog horn once a minute until the fog lifts.</p>
<h2>Day watch</h2><p>Polish the brass and clean the soot from the lantern glass.</p>
</main></body></html>"""


def open_sift(settings: Settings, embedder) -> Sift:
    sift = Sift(settings)
    sift.embedder = embedder  # the session's model
    return sift


def assert_offsets_point_at_the_passages(sift: Sift, view: DocumentView) -> None:
    chunks = {c.id: c for c in sift.store.document_chunks(view.document_id)}
    assert [p.chunk_id for p in view.passages] == list(chunks)
    for passage in view.passages:
        chunk = chunks[passage.chunk_id]
        assert view.text[passage.start_char : passage.end_char] == chunk.text
        assert (passage.page_start, passage.page_end, passage.section) == (
            chunk.page_start,
            chunk.page_end,
            chunk.section,
        )


# ---------------------------------------------------------------------------------------------- PDF pages


def test_pdf_passages_carry_their_pages_to_search_citations_and_the_document_view(any_db_settings, embedder):
    sift = open_sift(any_db_settings.model_copy(update={"chunk_size": 48, "chunk_overlap": 8}), embedder)
    [result] = sift.ingest([IngestItem.from_bytes("manual.pdf", pdf_bytes(MANUAL_PAGES))], "manual")
    assert result.status == "added" and result.chunks >= 3

    chunks = sift.store.document_chunks(result.document_id)
    for chunk in chunks:
        pages = {n for n, words in ((1, "wick"), (2, "Fresnel"), (3, "granite")) if words in chunk.text}
        assert pages and (chunk.page_start, chunk.page_end) == (min(pages), max(pages)), chunk
        assert chunk.section is None  # the PDF has no headings

    [hit] = sift.search("Who invented the Fresnel lens?", "manual", k=1)
    assert "Augustin-Jean Fresnel" in hit.text and (hit.page_start, hit.page_end) == (2, 2)
    trace = sift.reranker("none").rerank("Who invented the Fresnel lens?", [hit]).trace
    assert (trace.candidates[0].page_start, trace.candidates[0].page_end) == (2, 2)
    [citation] = finish("Augustin-Jean Fresnel invented it in 1822 [1].", [hit]).citations
    assert (citation.page_start, citation.page_end, citation.section) == (2, 2, None)

    view = sift.document_view("manual", result.document_id)
    assert (view.source, view.media_type) == ("manual.pdf", "application/pdf")
    assert "Augustin-Jean Fresnel" in view.text
    assert_offsets_point_at_the_passages(sift, view)
    with pytest.raises(DocumentNotFound, match="No document with id 999"):
        sift.document_view("manual", 999)


def test_the_cli_shows_the_page_of_each_passage(tmp_path):
    manual = tmp_path / "manual.pdf"
    manual.write_bytes(pdf_bytes(MANUAL_PAGES))
    data_dir = tmp_path / "data"
    small = {"SIFT_CHUNK_SIZE": "48", "SIFT_CHUNK_OVERLAP": "8"}
    run_cli(data_dir, "ingest", str(manual), "--corpus", "manual", env=small)
    question = "Who invented the Fresnel lens?"

    found = json.loads(run_cli(data_dir, "search", question, "--corpus", "manual", "-k", "1", "--json").stdout)
    [top] = found["candidates"]
    assert (top["page_start"], top["page_end"], top["section"]) == (2, 2, None)
    assert "manual.pdf (p. 2)" in run_cli(data_dir, "search", question, "--corpus", "manual", "-k", "1").stdout

    answer = json.loads(
        run_cli(data_dir, "ask", question, "--corpus", "manual", "--mode", "none", "-k", "3", "--json").stdout
    )
    fresnel = [c for c in answer["rerank"]["candidates"] if c["page_start"] == 2]
    assert fresnel and all(c["page_end"] == 2 for c in fresnel)
    assert answer["answered"] and "Fresnel" in answer["answer"], answer["answer"]
    assert any((c["page_start"], c["page_end"]) == (2, 2) for c in answer["citations"]), answer["citations"]


# ---------------------------------------------------------------------------------------------- HTML sections


def test_html_section_paths_are_stored_and_shown(tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data", chunk_size=24, chunk_overlap=4)
    sift = open_sift(settings, embedder)
    [result] = sift.ingest([IngestItem.from_bytes("guide.html", GUIDE_HTML)], "guide")

    sections = {c.text.split("\n")[-1]: c.section for c in sift.store.document_chunks(result.document_id)}
    fog = next(section for passage, section in sections.items() if "fog horn" in passage)
    assert fog == "Keeper's guide > Night watch > Fog"
    brass = next(section for passage, section in sections.items() if "Polish the brass" in passage)
    assert brass == "Keeper's guide > Day watch"

    [hit] = sift.search("What does the keeper do in fog?", "guide", k=1)
    assert hit.section == "Keeper's guide > Night watch > Fog" and hit.page_start is None
    assert_offsets_point_at_the_passages(sift, sift.document_view("guide", result.document_id))

    shown = run_cli(settings.data_dir, "search", "What does the keeper do in fog?", "--corpus", "guide", "-k", "1")
    assert "guide.html (Keeper's guide > Night watch > Fog)" in shown.stdout


# ---------------------------------------------------------------------------------------------- a store from 0.1


def test_a_store_from_0_1_upgrades_and_its_passages_have_no_pages(tmp_path, embedder):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(FIXTURES / "store-from-0.1.db", data_dir / "sift.db")
    sift = open_sift(Settings(data_dir=data_dir), embedder)

    [hit] = sift.search(QUESTION, "lighthouses", k=3)
    assert (hit.source, hit.page_start, hit.page_end, hit.section) == ("eddystone.txt", None, None, None)
    with sift.store.engine.connect() as connection:
        newest = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # the store migrated all the way
        assert connection.execute(text("select version_num from alembic_version")).scalar() == newest
        assert connection.execute(text("select count(*) from documents where content is null")).scalar() == 1

    # Its passages can still be read in context (stitched: the original file was not kept) ...
    view = sift.document_view("lighthouses", hit.document_id)
    assert "Henry Winstanley" in view.text
    assert_offsets_point_at_the_passages(sift, view)
    # ... but not re-extracted: the reason says what to do.
    [result] = sift.reindex("lighthouses")
    assert (result.source, result.status, result.reason) == ("eddystone.txt", "failed", NOT_KEPT)
    assert sift.search(QUESTION, "lighthouses", k=1)[0].chunk_id == hit.chunk_id  # untouched
