"""Quote-first answers and the answers-the-question check, with the packaged models, on real files: a two-document
corpus (an HTML page and a Markdown note) and libffi's HTML manual as Debian installs it (nobody here wrote it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sift.app.config import Settings
from sift.app.evidence import sentences
from sift.app.pipeline import Sift
from sift.app.quotes import QuoteScorer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "two-documents"
LIBFFI_MANUAL = Path("/usr/share/doc/libffi8/html")  # Debian's libffi8 package (Python depends on it)
SCOBY = "How long does a SCOBY ferment the tea?"


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Sift:
    sift = Sift(Settings(data_dir=tmp_path_factory.mktemp("styles") / "data"))
    results = sift.ingest_paths(sorted(FIXTURES.iterdir()), "two")
    assert [r.status for r in results] == ["added", "added"]
    return sift


def quoted_from_its_passage(answer) -> bool:
    """Each piece of the answer before a citation marker is one sentence of the passage that marker cites, word for
    word (a confirmed yes-or-no question's "Yes: " aside)."""
    cited = {c.number: c.text for c in answer.citations}
    pieces = re.findall(r"(.+?) \[(\d+)\]", answer.text.removeprefix("Yes: "))
    return bool(pieces) and all(
        " ".join(piece.split()) in {" ".join(cited[int(n)][s:e].split()) for s, e in sentences(cited[int(n)])}
        for piece, n in pieces
    )


@pytest.mark.parametrize("after_falkirk", [False, True])
def test_the_scoby_question_is_answered_from_the_kombucha_note(two, after_falkirk):
    history = []
    if after_falkirk:  # the question the note came after on the path: the conversation must not mislead it
        first = two.ask("How high does the Falkirk Wheel raise boats?", "two")
        assert "24 metres" in first.text and first.citations[0].source == "falkirk-wheel.html"
        history = [first.turn]
    answer = two.ask(SCOBY, "two", history)  # the defaults: auto, which quotes with the packaged 135M model
    assert answer.style == "extractive" and answer.model_summary is None
    assert "one to three weeks" in answer.text and answer.citations[0].source == "kombucha.md"
    assert answer.addresses_question and quoted_from_its_passage(answer)
    evidence = answer.citations[0].evidence
    assert any(answer.citations[0].text[s:e].startswith("The SCOBY ferments the tea") for s, e in evidence)
    shown = answer.to_dict()
    assert (shown["answer_style"], shown["answers_question"]) == ("extractive", True)


def test_a_yes_or_no_question_is_answered_yes_only_by_a_sentence_that_says_so(two):
    confirmed = two.ask("Is kombucha fermented by a SCOBY?", "two")
    assert confirmed.text.startswith("Yes: Kombucha is sweetened tea fermented by a SCOBY")
    assert confirmed.verified and confirmed.citations[0].source == "kombucha.md" and quoted_from_its_passage(confirmed)
    # The wheel raises boats by 24 metres: a quote, but no "Yes", and not verified (a quote never says no).
    other = two.ask("Does the Falkirk Wheel raise boats by 30 metres?", "two")
    assert "24 metres" in other.text and not other.text.startswith("Yes") and not other.verified
    assert quoted_from_its_passage(other)


@dataclass
class WritesAboutTheWheel:
    """The packaged model, except that its answer is about the other document: the failure the issue saw, made
    certain (the real model's own wording varies with its prompt)."""

    model: object
    parameters = None  # as behind a server: a model too large to quote by default

    def stream(self, messages, max_new_tokens=256, max_sentences=0):
        yield "The Falkirk Wheel is a rotating boat lift in central Scotland [2]."  # the second passage given

    def query_likelihood(self, head, passages, tail, query):
        return self.model.query_likelihood(head, passages, tail, query)


@pytest.fixture
def wrong_writer(two, monkeypatch):
    monkeypatch.setattr(two.generator, "llm", WritesAboutTheWheel(two.generator.llm))
    return two


def test_a_written_answer_about_the_wrong_passage_does_not_answer_the_question(wrong_writer):
    answer = wrong_writer.ask(SCOBY, "two", answer_style="generative")
    assert answer.style == "generative" and answer.citations[0].source == "falkirk-wheel.html"
    # It restates the passage it cites, so the grounding check alone would pass it: the question decides.
    assert answer.citations[0].evidence and not answer.unsupported
    assert answer.addresses_question is False and answer.verified is False
    assert answer.to_dict()["answers_question"] is False


def test_under_auto_the_quote_replaces_a_written_answer_that_does_not_answer(wrong_writer):
    answer = wrong_writer.ask(SCOBY, "two")
    assert answer.style == "extractive" and "one to three weeks" in answer.text
    assert answer.model_summary and "Falkirk Wheel" in answer.model_summary  # shown, labelled as the model's
    assert answer.citations[0].source == "kombucha.md" and answer.addresses_question


@pytest.fixture(scope="module")
def libffi(tmp_path_factory) -> Sift:
    if not LIBFFI_MANUAL.is_dir():
        pytest.skip(f"no libffi manual at {LIBFFI_MANUAL}")
    sift = Sift(Settings(data_dir=tmp_path_factory.mktemp("libffi") / "data"))
    results = sift.ingest_paths(sorted(LIBFFI_MANUAL.glob("*.html")), "libffi")
    assert results and all(r.status == "added" for r in results)
    return sift


@pytest.mark.parametrize(
    ("question", "exact", "page"),
    [
        ("Is libffi completely thread-safe?", "not completely thread-safe", "Thread-Safety"),
        (
            "Which function must be used instead of ffi_prep_cif for a variadic function?",
            "ffi_prep_cif_var",
            "The-Basics",
        ),
        ("Which environment variable names the directory for libffi's temporary files?", "LIBFFI_TMPDIR", "Memory"),
    ],
)
def test_an_identifier_in_a_manual_is_quoted_exactly(libffi, question, exact, page):
    answer = libffi.ask(question, "libffi", answer_style="extractive")
    assert exact in answer.text and page in answer.citations[0].source and not answer.text.startswith("Yes")
    assert quoted_from_its_passage(answer) and answer.addresses_question


def test_the_llm_reads_only_the_sentences_it_is_given(two):
    """answer_quote_llm_sentences: the LLM's likelihood of the question, read for that many sentences (the best one
    0, the others below it, the unread ones at the lowest read); none by default."""
    passages = two.reranker().rerank(SCOBY, two.search(SCOBY, "two")).candidates[:2]
    _, unread = two.quote_scorer().features(SCOBY, passages)
    assert not unread[:, 0].any()
    read = QuoteScorer(two.embedder, two.generator.llm, likelihood_sentences=2)
    _, matrix = read.features(SCOBY, passages)
    values = np.unique(matrix[:, 0])
    assert len(values) == 2 and values[1] == 0 and values[0] < 0 and (matrix[:, 0] == values[0]).sum() > 1
