"""The numeric precision a local language model runs at on the CPU: fp32 as loaded, or int8 — PyTorch's dynamic
quantisation of the ``nn.Linear`` layers (int8 weights with a scale per output channel, activations quantised on the
fly; the output head stays fp32), which speeds up prefill, the reranker's hot path, on a CPU without a GPU.

Quantisation can be unavailable (a PyTorch build without a quantised engine, a future PyTorch that drops
``torch.ao.quantization``, a GPU): the model then stays as it was, a warning says why, and the returned precision
says what actually runs.

Example::

    >>> import torch
    >>> model, precision = with_precision(torch.nn.Sequential(torch.nn.Linear(8, 8)), "int8", "cpu")
    >>> precision, isinstance(model[0], torch.ao.nn.quantized.dynamic.Linear)
    ('int8', True)
    >>> with_precision(torch.nn.Sequential(torch.nn.Linear(8, 8)), "fp32", "cpu")[1]
    'fp32'
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import torch

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]


def with_precision(model: torch.nn.Module, precision: Precision, device: str) -> tuple[torch.nn.Module, Precision]:
    """``model`` at ``precision`` where this machine can run it, else unchanged: (model, the precision it runs at).

    Dynamic int8 runs on the CPU only; a quantised model is checked with one small forward pass, so an engine that
    converts but cannot compute is caught here rather than in the first query."""
    if precision == "fp32":
        return model, "fp32"
    if device != "cpu":
        logger.warning("int8 precision runs on the CPU only; the model stays as loaded on %s.", device)
        return model, "fp32"
    try:
        quantized = _quantize_linear_layers(model)
        from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

        with torch.inference_mode():
            probe = next(m for m in quantized.modules() if isinstance(m, QuantizedLinear))
            probe(torch.zeros(1, probe.in_features))
    except (ImportError, RuntimeError, NotImplementedError, AssertionError, StopIteration) as exc:
        logger.warning("int8 quantisation is unavailable here (%s); the model runs in fp32.", exc)
        return model, "fp32"
    return quantized, "int8"


def _quantize_linear_layers(model: torch.nn.Module) -> torch.nn.Module:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    # Per-channel weight scales, and the output head left in fp32 (it runs only where a score is read): on SmolLM2
    # both kept the order of a query's passages that per-tensor scales over every layer swapped
    # (tests/test_precision.py's passages; README "Faster CPU inference").
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    }
    # PyTorch marks eager quantisation deprecated in favour of torchao; the eager path still works in the pinned
    # PyTorch and is the one measured, so its notices are not the user's to read.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8)
