"""Settings come from arguments, SIFT_* variables and a TOML file, in that order."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sift.app.config import Settings


def test_defaults(tmp_path):
    settings = Settings()
    assert settings.embedding_model == "packaged" and settings.llm_model == "packaged"
    assert settings.resolved_database_url() == f"sqlite:///{(tmp_path / 'data' / 'sift.db').resolve()}"
    assert settings.resolved_device() == "cpu"  # no GPU on the test machines; "auto" must pick the CPU


def test_environment_then_toml(tmp_path, monkeypatch):
    (tmp_path / "sift.toml").write_text(
        'chunk_size = 128\ncandidates_k = 7\ndatabase_url = "postgresql+psycopg://x/y"\n'
    )
    monkeypatch.setenv("SIFT_CANDIDATES_K", "9")
    settings = Settings()
    assert settings.chunk_size == 128  # from sift.toml in the working directory
    assert settings.candidates_k == 9  # the environment wins over the file
    assert settings.resolved_database_url() == "postgresql+psycopg://x/y"
    assert Settings(candidates_k=3).candidates_k == 3  # arguments win over both

    other = tmp_path / "elsewhere.toml"
    other.write_text('index_type = "hnsw"\n')
    monkeypatch.setenv("SIFT_CONFIG", str(other))
    assert Settings().index_type == "hnsw"


def test_invalid_values_are_refused():
    with pytest.raises(ValidationError):
        Settings(index_type="annoy")
    with pytest.raises(ValidationError):
        Settings(max_upload_mb=0)


def test_weights_under_the_old_criterion_names_are_refused_with_the_new_ones():
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match=r"now dense .* and lexical"):
        Settings(rerank_weights={"relevance": 1, "embedding": 2})
    assert Settings(rerank_weights={"dense": 2, "lexical": 0.5}).rerank_weights == {"dense": 2, "lexical": 0.5}


def test_the_latency_budget_from_the_environment_and_per_question(tmp_path, monkeypatch):
    from sift.app.pipeline import Sift

    monkeypatch.setenv("SIFT_RERANK_LLM_BUDGET_S", "2.5")
    sift = Sift(Settings(data_dir=tmp_path))
    assert sift.settings.rerank_llm_budget_s == 2.5
    assert sift.reranker("none").llm_budget_s == 2.5  # a question's default: the settings'
    assert sift.reranker("none", llm_budget_s=0.5).llm_budget_s == 0.5
    assert sift.reranker("none", llm_budget_s=0).llm_budget_s is None  # 0: no budget
    with pytest.raises(ValidationError):
        Settings(rerank_llm_budget_s=0)
