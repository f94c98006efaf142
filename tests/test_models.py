"""Model loading: the packaged models load from their installed packages, once per process; the one language model
answers locally or through a real local server speaking the OpenAI API from the real model."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sift.app.config import Settings
from sift.app.models import embedding_model, language_model
from sift.rerank.llm import LocalLM, ModelNotFound, ServerError, ServerLM
from tests.openai_standin import serve


@pytest.fixture(scope="module")
def llm():
    return language_model(Settings())


def test_packaged_llm_loads_once_and_answers(llm):
    assert isinstance(llm, LocalLM)
    assert language_model(Settings()) is llm  # cached per process
    # Another batch size is another face of the same loaded model: one model, one lock.
    other = language_model(Settings(rerank_batch_size=3))
    assert other.batch_size == 3 and other.model is llm.model and other.lock is llm.lock
    assert llm.device.type == "cpu" and next(llm.model.parameters()).dtype.is_floating_point
    assert llm.model.num_parameters() > 100_000_000  # SmolLM2-135M
    answer = llm.chat([{"role": "user", "content": "What is the capital of France? One word."}], max_new_tokens=12)
    assert "Paris" in answer


def test_streaming_matches_the_whole_answer(llm):
    messages = [{"role": "user", "content": "Name a colour of the rainbow."}]
    pieces = list(llm.stream(messages, max_new_tokens=16))
    assert len(pieces) > 1
    assert "".join(pieces) == llm.chat(messages, max_new_tokens=16)


def test_embedding_model_is_packaged_minilm(embedder):
    assert embedding_model(Settings()) is embedder
    assert embedder.encode(["a passage"]).shape == (1, 384)


def test_local_folders_must_exist(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        embedding_model(Settings(embedding_model=str(tmp_path / "missing")))
    with pytest.raises(ModelNotFound, match="does not exist"):
        language_model(Settings(llm_model=str(tmp_path / "missing")))


def test_packaged_gguf_is_converted_once(tmp_path):
    settings = Settings(model_cache_dir=tmp_path / "cache")
    converted = language_model(settings)
    folders = list((tmp_path / "cache").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("SmolLM2-135M-Instruct.Q4_1-")
    assert (folders[0] / "model.safetensors").stat().st_size > 100_000_000
    messages = [{"role": "user", "content": "What is the capital of France? One word."}]
    assert converted.chat(messages, max_new_tokens=12) == language_model(Settings()).chat(messages, max_new_tokens=12)


def test_a_local_hugging_face_folder_works(llm, tmp_path):
    folder = tmp_path / "smollm2-hf"
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    from_folder = language_model(Settings(llm_model=str(folder)))
    assert from_folder is not llm
    messages = [{"role": "user", "content": "What is the capital of France? One word."}]
    assert from_folder.chat(messages, max_new_tokens=12) == llm.chat(messages, max_new_tokens=12)


def test_openai_compatible_server(llm):
    base_url, server = serve(llm, model_name="smollm2", api_key="k")
    try:
        client = language_model(Settings(llm_base_url=base_url, llm_api_model="smollm2", llm_api_key="k"))
        assert isinstance(client, ServerLM) and client.name == "smollm2"
        messages = [{"role": "user", "content": "What is the capital of France? One word."}]
        expected = llm.chat(messages, max_new_tokens=12)
        assert client.chat(messages, max_new_tokens=12) == expected
        streamed = list(client.stream(messages, max_new_tokens=12))
        assert len(streamed) > 1 and "".join(streamed) == expected
        generated = client.generate([messages, messages], max_new_tokens=12)
        assert generated.texts == [expected, expected] and generated.tokens > 0

        with pytest.raises(ServerError, match="answered 404: model other not served"):
            ServerLM(base_url, "other", api_key="k").chat(messages)
    finally:
        server.shutdown()
    with pytest.raises(ServerError, match="Cannot reach"):
        ServerLM(base_url, "smollm2", timeout_s=2, max_retries=0).chat(messages)
    with pytest.raises(ModelNotFound, match="SIFT_LLM_API_MODEL"):
        language_model(Settings(llm_base_url=base_url))


class FailingServer(BaseHTTPRequestHandler):
    """A server failing every request with a plain-text 500, as a crashed inference server does."""

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = b"CUDA out of memory"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(("status", "reason"), [(401, "invalid api key"), (500, "CUDA out of memory")])
def test_a_refusing_server_gives_a_readable_error(llm, status, reason):
    if status == 401:  # the stand-in, asked with the wrong key
        base_url, server = serve(llm, model_name="smollm2", api_key="k")
        lm = ServerLM(base_url, "smollm2", api_key="wrong")
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), FailingServer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        lm = ServerLM(base_url, "smollm2", max_retries=0)  # openai retries a 500; once is enough here
    messages = [{"role": "user", "content": "Hello"}]
    try:
        for call in (
            lambda: lm.chat(messages),
            lambda: list(lm.stream(messages)),
            lambda: lm.query_likelihood("Passage: ", ["text"], "\nQuery:", "q"),
        ):
            with pytest.raises(ServerError) as raised:
                call()
            assert str(raised.value) == f"{base_url} answered {status}: {reason}"
    finally:
        server.shutdown()
