"""Build the reranker the settings ask for, loading what its mode needs through app.models (the LLM is the one the
generator uses too), starting from the weights profile fitted for those models where there is one.

Example::

    >>> from sift.app.config import Settings
    >>> from sift.app.reranker import build_reranker
    >>> build_reranker(Settings(), mode="none").mode.value
    'none'
"""

from __future__ import annotations

import logging

from sift.app.config import Settings
from sift.app.models import ModelNotFound, embedding_model, language_model, local_folder, model_identity
from sift.app.profiles import find_profile
from sift.rerank import Mode, Reranker
from sift.rerank.tuning import WeightsProfile

logger = logging.getLogger(__name__)


def weights_profile(settings: Settings, mode: str | None = None, strategy: str | None = None) -> WeightsProfile | None:
    """The profile ``sift tune`` fitted for this mode, strategy and the configured models (None: none, or profiles
    are off in the settings). Loads no model."""
    mode = mode or settings.rerank_mode
    if not settings.rerank_use_profile or mode == Mode.NONE:
        return None
    return find_profile(settings, model_identity(settings, mode, strategy or settings.rerank_strategy))


def build_reranker(
    settings: Settings, mode: str | None = None, strategy: str | None = None, use_profile: bool = True
) -> Reranker:
    """A Reranker for ``mode`` / ``strategy`` (default: the settings'), with its models loaded (cached per process);
    its LLM scores the best ``settings.rerank_llm_k`` candidates (the cascade). Its weights start from the fitted
    profile unless ``use_profile`` is False (``sift tune`` measures the hand-set weights)."""
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
        lm=language_model(settings) if Mode(mode).uses_llm else None,
        embedder=embedding_model(settings) if mode != "none" else None,
        cross_encoder=cross_encoder,
        weights=settings.rerank_weights,
        profile=weights_profile(settings, mode, strategy) if use_profile else None,
        relevance_method=settings.rerank_relevance_method,
        batch_size=settings.rerank_batch_size,
        llm_k=settings.rerank_llm_k,
    )
