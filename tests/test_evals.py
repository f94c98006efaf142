"""The evals: metric code against hand-computed values and trec_eval's DL19 BM25 figure, reports (JSON, Markdown,
plot), and each ``sift eval`` command end to end on a small slice of the real datasets with the real models."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sift.app.eval_cli import eval_app
from sift.app.evals import reports, run_eval
from sift.app.evals.common import parse_modes, scratch_sift
from sift.app.evals.metrics import (
    best_over_references,
    ceiling,
    contains_any,
    contains_reference,
    exact_match,
    normalize_answer,
    ranking_metrics,
    token_f1,
    token_recall,
)
from sift.app.evals.qa import arrange, load_cmu
from sift.app.evals.reports import Report, ReportRow, list_reports, markdown_table, write_report
from sift.app.evals.rewrite import added_words, load_canard, names_added
from sift.app.followup import Turn
from sift.rerank.evaluation import load_trec

from conftest import REPO


def test_answer_metrics_match_hand_computed_values():
    assert normalize_answer("  The Eiffel Tower, in PARIS!") == "eiffel tower in paris"
    assert exact_match("An ant.", "ant") == 1.0
    assert exact_match("ants", "ant") == 0.0
    # "volta invented battery" vs "the battery": common {battery}; precision 1/3, recall 1/1 -> F1 0.5
    assert token_f1("Volta invented the battery", "the battery") == pytest.approx(0.5)
    # repeated tokens count once per occurrence on both sides: common {no:1}; P 1/2, R 1/1 -> 2/3
    assert token_f1("no no", "No.") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("", "yes") == 0.0
    assert best_over_references("Yes.", ["Volta did invent it.", "yes"], exact_match) == 1.0
    assert best_over_references("anything", [], token_f1) == 0.0


def test_an_answer_contains_a_reference_as_whole_tokens_in_order():
    assert contains_reference("In 1794, Volta married Teresa Peregrini [2].", "Teresa Peregrini")
    assert contains_reference("The war ended in 1945.", "1945") and not contains_reference(
        "The war ended in 1945.", "9"
    )
    assert contains_reference("It was THE voltaic pile!", "the Voltaic Pile.")  # SQuAD normalisation on both sides
    assert not contains_reference("Peregrini, Teresa", "Teresa Peregrini")  # in order
    assert not contains_reference("a voltaic piles", "voltaic pile")  # whole tokens
    assert not contains_reference("anything", "The")  # a reference with no words confirms nothing
    assert not contains_reference("", "Como")
    assert contains_any("Volta was born in Como.", ["Como, Italy", "Como"]) and not contains_any("Como", [])
    # recall counts the reference's tokens with repeats, in any order; the best reference counts
    assert token_recall("Peregrini married Volta", "Volta married Teresa Peregrini") == pytest.approx(3 / 4)
    assert token_recall("no", "no no") == pytest.approx(1 / 2) and token_recall("", "Como") == 0.0
    assert best_over_references("Zanino", ["Volta's sons: Giovanni, Zanino", "Zanino"], token_recall) == 1.0


def test_the_ceiling_of_real_passages(datasets):
    """Paragraphs of the CMU article on Volta stand for the passages an answer was written from."""
    text = (datasets / "cmu-wikiqa-s10" / "data" / "set4" / "a10.txt").read_text(encoding="latin-1")
    passages = [p for p in text.split("\n\n") if "Peregrini" in p or "electrophorus" in p]
    assert len(passages) == 2
    married = ceiling(passages, ["Alessandro Volta married Teresa Peregrini.", "Teresa Peregrini"])
    assert married.passages and married.sentence_contains and married.sentence_recall == 1.0
    # the best sentence, "In 1794, Volta married Teresa Peregrini, with whom he raised three sons, Giovanni, Flaminio
    # and Zanino.", has 16 tokens; against the first reference: common 4, precision 4/16, recall 4/5
    assert married.sentence_f1 == pytest.approx(2 * (4 / 16) * (4 / 5) / (4 / 16 + 4 / 5))
    # "A year later [than 1774], he improved and popularized the electrophorus": right, but no passage says 1775
    improved = ceiling(passages, ["Alessandro Volta improved and popularized the electrophorus in 1775.", "1775"])
    assert not improved.passages and not improved.sentence_contains and 0 < improved.sentence_recall < 1
    # a reference across two sentences is in the passage but in no single sentence
    across = ceiling(["Volta was born in Como. Italy was his home."], ["Como Italy"])
    assert across.passages and not across.sentence_contains
    assert ceiling([], ["Como"]) == ceiling([], [])


def test_ranking_metrics_match_hand_computed_values():
    qrels = {"q1": {"a": 2, "b": 1, "z": 0}, "q2": {"c": 1}, "q3": {"x": 0}}  # q3: nothing relevant, not counted
    run = {"q1": {"b": 3.0, "x": 2.0, "a": 1.0}, "q2": {"d": 2.0, "e": 1.0}}
    found = ranking_metrics(qrels, run)
    # q1, linear gain: DCG = 1/log2(2) + 0 + 2/log2(4) = 2; ideal = 2 + 1/log2(3)
    ndcg_q1 = 2 / (2 + 1 / math.log2(3))
    assert found["ndcg@10"] == pytest.approx(ndcg_q1 / 2, abs=1e-4)  # q2 found nothing: 0
    assert found["recall@10"] == pytest.approx(0.5) and found["recall@100"] == pytest.approx(0.5)
    assert found["mrr@10"] == pytest.approx(0.5)  # q1: first relevant at rank 1; q2: none


def test_dl19_bm25_order_gives_trec_evals_0_5058(datasets):
    queries, qrels_path = load_trec(datasets / "trec-dl19")
    qrels: dict[str, dict[str, int]] = {}
    for line in Path(qrels_path).read_text().splitlines():
        qid, _, doc, grade = line.split()
        qrels.setdefault(qid, {})[doc] = int(grade)
    run = {str(q["hits"][0]["qid"]): {str(h["docid"]): -float(i) for i, h in enumerate(q["hits"])} for q in queries}
    assert ranking_metrics(qrels, run, ("ndcg@10",))["ndcg@10"] == pytest.approx(0.5058, abs=1e-4)


def test_mode_specs():
    assert parse_modes(["none", "relevance", "rebel-two-turn:generative", "none"], "logits") == [
        ("none", None),
        ("relevance", "logits"),
        ("rebel-two-turn", "generative"),
    ]
    with pytest.raises(ValueError, match="mode"):
        parse_modes(["telepathy"], "logits")
    with pytest.raises(ValueError, match="strategy"):
        parse_modes(["relevance:guess"], "logits")


def test_report_files_table_and_plot(tmp_path):
    report = Report.new("qa", tmp_path / "cmu-wikiqa-s10", "f1", setup={"questions": 2})
    report.rows = [
        ReportRow(
            mode="none",
            strategy=None,
            queries=2,
            metrics={"f1": 0.25, "exact_match": 0.0},
            ms_per_query=900.0,
            timings_ms={"retrieve": 20.0, "generate": 880.0},
        ),
        ReportRow(
            mode="relevance",
            strategy="logits",
            queries=2,
            metrics={"f1": 0.31, "exact_match": 0.5},
            ms_per_query=4100.0,
            timings_ms={"retrieve": 20.0, "rerank": 3200.0, "generate": 880.0},
        ),
    ]
    files = write_report(report, tmp_path / "results")
    assert files.load() == report
    table = files.markdown.read_text()
    assert "| relevance:logits | 2 | 0.3100 | 0.5000 | 4100 | 20 | 3200 | 880 |" in table
    assert "| none | 2 | 0.2500 | 0.0000 | 900 | 20 | – | 880 |" in table
    assert files.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files.plot.stat().st_size > 5000
    # a row writes only the figures its eval measured: no rerank or QA fields as null
    assert set(json.loads(files.json.read_text())["rows"][0]) == {
        "mode",
        "strategy",
        "queries",
        "metrics",
        "ms_per_query",
        "timings_ms",
    }
    older = report.model_copy(update={"created": datetime(2026, 1, 1)})
    write_report(older, tmp_path / "results")
    assert list_reports(tmp_path / "results")[0].stem == files.stem  # newest first
    (tmp_path / "results" / "ingest-search-20991231-000000.json").write_text("{}")  # not a report: no table
    assert len(list_reports(tmp_path / "results")) == 2
    assert list_reports(tmp_path / "nowhere") == []
    assert markdown_table(report) == table


def test_a_table_of_many_figures_has_a_line_per_figure(tmp_path):
    report = Report.new("qa", tmp_path / "cmu-wikiqa-s10", "f1", setup={})
    figures = {f"figure {i}": i / 100 for i in range(12)}
    report.rows = [
        ReportRow(mode="none", strategy=None, style=None, queries=2, metrics=figures, ms_per_query=900.0),
        ReportRow(mode="none", strategy=None, style="extractive", queries=2, metrics={}, ms_per_query=100.0),
    ]
    table = markdown_table(report)
    assert "| mode:strategy | none | none [extractive] |\n|---|---|---|\n| queries | 2 | 2 |\n" in table
    assert "| figure 11 | 0.1100 | – |\n| ms/query | 900 | 100 |\n" in table
    # the JSON says which style each row asked for, None included
    rows = json.loads(report.model_dump_json())["rows"]
    assert [r["style"] for r in rows] == [None, "extractive"]


def test_a_report_against_a_yardstick_shows_passages_tokens_and_speedups(tmp_path):
    report = Report.new("rerank", tmp_path / "trec-dl19", "ndcg@10", setup={"speedup_against": "rebel-two-turn:x"})
    figures = [
        ("relevance", "logits", 0.64, 3000.0, 10.75, 2163.4, 5.3),
        ("rebel-two-turn", "x", 0.52, 15900.0, 20.0, 4100.0, 1.0),
    ]
    report.rows = [
        ReportRow(
            mode=mode,
            strategy=strategy,
            queries=8,
            metrics={"ndcg@10": ndcg},
            ms_per_query=ms,
            llm_scored_per_query=scored,
            tokens_per_query=tokens,
            speedup=speedup,
        )
        for mode, strategy, ndcg, ms, scored, tokens, speedup in figures
    ]
    table = write_report(report, tmp_path / "results").markdown.read_text()
    header = (
        "| mode:strategy | queries | ndcg@10 | ms/query | LLM-scored/query | tokens/query "
        "| × faster than rebel-two-turn:x |"
    )
    assert header in table
    assert "| relevance:logits | 8 | 0.6400 | 3000 | 10.8 | 2163 | 5.30 |" in table
    assert "| rebel-two-turn:x | 8 | 0.5200 | 15900 | 20.0 | 4100 | 1.00 |" in table


def test_a_figure_that_is_not_a_number_is_written_as_null(tmp_path):
    report = Report.new("retrieval", tmp_path / "beir", "ndcg@10", setup={})
    report.rows.append(
        ReportRow(
            mode="none",
            strategy=None,
            queries=0,
            metrics={"ndcg@10": math.nan},
            ms_per_query=math.inf,
            timings_ms={"retrieve": None},
        )
    )
    files = write_report(report, tmp_path / "results")
    row = json.loads(files.json.read_text())["rows"][0]  # json.loads would read NaN back: the file must say null
    assert "NaN" not in files.json.read_text() and "Infinity" not in files.json.read_text()
    assert row["metrics"] == {"ndcg@10": None} and row["ms_per_query"] is None
    assert "| none | 0 | – | – | – |" in files.markdown.read_text()


@pytest.mark.parametrize("kind", ["rerank", "retrieval", "qa"])
def test_reports_written_by_the_last_release_load_and_render_the_same(kind, tmp_path):
    """docs/results holds the reports of `make bench` run by Sift 0.1: JSON and the Markdown table it wrote."""
    text = (REPO / "docs" / "results" / f"{kind}.json").read_text()
    report = Report.model_validate_json(text)
    assert report.kind == kind and report.rows and report.machine.cpu_count
    assert markdown_table(report) == (REPO / "docs" / "results" / f"{kind}.md").read_text()
    assert json.loads(report.model_dump_json()) == json.loads(text)  # written back unchanged: no field lost or added
    if kind == "qa":
        assert report.rows[0].examples[0].references and report.rows[0].citations == 34
    if kind == "rerank":
        assert report.rows[0].metrics["ndcg@10 embedding"] is None and report.rows[1].tokens_per_query == 2162.8


# ---------------------------------------------------------------------------------------------- end to end


def cli_json(args: list[str]) -> dict:
    result = CliRunner().invoke(eval_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the progress bars go to stderr


def test_eval_rerank_on_dl19_slice(datasets, eval_settings, tmp_path):
    report = cli_json(
        [
            "rerank",
            "--trec",
            str(datasets / "trec-dl19"),
            "--mode",
            "none",
            "--mode",
            "relevance:logits",
            "--candidates",
            "10",
            "--limit",
            "2",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    none, relevance = report["rows"]
    assert (none["mode"], relevance["strategy"]) == ("none", "logits")
    # mode none keeps the BM25 order, so its nDCG is the BM25 baseline measured beside it
    assert none["metrics"]["ndcg@10"] == none["metrics"]["ndcg@10 bm25"] > 0
    assert relevance["queries"] == 2 and relevance["tokens_per_query"] > 10 * 20
    assert 0 < relevance["metrics"]["ndcg@10"] <= 1 and relevance["ms_per_query"] > 0
    assert Path(report["files"]["plot"]).is_file() and Path(report["files"]["markdown"]).is_file()


def test_eval_rerank_against_rebels_own_procedure(datasets, eval_settings, tmp_path):
    args = ["rerank", "--trec", str(datasets / "trec-dl19"), "--mode", "relevance:logits", "--rebel-reference"]
    report = cli_json([*args, "--candidates", "10", "--limit", "1", "--out", str(tmp_path / "out")])
    rows = {(r["mode"], r["strategy"]): r for r in report["rows"]}
    assert list(rows) == [
        ("relevance", "logits"),
        ("rebel-one-turn", "rebel-reference"),
        ("rebel-two-turn", "rebel-reference"),
    ]
    assert report["setup"]["speedup_against"] == "rebel-two-turn:rebel-reference"
    yardstick = rows["rebel-two-turn", "rebel-reference"]
    assert yardstick["speedup"] == 1.0 and yardstick["weights"] == {"rebel_final": 1.0}
    for row in rows.values():  # the same query and candidates, every figure measured
        assert row["queries"] == 1 and row["tokens_per_query"] > 10 * 20 and 0 <= row["metrics"]["ndcg@10"] <= 1
        assert row["metrics"]["ndcg@10 bm25"] == yardstick["metrics"]["ndcg@10 bm25"]
        assert row["speedup"] == round(yardstick["ms_per_query"] / row["ms_per_query"], 2)
    table = Path(report["files"]["markdown"]).read_text()
    assert "| tokens/query | × faster than rebel-two-turn:rebel-reference |" in table


def test_eval_retrieval_on_dbpedia_slice(beir_slice, eval_settings, tmp_path):
    out = tmp_path / "out"
    report = cli_json(
        ["retrieval", "--beir", str(beir_slice), "--mode", "none", "--mode", "relevance:logits", "--out", str(out)]
    )
    dense, reranked = report["rows"]
    assert report["setup"]["queries"] == 3 and report["setup"]["documents"] == 90
    # fewer than 100 documents: every one is retrieved, so recall@100 is exactly 1 for any order
    assert dense["metrics"]["recall@100"] == reranked["metrics"]["recall@100"] == 1.0
    assert dense["metrics"]["ndcg@10"] > 0.2 and 0 < reranked["metrics"]["ndcg@10"] <= 1
    assert "rerank" in reranked["timings_ms"] and "rerank" not in dense["timings_ms"]
    # the scratch store is not the user's: the user's data dir got reports, and no database or corpus
    assert not (eval_settings.data_dir / "sift.db").exists()
    scratch = scratch_sift(eval_settings, beir_slice)
    assert scratch.corpora() == ["beir"] and len(scratch.documents("beir")) == 90
    # a second run finds the dataset already ingested (unchanged) and measures the same dense ranking
    again = run_eval(eval_settings, "retrieval", beir_slice, ["none"])
    assert again.load().rows[0].metrics == dense["metrics"]
    assert len(reports(eval_settings)) == 1 and len(list_reports(out)) == 1


@pytest.fixture(scope="module")
def cmu_slice(datasets, tmp_path_factory) -> Path:
    """Two articles (ants, Alessandro Volta) and their questions."""
    source = datasets / "cmu-wikiqa-s10"
    folder = tmp_path_factory.mktemp("cmu") / "cmu-slice"
    folder.mkdir()
    lines = (source / "question_answer_pairs.txt").read_bytes().split(b"\n")
    keep = [lines[0]] + [line for line in lines[1:] if line.endswith((b"data/set1/a1", b"data/set4/a10"))]
    (folder / "question_answer_pairs.txt").write_bytes(b"\n".join(keep) + b"\n")
    for article in ("data/set1/a1.txt", "data/set4/a10.txt"):
        (folder / article).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / article, folder / article)
    return folder


def test_eval_qa_on_cmu_slice(cmu_slice, eval_settings, tmp_path):
    questions, _ = load_cmu(cmu_slice)
    assert {q.article for q in questions} == {"data/set1/a1.txt", "data/set4/a10.txt"}
    assert all(q.references for q in questions) and len({(q.article, q.text) for q in questions}) == len(questions)
    yes_no = next(q for q in questions if q.text == "Was Alessandro Volta a professor of chemistry?")
    assert yes_no.references == ("Alessandro Volta was not a professor of chemistry.", "No")

    report = cli_json(["qa", "--cmu", str(cmu_slice), "--mode", "none", "--limit", "3", "--out", str(tmp_path)])
    row = report["rows"][0]
    assert report["setup"]["questions"] == 3 and report["setup"]["articles"] == 2
    assert row["style"] is None and report["setup"]["answer_styles"] is None  # no --style: Sift's own choice
    metrics = row["metrics"]
    assert 0 <= metrics["exact_match"] <= metrics["f1"] <= 1
    assert 0 <= metrics["exact_match"] <= metrics["contains_reference"]  # an exact answer contains its reference
    assert metrics["contains_reference"] <= metrics["gold_token_recall"]  # containing it, it has all its tokens
    for name in ("cannot_answer_rate", "verified_rate", "ceiling_passages", "oracle_sentence_f1"):
        assert 0 <= metrics[name] <= 1
    # a sentence of the passages lies in them; a sentence containing a reference has all its tokens
    assert metrics["oracle_sentence_contains"] <= metrics["ceiling_passages"]
    assert metrics["oracle_sentence_contains"] <= metrics["oracle_sentence_recall"] <= 1
    assert metrics["verified_right"] is None or 0 <= metrics["verified_right"] <= 1
    assert metrics["answers_question_rate"] is None or 0 <= metrics["answers_question_rate"] <= 1
    # retrieval over two unrelated articles finds the question's own: most citations point at it
    assert row["citations"] > 0 and metrics["citation_accuracy"] >= 0.5
    assert {"retrieve", "rerank"} <= set(row["timings_ms"]) and row["ms_per_query"] > row["timings_ms"]["retrieve"]
    assert len(row["examples"]) == 3 and all(e["answer"] and e["references"] for e in row["examples"])
    assert sum(e["contains_reference"] for e in row["examples"]) == round(3 * metrics["contains_reference"])


def test_eval_qa_in_conversations_on_cmu_slice(cmu_slice, eval_settings, tmp_path):
    questions, _ = load_cmu(cmu_slice)
    chats = arrange(questions, 7)
    assert sum(map(len, chats)) == 7 and all(len(c) <= 4 for c in chats) and len(chats[0]) >= 3
    assert (len({q.article for q in chats[0]}) == 1 and len({q.article for q in chats[1]}) == len(chats[1]) == 2) or (
        len(chats[1]) > 2  # two articles only: a switching chat of 3-4 turns cannot switch every turn
    )

    report = cli_json(
        ["qa", "--cmu", str(cmu_slice), "--mode", "none", "--limit", "4", "--conversations", "--out", str(tmp_path)]
    )
    single, chats_now, chats_legacy = report["rows"]
    assert [r["variant"] for r in report["rows"]] == ["single", "conversations", "conversations, 0.1 rewriter"]
    assert report["setup"]["questions"] == 4 and report["setup"]["conversations"] >= 1
    for row in report["rows"]:
        assert row["queries"] == 4 and {"turn 1 f1", "turns 2+ citation_accuracy", "rewritten"} <= set(row["metrics"])
        assert 0 <= row["metrics"]["turns 2+ contains_reference"] <= 1
        assert row["metrics"]["oracle_sentence_contains"] <= row["metrics"]["ceiling_passages"]
    # a conversation's first turn is the single question: the same answer
    assert chats_now["metrics"]["turn 1 f1"] == single["metrics"]["turn 1 f1"] == chats_legacy["metrics"]["turn 1 f1"]
    assert single["metrics"]["rewritten"] == 0 and chats_legacy["metrics"]["rewritten"] > 0  # 0.1 always rewrote


@pytest.fixture(scope="module")
def canard_slice(datasets, tmp_path_factory) -> Path:
    """CANARD's first 30 questions (the first conversations, openers and follow-ups)."""
    folder = tmp_path_factory.mktemp("canard") / "canard-slice"
    folder.mkdir()
    examples = json.loads((datasets / "canard-dev" / "dev.json").read_text())[:30]
    (folder / "dev.json").write_text(json.dumps(examples))
    return folder


