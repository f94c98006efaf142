"""The local LLM at int8 (dynamic quantisation of its linear layers) with the real packaged SmolLM2: it loads, ranks
like fp32, and falls back to fp32 where quantisation cannot run."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from sift.app.config import Settings
from sift.app.models import language_model, model_identity, packaged_llm
from sift.rerank.llm.local import _loaded
from sift.rerank.llm.precision import with_precision

pytestmark = pytest.mark.slow

QUERY = "how do lobsters grow"
HEAD = "Passage: "
TAIL = "\nA question this passage answers:"
# From clearly relevant to clearly not: an order both precisions should agree on.
PASSAGES = [
    "Lobsters grow by molting: they shed their hard shell and grow a new, larger one.",
    "A young lobster molts many times a year; adults molt about once a year as they grow bigger.",
    "Lobsters live on the rocky sea floor and hunt crabs, clams and worms at night.",
    "A lobster roll is a sandwich filled with lobster meat, popular in New England.",
    "The stock market closed higher on Friday after strong earnings reports.",
    "Install the package with pip and run the tests with pytest.",
]


@pytest.fixture(scope="module")
def fp32():
    return language_model(Settings(llm_precision="fp32"))


@pytest.fixture(scope="module")
def int8():
    return language_model(Settings(llm_precision="int8"))


def quantized_layers(model) -> int:
    return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())


def test_int8_loads_the_packaged_model_and_ranks_a_relevant_passage_first(int8, fp32):
    assert int8.precision == "int8" and quantized_layers(int8.model) > 0
    assert fp32.precision == "fp32" and quantized_layers(fp32.model) == 0
    scored = int8.query_likelihood(HEAD, [PASSAGES[4], PASSAGES[0]], TAIL, QUERY)
    assert scored.tokens > 0
    assert scored.values[1] > scored.values[0] + 0.5  # the molting passage, by a clear margin


def test_int8_scores_agree_in_order_with_fp32(int8, fp32):
    a = fp32.query_likelihood(HEAD, PASSAGES, TAIL, QUERY).values
    b = int8.query_likelihood(HEAD, PASSAGES, TAIL, QUERY).values
    # int8 moves every passage's mean log-probability (by up to ~1.2 nats here) and, on some CPUs, swaps two close
    # neighbours (the two molting passages on an Intel Xeon, 0.03 nats apart); the relevant ones stay on top and the
    # unrelated ones at the bottom.
    assert kendalltau(a, b).statistic >= 0.7
    assert set(np.argsort(-b)[:2]) == set(np.argsort(-a)[:2]) == {0, 1}
    assert set(np.argsort(-b)[-2:]) == set(np.argsort(-a)[-2:]) == {4, 5}
    assert np.all(np.isfinite(b)) and not np.allclose(a, b)


def test_int8_falls_back_to_fp32_where_quantisation_is_unavailable(monkeypatch, caplog):
    # As with a PyTorch that has dropped eager quantisation: importing it fails.
    monkeypatch.setitem(sys.modules, "torch.ao.quantization", None)
    folder, gguf_file = packaged_llm()
    lm = _loaded.__wrapped__(str(folder.resolve()), gguf_file, "cpu", str(Settings().model_cache_dir), "int8")
    assert lm.precision == "fp32" and quantized_layers(lm.model) == 0
    assert "int8 quantisation is unavailable" in caplog.text
    scored = lm.query_likelihood(HEAD, [PASSAGES[4], PASSAGES[0]], TAIL, QUERY)
    assert scored.values[1] > scored.values[0]


def test_int8_is_cpu_only():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert with_precision(model, "int8", "cuda") == (model, "fp32")


def test_the_precision_is_part_of_the_model_identity_for_weights_profiles():
    fp32 = model_identity(Settings(device="cpu"), "relevance", "logits")
    int8 = model_identity(Settings(device="cpu", llm_precision="int8"), "relevance", "logits")
    assert int8["llm"] == fp32["llm"] + " int8"
    assert "int8" not in fp32["llm"]  # fp32 keeps its name: the profile shipped for it stays found
    served = Settings(llm_precision="int8", llm_base_url="http://127.0.0.1:9/v1", llm_api_model="m")
    assert "int8" not in model_identity(served, "relevance", "logits")["llm"]
