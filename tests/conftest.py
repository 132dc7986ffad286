"""Shared fixtures: tiny random models of every supported family, built once per test session."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import pytest
import torch

from decoderlens import DecoderLens
from decoderlens.testing import TINY_FAMILIES, sample_images, sample_texts, sample_waveforms, tiny_model, tiny_processor

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or max(1, min(2, os.cpu_count() or 1)))

FAMILIES = sorted(TINY_FAMILIES)
TARGET_LANGUAGE = {"m2m_100": "w5", "nllb-moe": "w5"}
"""Multilingual families need a target language; the tiny tokenizer's ``w5`` stands in for one."""


@cache
def lens_for(family: str) -> DecoderLens:
    """A ``DecoderLens`` over the tiny model of ``family`` (cached: models are read-only in tests)."""
    return DecoderLens(tiny_model(family), tiny_processor(family), name=f"tiny-{family}")


def sample_inputs(family: str, count: int = 5, seed: int = 0) -> list[Any]:
    """Inputs of the family's modality, of varied length so that batches need padding."""
    modality = TINY_FAMILIES[family].modality
    if modality == "text":
        return sample_texts(count, seed)  # type: ignore[return-value]
    if modality == "speech":
        return sample_waveforms(count, seed)  # type: ignore[return-value]
    return sample_images(count, seed)  # type: ignore[return-value]


def generation_options(family: str) -> dict[str, Any]:
    """Options every generate call of this family needs."""
    return {"tgt_lang": TARGET_LANGUAGE[family]} if family in TARGET_LANGUAGE else {}


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)
