"""Build the reranker the settings ask for, loading what its mode needs through app.models.

Example::

    >>> from sift.app.config import Settings
    >>> from sift.app.reranker import build_reranker
    >>> build_reranker(Settings(), mode="none").mode
    'none'
"""

from __future__ import annotations

from sift.app.config import Settings
from sift.app.models import ModelNotFound, OpenAICompatibleLLM, local_folder, embedding_model, local_llm
from sift.rerank import Mode, Reranker
from sift.rerank.local_lm import LocalLM
from sift.rerank.server_lm import ServerLM


def _language_model(settings: Settings) -> LocalLM | ServerLM:
    if settings.llm_base_url:
        if not settings.llm_api_model:
            raise ModelNotFound("Set SIFT_LLM_API_MODEL to the model name the server at SIFT_LLM_BASE_URL serves.")
        return ServerLM(OpenAICompatibleLLM(settings.llm_base_url, settings.llm_api_model, settings.llm_api_key))
    llm = local_llm(settings)
    # One LocalLM per call but the model's lock is shared, so scoring and answering never overlap on one model.
    return LocalLM(llm.model, llm.tokenizer, name=llm.name, batch_size=settings.rerank_batch_size, lock=llm.lock)


def build_reranker(settings: Settings, mode: str | None = None, strategy: str | None = None) -> Reranker:
    """A Reranker for ``mode`` / ``strategy`` (default: the settings'), with its models loaded (cached per process)."""
    mode = mode or settings.rerank_mode
    strategy = strategy or settings.rerank_strategy
    cross_encoder = None
    if mode == "cross-encoder":
        if not settings.rerank_cross_encoder:
            raise ModelNotFound("Mode 'cross-encoder' needs SIFT_RERANK_CROSS_ENCODER: a CrossEncoder folder.")
        from sentence_transformers import CrossEncoder

        folder = local_folder(settings.rerank_cross_encoder, "cross-encoder")
        cross_encoder = CrossEncoder(str(folder), device=settings.resolved_device(), local_files_only=True)
    return Reranker(
        mode=mode,
        strategy=strategy,
        lm=_language_model(settings) if Mode(mode).uses_llm else None,
        embedder=embedding_model(settings) if mode != "none" else None,
        cross_encoder=cross_encoder,
        weights=settings.rerank_weights,
        relevance_method=settings.rerank_relevance_method,
        batch_size=settings.rerank_batch_size,
    )
