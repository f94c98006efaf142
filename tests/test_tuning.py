"""`sift tune`: the fitter on judged queries, the replay against the real reranker, and the profile it writes being
the reranker's default for the same models (hand-set weights still winning)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from ranx import Qrels
from typer.testing import CliRunner

from sift.app.cli import cli
from sift.app.config import Settings
from sift.app.models import model_identity
from sift.app.pipeline import Sift
from sift.app.profiles import find_profile, profile_name
from sift.app.reranker import build_reranker
from sift.app.tuning import tune
from sift.rerank.evaluation import evaluate_rerank, load_trec
from sift.rerank.reranker import default_weights
from sift.rerank.tuning import JudgedQuery, fit_weights, ndcg_at_10
from sift.retrieval.types import Candidate


def synthetic_queries(judge_noise: float, n: int = 40, k: int = 20, seed: int = 7) -> list[JudgedQuery]:
    """Queries whose dense signal is a noisy view of the judgments and whose relevance judge is one of
    ``judge_noise``: a small model is a noisy judge, a bigger one a sharper judge."""
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(n):
        gains = rng.choice([0.0, 0.0, 1.0, 2.0, 3.0], size=k)
        ideal = np.sort(gains)[::-1][:10] @ (1 / np.log2(np.arange(2, 12)))
        scores = {
            "dense": gains + rng.normal(0, 1.5, k),
            "lexical": rng.normal(0, 1, k),
            "relevance": gains + rng.normal(0, judge_noise, k),
        }
        queries.append(JudgedQuery(scores=scores, gains=gains, tail_gains=np.array([]), ideal_dcg=float(ideal)))
    return queries


HAND_SET = {"relevance": 1.0, "dense": 4.0, "lexical": 1.0}


def test_the_fit_beats_or_keeps_the_hand_set_weights_and_drops_a_useless_signal():
    queries = synthetic_queries(judge_noise=1.0)
    fit = fit_weights(queries, HAND_SET)
    assert fit.ndcg > ndcg_at_10(queries, HAND_SET)
    assert fit.weights["lexical"] < 0.25 * max(fit.weights["relevance"], fit.weights["dense"])  # pure noise here
    assert fit.weights["relevance"] == 1.0  # written on REBEL's scale
    # weights that order every query perfectly cannot be improved on: the fit keeps them
    perfect = [
        JudgedQuery({"relevance": q.gains.copy(), "dense": -q.gains}, q.gains, np.array([]), q.ideal_dcg)
        for q in queries
    ]
    assert fit_weights(perfect, {"relevance": 1.0, "dense": 0.0}).weights == {"relevance": 1.0, "dense": 0.0}


def test_a_sharper_judge_earns_a_bigger_llm_weight():
    small = fit_weights(synthetic_queries(judge_noise=3.0), HAND_SET).weights
    big = fit_weights(synthetic_queries(judge_noise=0.3), HAND_SET).weights
    # on REBEL's scale relevance is 1, so a heavier judge shows as lighter first-stage weights
    assert big["dense"] < small["dense"]


def test_replaying_a_trace_gives_what_the_reranker_measures(datasets, settings):
    """The fit scores weights offline from traces; that is only honest if the replay orders as the reranker does:
    the hand-set weights replayed equal the measured nDCG, and so do other weights, measured by a second real run."""
    trec = datasets / "trec-dl19"
    reranker = build_reranker(settings.model_copy(update={"rerank_llm_k": 8}))
    found = evaluate_rerank(reranker, trec, candidates=24, limit=3, keep_traces=True)
    queries, qrels_path = load_trec(trec)
    qrels = Qrels.from_file(qrels_path, kind="trec").to_dict()
    hits = {q["query"]: q["hits"] for q in queries}
    judged = []
    for trace in found.traces:
        grades = qrels[str(hits[trace.query][0]["qid"])]
        gains = {i: grades.get(str(h["docid"]), 0) for i, h in enumerate(hits[trace.query])}
        judged.append(JudgedQuery.from_trace(trace, gains, list(grades.values())))
    assert ndcg_at_10(judged, reranker.base_weights) == pytest.approx(found.ndcg_at_10.reranked, abs=1e-4)
    other = {**reranker.base_weights, "relevance": 6.0}  # same first-stage weights: the same passages go to the LLM
    measured = evaluate_rerank(replace(reranker, weights=other), trec, 24, 3)
    assert ndcg_at_10(judged, other) == pytest.approx(measured.ndcg_at_10.reranked, abs=1e-4)
    assert measured.ndcg_at_10.reranked != found.ndcg_at_10.reranked  # the two weightings do order differently


@pytest.fixture
def tune_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SIFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIFT_CANDIDATES_K", "24")
    monkeypatch.setenv("SIFT_RERANK_LLM_K", "8")
    return Settings()


def test_sift_tune_writes_the_profile_the_reranker_then_starts_from(datasets, beir_slice, tune_env, monkeypatch):
    result = CliRunner().invoke(
        cli, ["tune", str(datasets / "trec-dl19"), str(beir_slice), "--limit", "2", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    rows = {row["variant"]: row for row in found["report"]["rows"]}
    assert list(rows) == [
        "hand-set weights",
        "fitted on trec-dl19",
        "fitted on dbpedia-slice",
        "fitted on all (the profile)",
    ]
    # every fit is measured on every dataset: the cross-dataset figures are in each row
    for row in rows.values():
        assert {"ndcg@10 trec-dl19", "ndcg@10 dbpedia-slice"} <= set(row["metrics"])
    # fitted on a dataset, a weighting is at least as good there as the hand-set one it started from
    for name in ("trec-dl19", "dbpedia-slice"):
        key = f"ndcg@10 {name}"
        assert rows[f"fitted on {name}"]["metrics"][key] >= rows["hand-set weights"]["metrics"][key]
    profile = found["profile"]
    assert profile["identity"] == model_identity(tune_env, "relevance", "logits")
    assert profile["weights"] == rows["fitted on all (the profile)"]["weights"]
    assert profile["fitted_on"] == ["trec-dl19 (2 queries)", "dbpedia-slice (2 queries)"]

    # the reranker for the same models starts from it, and its trace says so
    reranker = build_reranker(tune_env)
    assert reranker.profile.name == profile["name"] == profile_name(profile["identity"])
    candidates = [Candidate(i, text, i, f"{i}.md", 1.0 - i / 10, i + 1) for i, text in enumerate(["a cat", "a dog"])]
    trace = reranker.rerank("cats", candidates).trace
    assert trace.weights_profile == profile["name"] and trace.weights == profile["weights"]
    assert Sift(tune_env).rerank_weights() == profile["weights"]  # what the app's sliders start from
    # weights set by hand still win, criterion by criterion
    monkeypatch.setenv("SIFT_RERANK_WEIGHTS", '{"lexical": 0.3}')
    assert Sift(Settings()).rerank_weights() == {**profile["weights"], "lexical": 0.3}
    # profiles off: the hand-set defaults
    assert build_reranker(Settings(rerank_use_profile=False)).base_weights == {**HAND_SET, "lexical": 0.3}
    # another model set finds no profile
    other = Settings(llm_base_url="http://127.0.0.1:9/v1", llm_api_model="bigger")
    assert find_profile(other, model_identity(other, "relevance", "logits")) is None


def test_a_damaged_or_foreign_profile_is_passed_over(tune_env, caplog):
    identity = model_identity(tune_env, "relevance", "logits")
    shipped = find_profile(tune_env, identity)  # Sift's own for the packaged models (below), before any tuning here
    folder = tune_env.resolved_weights_dir()
    folder.mkdir(parents=True)
    path = folder / f"{profile_name(identity)}.json"
    path.write_text('{"name": "x", "weights": {"relevance": ')
    assert find_profile(tune_env, identity) == shipped
    path.write_text(json.dumps({"name": "x", "identity": {**identity, "llm": "another"}, "weights": {"dense": 9.0}}))
    assert find_profile(tune_env, identity) == shipped
    assert Sift(tune_env).rerank_weights() == {**HAND_SET, **(shipped.weights if shipped else {})}
    assert "cannot be read" in caplog.text and "fitted for other models" in caplog.text


def test_the_packaged_models_start_from_the_profile_fitted_here(settings):
    profile = find_profile(settings, model_identity(settings, "relevance", "logits"))
    assert profile is not None, "no shipped profile matches the installed packages (sift tune, then app/profiles)"
    assert [name.split(" (")[0] for name in profile.fitted_on] == ["trec-dl19", "dbpedia-entity-5k"]
    assert set(profile.weights) == set(HAND_SET) and profile.weights != HAND_SET
    assert Sift(settings).rerank_weights() == profile.weights
    assert Sift(settings.model_copy(update={"rerank_use_profile": False})).rerank_weights() == HAND_SET


def test_rebel_one_turn_starts_from_its_own_profile(settings):
    """One-turn's secondary criteria are fitted too; diversity (MMR, which the fit cannot replay) weighs 0, as the fit
    was measured without it."""
    profile = find_profile(settings, model_identity(settings, "rebel-one-turn", "logits"))
    assert profile is not None, "no shipped one-turn profile matches the installed packages"
    assert set(profile.weights) == set(default_weights("rebel-one-turn")) and profile.weights["diversity"] == 0
    assert profile.weights != find_profile(settings, model_identity(settings, "relevance", "logits")).weights
    assert Sift(settings).rerank_weights("rebel-one-turn") == {**default_weights("rebel-one-turn"), **profile.weights}


def test_a_one_turn_fit_weighs_diversity_0(datasets, tune_env):
    """The fit replays the composite without MMR, so its profile must not leave one-turn's default diversity on."""
    one_turn = tune_env.model_copy(update={"rerank_mode": "rebel-one-turn"})
    assert default_weights("rebel-one-turn")["diversity"] > 0
    _, profile, path = tune(one_turn, [datasets / "trec-dl19"], limit=1, write=False)
    assert path is None and profile.identity["mode"] == "rebel-one-turn"
    assert profile.weights["diversity"] == 0.0 and set(profile.weights) == set(default_weights("rebel-one-turn"))


def sift_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sift.app.cli", *args], capture_output=True, text=True, timeout=300)


def test_tune_refuses_what_it_cannot_fit(tune_env, tmp_path):
    refused = sift_command("tune", str(tmp_path), "--mode", "rebel-two-turn")
    assert refused.returncode == 1 and "no fixed weights to fit" in refused.stderr
    refused = sift_command("tune", str(tmp_path))
    assert refused.returncode == 1 and "neither a TREC DL folder" in refused.stderr