def test_eval_rewrite_on_canard_slice(canard_slice, eval_settings, tmp_path):
    examples = load_canard(canard_slice)
    first = examples[1]  # "When did they disband?" after "What group disbanded?"
    assert first.history[0] == Turn("What group disbanded?", "Zappa and the Mothers of Invention", ("Frank Zappa",))
    assert not first.self_contained and added_words(first) == {"zappa", "mothers", "invention"}
    assert names_added("When did Zappa and the Mothers of Invention disband?", first)
    assert not names_added("When did Frank Zappa disband?", first)  # one of three

    report = cli_json(["rewrite", "--canard", str(canard_slice), "--out", str(tmp_path)])
    legacy, referent, with_llm = report["rows"]
    assert [r["mode"] for r in report["rows"]] == ["legacy", "referent", "referent+llm"]
    assert report["setup"]["questions"] == 30 and report["setup"]["follow_ups"] > 10
    # without a conversation every method leaves a question alone; with one, 0.1 rewrote even self-contained ones
    assert referent["metrics"]["unchanged_self_contained"] >= 0.9
    assert referent["metrics"]["f1"] > referent["metrics"]["f1 as asked"]
    for row in (legacy, with_llm):
        assert 0 <= row["metrics"]["f1"] <= 1 and row["ms_per_query"] > referent["ms_per_query"]
    with pytest.raises(ValueError, match="Unknown rewrite method"):
        run_eval(eval_settings, "rewrite", canard_slice, methods=["telepathy"])


def test_eval_errors_are_one_line(tmp_path, eval_settings):
    result = CliRunner().invoke(eval_app, ["retrieval", "--beir", str(tmp_path)])
    assert result.exit_code != 0 and "is not a BEIR folder" in str(result.exception)
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td\t1\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "tides"}\n')
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d", "text": "moon"}\n{"_id": broken\n')
    with pytest.raises(ValueError, match=r"corpus\.jsonl line 2 is not valid JSON"):
        run_eval(eval_settings, "retrieval", tmp_path, ["none"])
    with pytest.raises(ValueError, match="Unknown eval"):
        run_eval(eval_settings, "vibes", tmp_path)
