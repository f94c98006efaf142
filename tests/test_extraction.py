"""Text extracted faithfully: what a person reading the passages would check.

HTML reads as prose (inline code and links inside their sentence, code blocks keep their lines, menus dropped),
titles are plain text, PDF passages know their pages, words hyphenated at a line end are whole again, and every
passage knows the section it is in, for Markdown, HTML and DOCX. Real pages are used where they exist here: the
rustdoc book installed with Rust, and the sample corpus.
"""

from __future__ import annotations

import io
import statistics
from pathlib import Path

import pytest

from sift.ingestion.chunking import Span, chunk_text, embedding_text
from sift.ingestion.loaders import load_document
from sift.ingestion.pdf_text import repair_hyphenation
from tests.conftest import SAMPLE_CORPUS

RUSTDOC = Path.home() / ".rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/rustdoc"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from sift.app.models import packaged_embedding_folder

    return AutoTokenizer.from_pretrained(packaged_embedding_folder())


def passages(document, tokenizer, chunk_size: int = 200) -> list[Span]:
    return chunk_text(document.text, tokenizer, chunk_size, 20, pages=document.pages, sections=document.sections)


# ---------------------------------------------------------------------------------------------- HTML


def test_inline_markup_stays_in_its_sentence(tokenizer):
    html = (
        b"<html><body><nav><a href='/'>Home</a> <a href='/docs'>Docs</a></nav><main><h1>Docs</h1>"
        b"<p>Run <code>cargo doc</code> with <a href='https://doc.rust-lang.org'>--open</a> to <em>see</em> it."
        b"</p><pre><code><span class='k'>fn</span> main() {\n    <span>println!</span>(\"hi\");\n}</code></pre>"
        b"<ul><li>First <b>item</b></li><li>Second</li></ul>"
        b"<table><tr><td>Key</td><td><code>S</code></td></tr></table></main></body></html>"
    )

    [passage] = passages(load_document("page.html", html), tokenizer)

    assert "Run cargo doc with --open to see it." in passage.text.split("\n")
    assert 'fn main() {\n    println!("hi");\n}' in passage.text  # a code block keeps its lines and indentation
    assert "First item" in passage.text and "Second" in passage.text
    assert "Key" in passage.text and "Home" not in passage.text  # the menu is not content


@pytest.mark.skipif(not RUSTDOC.is_dir(), reason="the rustdoc book is not installed here")
@pytest.mark.parametrize(
    "page",
    ["how-to-write-documentation.html", "write-documentation/the-doc-attribute.html", "command-line-arguments.html"],
)
def test_real_rustdoc_page_reads_as_prose(page):
    import lxml.html

    html = (RUSTDOC / page).read_bytes()
    source = lxml.html.fromstring(html)
    document = load_document(page, html)

    lines = {" ".join(line.split()) for line in document.text.split("\n")} - {""}
    code = {" ".join(line.split()) for pre in source.iter("pre") for line in pre.text_content().split("\n")}
    headings = {" ".join(h.text_content().split()) for h in source.xpath("//h1|//h2|//h3|//h4|//h5|//h6")}
    inline = {" ".join(e.text_content().split()) for e in source.xpath("//p//code | //p//a | //p//em | //p//strong")}
    assert not (lines & inline) - code - headings, "an inline element on a line of its own"
    prose = lines - code - headings
    assert statistics.median(len(line.split()) for line in prose) >= 8  # was 3: one fragment per inline element
    paragraphs = [" ".join(p.text_content().split()) for p in source.xpath("//main//p")]
    paragraphs = [p for p in paragraphs if len(p.split()) >= 6]
    assert sum(p in lines for p in paragraphs) >= 0.95 * len(paragraphs)  # each paragraph is one line
    assert "Keyboard shortcuts" not in document.text and "navigate between chapters" not in document.text
    assert document.sections and document.title == source.findtext(".//title").strip()


def test_html_sections_and_plain_title():
    html = (
        b"<title>  <strong>Harbour</strong>\n   lights </title><p>Intro.</p><h1>Install</h1><p>Get it.</p>"
        b"<h2>Linux <code>apt</code></h2><p>Use apt.</p><h2>Mac</h2><p>Use brew.</p><h1>Use</h1><p>Run.</p>"
    )
    document = load_document("page.html", html)

    assert document.title == "Harbour lights"
    assert section_of(document, "Intro.") is None
    assert section_of(document, "Get it.") == ("Install",)
    assert section_of(document, "Use apt.") == ("Install", "Linux apt")
    assert section_of(document, "Use brew.") == ("Install", "Mac")
    assert section_of(document, "Run.") == ("Use",)


