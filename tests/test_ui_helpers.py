"""The UI's pure helpers: the Inspector's table and chart from a trace, upload handling, Markdown escaping."""

from __future__ import annotations

import io
import re

import pytest

from sift.app.config import Settings
from sift.app.jobs import Jobs
from sift.app.pipeline import RerankTrace, Sift
from sift.ui.inspector_view import candidate_rows, change_colour, change_label, rank_movement_chart, weight_rows
from sift.ui.markdown import WORD_JOINER, escape
from sift.ui.uploads import file_row, submit_upload, upload_jobs


def candidate(chunk_id: int, retrieval_rank: int, final_rank: int, relevance: float | None) -> dict:
    return {
        "chunk_id": chunk_id,
        "document_id": chunk_id // 10,
        "source": f"doc{chunk_id}.md",
        "title": None,
        "document_date": None,
        "retrieval_rank": retrieval_rank,
        "retrieval_score": 0.5,
        "criteria": [
            {
                "name": "relevance",
                "score": relevance,
                "normalized": 0.0,
                "weight": 1.0,
                "fallback": relevance is None,
                "note": "",
            },
            {"name": "embedding", "score": 0.5, "normalized": 0.0, "weight": 1.0, "fallback": False, "note": ""},
        ],
        "composite": 1.0 / final_rank,
        "final_rank": final_rank,
        "rank_change": retrieval_rank - final_rank,
    }


TRACE = RerankTrace.model_validate(
    {
        "query": "q",
        "mode": "relevance",
        "strategy": "logits",
        "model": "m",
        "weights": {"relevance": 1.0, "embedding": 1.0},
        "criteria_methods": {"relevance": "query-likelihood"},
        "inferred": None,
        "timings_ms": {},
        "tokens_processed": 0,
        "notes": [],
        "candidates": [candidate(11, 1, 2, -3.0), candidate(12, 2, 3, None), candidate(13, 3, 1, -1.0)],
    }
)


def test_change_is_shown_as_an_arrow_and_a_colour():
    assert [change_label(n) for n in (3, -2, 0)] == ["▲3", "▼2", "–"]
    assert "1b7f3b" in change_colour("▲3") and "c62828" in change_colour("▼2") and change_colour("–") == ""


def test_candidate_rows_best_first_with_every_criterion():
    rows = candidate_rows(TRACE)
    columns = ["final rank", "retrieval rank", "change", "passage", "stage", "relevance", "embedding", "composite"]
    assert list(rows[0]) == columns
    assert {r["stage"] for r in rows} == {"–"}  # a trace stored before the cascade: the stage is unknown
    assert [(r["final rank"], r["retrieval rank"], r["change"]) for r in rows] == [
        (1, 3, "▲2"),
        (2, 1, "▼1"),
        (3, 2, "▼1"),
    ]
    assert rows[0]["passage"] == "doc13.md · passage 13"
    assert rows[2]["relevance"] is None  # a criterion that fell back has no score


def test_weight_rows_say_how_each_criterion_was_scored():
    assert weight_rows(TRACE) == [
        {"criterion": "relevance", "weight": 1.0, "scored by": "query-likelihood"},
        {"criterion": "embedding", "weight": 1.0, "scored by": ""},
    ]


def test_rank_movement_chart_draws_a_line_per_passage_with_both_axes():
    spec = rank_movement_chart(TRACE).to_dict()
    lines, right = spec["layer"]
    assert lines["encoding"]["y"]["axis"]["title"] == "retrieval rank"
    assert right["encoding"]["y"]["axis"] == {
        **right["encoding"]["y"]["axis"],
        "orient": "right",
        "title": "final rank",
    }
    assert lines["encoding"]["detail"]["field"] == "passage"
    assert lines["encoding"]["y"]["scale"]["reverse"] is True  # rank 1 at the top
    points = next(iter(spec["datasets"].values()))
    assert len(points) == 2 * len(TRACE.candidates)
    promoted = {(p["side"], p["rank"], p["movement"]) for p in points if p["passage"] == "doc13.md · passage 13"}
    assert promoted == {("retrieval rank", 3, "promoted"), ("final rank", 1, "promoted")}


def test_an_upload_is_queued_as_a_job_with_a_worker_to_run_it(tmp_path, monkeypatch):
    sift = Sift(Settings(data_dir=tmp_path / "data"))
    sift.create_corpus("uploads")
    started = []
    monkeypatch.setattr("sift.ui.uploads.ensure_worker", started.append)
    note = io.BytesIO(b"# Notes")
    note.name = "../../etc/notes.md"

    job = submit_upload(sift, [note], "uploads")
    assert started == [sift.settings] and job.status == "queued"
    assert [j.id for j in upload_jobs(sift, "uploads")] == [job.id]
    assert Jobs.of(sift).upload_path(job.id, 0).read_bytes() == b"# Notes"  # on disk: a closed tab loses nothing
    ingested = job.files[0].model_copy(update={"status": "added", "source": "etc/notes.md", "chunks": 1})
    assert file_row(ingested) == {"file": "etc/notes.md", "result": "added", "passages": 1, "reason": ""}
    assert file_row(job.files[0])["file"] == "../../etc/notes.md"  # as sent, until it is stored


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "![i](http://evil/p.png)",
        ":red[alarm] $x^2$",
        "<b>bold</b> **b** _i_ `c` # h",
        "a\\b &amp;",
    ],
)
def test_escape_puts_a_backslash_before_every_markdown_character(text):
    escaped = escape(text)
    # reads back as the same text (the invisible word joiners that keep URLs from becoming links aside)
    assert re.sub(r"\\(.)", r"\1", escaped).replace(WORD_JOINER, "") == text
    assert re.fullmatch(r"(?:\\[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~\\])*", escaped)  # no bare punctuation left


def test_escape_keeps_a_label_on_one_line():
    assert escape("two\nlines") == "two lines"


# What GFM turns into a link in the text Streamlit's renderer reads once backslash escapes are resolved
# (mdast-util-gfm-autolink-literal): a scheme's "://", "www.", and an e-mail address's "@" between word characters.
_GFM_AUTOLINK = re.compile(r"https?://|www\.|[\w.+-]@[\w-]", re.IGNORECASE)


@pytest.mark.parametrize(
    "text", ["See https://example.com/guide", "HTTP://EXAMPLE.COM", "www.example.org notes.md", "mail@example.com.md"]
)
def test_urls_and_addresses_stay_text(text):
    shown = escape(text)
    unescaped = re.sub(r"\\(.)", r"\1", shown)  # what the autolink finder reads
    assert not _GFM_AUTOLINK.search(unescaped)
    assert unescaped.replace(WORD_JOINER, "") == text  # and what the reader sees is the text as typed
