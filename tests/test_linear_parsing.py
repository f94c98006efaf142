"""Parsing runs in linear time on any text: every regular expression that sees a document's text (Sift's own, and
those of markdown-it, inscriptis, nltk's punkt and llama-index's splitter behind the loaders and the chunker) is fed
long runs of what makes a backtracking pattern stall: spaces, word characters, hyphens, line breaks, unclosed
brackets and tags, repeated near-matches.

A hang detector, not a benchmark: each pathological input must finish within ``SLACK`` times the time the same code
takes on benign text of the same length, measured in the same test (or ``FLOOR`` seconds, for a fast baseline on a
busy machine). A quadratic pattern on these sizes takes hundreds of times longer than the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sift.ingestion.chunking import WINDOW, chunk_text
from sift.ingestion.loaders import load_document
from sift.ingestion.pdf_text import repair_hyphenation

SLACK = 20
FLOOR = 2.0  # seconds
SIZE = 200_000  # characters: quadratic work on this is ~10^10 steps, linear work well under a second


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from sift.app.models import packaged_embedding_folder

    return AutoTokenizer.from_pretrained(packaged_embedding_folder())


def benign(size: int) -> str:
    """Ordinary prose: sentences, paragraphs, a hyphenated word at a line end now and then."""
    paragraph = (
        "The keeper climbed the tower at dusk. He trimmed the wick, wound the clock-\nwork and lit the lamp; "
        "its beam swept the reef until dawn.\n\n"
    )
    return (paragraph * (size // len(paragraph) + 1))[:size]


def repeated(piece: str, size: int = SIZE) -> str:
    return (piece * (size // len(piece) + 1))[:size]


# Each input: long runs and repeated near-matches of what the patterns look for.
PATHOLOGICAL = {
    "spaces": " " * SIZE,
    "tabs and spaces": repeated(" \t"),
    "line breaks": "x" + "\n" * SIZE + "y",
    "one long word": "a" * SIZE,
    "hyphens": "-" * SIZE,
    "hyphenated words": repeated("a-"),
    "hyphen then spaces": "a-" + " " * SIZE + "\nb",
    "hyphen line ends": repeated("word-\n"),
    "soft hyphens": repeated("a\u00ad \t"),
    "front matter fences": "---\n" + repeated("\n--- x"),
    "unclosed front matter": "---\n" + repeated("a: b\n"),
    "hashes": repeated("#"),
    "heading padded": "# a" + " " * SIZE + "b",
    "emphasis": repeated("*a"),
    "underscores": repeated("_"),
    "backticks": repeated("`"),
    "brackets": repeated("["),
    "links": repeated("[a]("),
    "angle brackets": repeated("<"),
    "unclosed tags": repeated("<a "),
    "meta charset": repeated("<meta "),
    "entities": repeated("&#"),
    "full stops": repeated("."),
    "abbreviations": repeated("a. "),
    "quotes": repeated('"'),
    "parentheses": repeated("(a"),
}


def assert_linear(parse: Callable[[str], object], size: int = SIZE, cases: dict[str, str] = PATHOLOGICAL) -> None:
    parse(benign(1000))  # first-call costs (imports, nltk's punkt model) out of the baseline
    started = time.perf_counter()
    parse(benign(size))
    baseline = time.perf_counter() - started
    budget = max(FLOOR, SLACK * baseline)
    slow = {}
    for name, text in cases.items():
        started = time.perf_counter()
        parse(text[:size])
        took = time.perf_counter() - started
        if took > budget:
            slow[name] = round(took, 2)
    assert not slow, f"slower than {budget:.2f} s ({SLACK}x the {baseline:.3f} s benign baseline): {slow}"


def loads_or_refuses(source: str) -> Callable[[str], object]:
    """Load ``text`` as file ``source``; a refusal (no text, binary) is an answer too: only the time counts."""
    from sift.ingestion.loaders import UnreadableFile

    def parse(text: str):
        try:
            return load_document(source, text.encode())
        except UnreadableFile as exc:
            return exc

    return parse


@pytest.mark.parametrize("source", ["notes.txt", "notes.md", "page.html"])
def test_loaders_take_linear_time(source):
    assert_linear(loads_or_refuses(source))


def test_pdf_hyphen_repair_takes_linear_time():
    assert_linear(lambda text: repair_hyphenation(text.split("\f")), size=SIZE * 5)


def test_chunking_takes_linear_time(tokenizer):
    assert_linear(lambda text: chunk_text(text, tokenizer, 200, 30), size=SIZE // 4)


def test_chunking_one_huge_paragraph_tokenizes_bounded_pieces(tokenizer):
    """The 40 MB one-line file, scaled down: the splitter tokenized (and punkt sentence-split) the whole paragraph at
    once, 6 GB, then failed on punkt's 5 s regex limit. Now no call sees more than a window."""
    line = "The keeper trimmed the wick and wound the clockwork. "
    text = line * (1_000_000 // len(line))

    class Recording:
        longest = 0

        def encode(self, piece: str, **options):
            self.longest = max(self.longest, len(piece))
            return tokenizer.encode(piece, **options)

    recording = Recording()
    spans = chunk_text(text, recording, 200, 30)

    assert recording.longest <= WINDOW
    assert "".join(span.text for span in spans).count("keeper") >= text.count("keeper")  # all of it, with overlap
    assert all(text[s.start_char : s.end_char] == s.text and s.token_count <= 200 for s in spans)


def test_heading_padded_with_spaces_finishes_fast():
    """The old title regex backtracked over the spaces; markdown-it finds headings now."""
    padded = "# a" + " " * 10_000 + "b\n\ntext\n" + "#" * 5000 + " x" * 5000
    assert_linear(lambda text: load_document("hostile.md", text.encode()), len(padded), {"padded": padded})
    assert load_document("hostile.md", padded.encode()).title == "a b"