def section_of(document, words: str) -> tuple[str, ...] | None:
    position = document.text.index(words)
    [path] = [s.path for s in document.sections if s.start_char <= position < s.end_char] or [None]
    return path


# ---------------------------------------------------------------------------------------------- Markdown


def test_markdown_sections_setext_and_code_fences(tokenizer):
    markdown = (
        b"# **Harbour** `lights`\n\nIntro.\n\nInstallation\n------------\n\nGet it.\n\n"
        b"### Linux\n\n```sh\n# not a heading: a shell comment\napt install sift\n```\n\n## Use\n\nRun it.\n"
    )
    document = load_document("guide.md", markdown)

    assert document.title == "Harbour lights"
    assert section_of(document, "Intro.") == ("Harbour lights",)
    assert section_of(document, "Get it.") == ("Harbour lights", "Installation")
    assert section_of(document, "apt install") == ("Harbour lights", "Installation", "Linux")
    assert section_of(document, "Run it.") == ("Harbour lights", "Use")
    [passage] = passages(document, tokenizer)
    assert passage.section == "Harbour lights" and passage.page_start is None


# ---------------------------------------------------------------------------------------------- DOCX


def test_docx_sections_in_document_order():
    import docx

    word = docx.Document()
    word.add_heading("Keeper's handbook", level=1)
    word.add_paragraph("Read this first.")
    word.add_heading("Lamps", level=2)
    word.add_paragraph("Trim the wick.")
    table = word.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Oil", "Colza"
    word.add_heading("Log book", level=2)
    word.add_paragraph("Write the weather.")
    out = io.BytesIO()
    word.save(out)

    document = load_document("handbook.docx", out.getvalue())

    assert section_of(document, "Read this first.") == ("Keeper's handbook",)
    assert section_of(document, "Oil | Colza") == ("Keeper's handbook", "Lamps")  # the table where it stands
    assert section_of(document, "Write the weather.") == ("Keeper's handbook", "Log book")


# ---------------------------------------------------------------------------------------------- PDF


def pdf_bytes(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


PAGE_TEXTS = [
    "Page one is about lamps. " * 30 + "The lamps were trimmed before the hyphen-\nation example ended.",
    "Page two is about lenses. " * 30 + "A well-known maker of lenses. The well-\nknown lenses were signed.",
    "Page three is about towers. " * 30,
]


def test_pdf_passages_know_their_pages(tokenizer):
    document = load_document("manual.pdf", pdf_bytes(PAGE_TEXTS))

    assert [p.page for p in document.pages] == [1, 2, 3]
    spans = passages(document, tokenizer, chunk_size=64)
    for span in spans:
        words = {"lamps": 1, "lenses": 2, "towers": 3}
        pages = {page for word, page in words.items() if word in span.text}
        assert pages and (span.page_start, span.page_end) == (min(pages), max(pages)), span
    assert any(span.page_start == 1 and span.page_end == 2 for span in spans)  # a passage over the page break
    assert "hyphenation example" in document.text and "hyphen-" not in document.text
    assert "The well-known lenses" in document.text  # a real hyphen, written so elsewhere, is kept


def test_sample_pdf_every_passage_has_a_page(tokenizer):
    document = load_document("fresnel.pdf", (SAMPLE_CORPUS / "how-fresnel-lenses-work.pdf").read_bytes())
    spans = passages(document, tokenizer)
    assert len(document.pages) >= 2 and all(span.page_start and span.page_end for span in spans)
    assert spans[0].page_start == 1 and spans[-1].page_end == document.pages[-1].page


def test_hyphenation_rule():
    pages = ["A re-\nfraction and a co-\noperation; well-known, then well-\nknown.", "Mid-\nApril, 1990-\n1995."]
    assert repair_hyphenation(pages) == [
        "A refraction and a cooperation; well-known, then well-known.",
        "Mid-\nApril, 1990-\n1995.",
    ]


# ---------------------------------------------------------------------------------------------- embedding


def test_embedding_text_says_what_the_passage_is_about():
    span = Span("Run the installer.", 40, 58, 4, section="Installation > Linux")
    assert embedding_text(span, "Sift manual") == "Sift manual > Installation > Linux\n\nRun the installer."
    assert embedding_text(Span("x", 0, 1, 1, section="Sift manual > Use"), "Sift manual") == "Sift manual > Use\n\nx"
    assert embedding_text(Span("x", 0, 1, 1), None) == "x"
