"""Model loading: the packaged models load from their installed packages, once per process, and the
OpenAI-compatible client talks to a real local server answering from the real model."""

from __future__ import annotations

import pytest

from sift.app.config import Settings
from sift.app.models import (ModelNotFound, OpenAICompatibleLLM, ServerError, chat_model, embedding_model,
                        local_llm)
from tests.openai_standin import serve


@pytest.fixture(scope="module")
def llm():
    return local_llm(Settings())


def test_packaged_llm_loads_once_and_answers(llm):
    assert local_llm(Settings()) is llm  # cached per process
    assert llm.device == "cpu" and next(llm.model.parameters()).dtype.is_floating_point
    assert llm.model.num_parameters() > 100_000_000  # SmolLM2-135M
    answer = llm.chat([{"role": "user", "content": "What is the capital of France? One word."}], max_new_tokens=12)
    assert "Paris" in answer


def test_streaming_matches_the_whole_answer(llm):
    messages = [{"role": "user", "content": "Name a colour of the rainbow."}]
    pieces = list(llm.stream_chat(messages, max_new_tokens=16))
    assert len(pieces) > 1
    assert "".join(pieces) == llm.chat(messages, max_new_tokens=16)


def test_embedding_model_is_packaged_minilm(embedder):
    assert embedding_model(Settings()) is embedder
    assert embedder.encode(["a passage"]).shape == (1, 384)


def test_local_folders_must_exist(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        embedding_model(Settings(embedding_model=str(tmp_path / "missing")))
    with pytest.raises(ModelNotFound, match="does not exist"):
        local_llm(Settings(llm_model=str(tmp_path / "missing")))


def test_packaged_gguf_is_converted_once(tmp_path):
    settings = Settings(model_cache_dir=tmp_path / "cache")
    converted = local_llm(settings)
    folders = list((tmp_path / "cache").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("SmolLM2-135M-Instruct.Q4_1-")
    assert (folders[0] / "model.safetensors").stat().st_size > 100_000_000
    messages = [{"role": "user", "content": "What is the capital of France? One word."}]
    assert converted.chat(messages, max_new_tokens=12) == local_llm(Settings()).chat(messages, max_new_tokens=12)


def test_a_local_hugging_face_folder_works(llm, tmp_path):
    folder = tmp_path / "smollm2-hf"
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    from_folder = local_llm(Settings(llm_model=str(folder)))
    assert from_folder is not llm
    messages = [{"role": "user", "content": "What is the capital of France? One word."}]
    assert from_folder.chat(messages, max_new_tokens=12) == llm.chat(messages, max_new_tokens=12)


def test_openai_compatible_server(llm):
    base_url, server = serve(llm, model_name="smollm2", api_key="k")
    try:
        client = chat_model(Settings(llm_base_url=base_url, llm_api_model="smollm2", llm_api_key="k"))
        assert isinstance(client, OpenAICompatibleLLM)
        messages = [{"role": "user", "content": "What is the capital of France? One word."}]
        expected = llm.chat(messages, max_new_tokens=12)
        assert client.chat(messages, max_new_tokens=12) == expected
        streamed = list(client.stream_chat(messages, max_new_tokens=12))
        assert len(streamed) > 1 and "".join(streamed) == expected

        with pytest.raises(ServerError, match="401"):
            OpenAICompatibleLLM(base_url, "smollm2", api_key="wrong").chat(messages)
        with pytest.raises(ServerError, match="not served"):
            OpenAICompatibleLLM(base_url, "other", api_key="k").chat(messages)
    finally:
        server.shutdown()
    with pytest.raises(ServerError, match="Cannot reach"):
        OpenAICompatibleLLM(base_url, "smollm2", timeout_s=2).chat(messages)
    with pytest.raises(ModelNotFound, match="SIFT_LLM_API_MODEL"):
        chat_model(Settings(llm_base_url=base_url))
