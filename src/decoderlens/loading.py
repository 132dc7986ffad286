"""Loading a model and its tokenizer or processor by Hub name or local path, refusing unsupported ones early."""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoModelForSeq2SeqLM,
    AutoModelForSpeechSeq2Seq,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
)

from decoderlens.architectures import resolve_architecture
from decoderlens.errors import InputError

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
AUTO_CLASSES = {"text": AutoModelForSeq2SeqLM, "speech": AutoModelForSpeechSeq2Seq,
                "vision": AutoModelForImageTextToText}


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but no CUDA GPU is available: use --device cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on CPU and bfloat16 on GPUs that support it."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}: use one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_model_and_processor(
    name_or_path: str, *, device: str = "auto", dtype: str = "auto", device_map: str | dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[PreTrainedModel, Any]:
    """Load the model (in eval mode, on ``device``) and its tokenizer or processor.

    ``device_map`` (e.g. ``"auto"``) spreads a model too large for one GPU over all visible GPUs (and CPU
    memory) through accelerate, in place of ``device``.
    """
    config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    spec, _ = resolve_architecture(config)  # refuse before downloading weights
    torch_device = resolve_device(device)
    placement: dict[str, Any] = {} if device_map is None else {"device_map": device_map}
    model = AUTO_CLASSES[spec.modality].from_pretrained(
        name_or_path, dtype=resolve_dtype(dtype, torch_device), **placement, **kwargs
    )
    if device_map is None:
        model.to(torch_device)
    model.eval()
    if spec.modality == "text":
        processor = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    else:
        processor = AutoProcessor.from_pretrained(name_or_path, **kwargs)
    return model, processor
