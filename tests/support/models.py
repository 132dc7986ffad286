"""The tiny random models of every supported family that tests read (built once per test session), and inputs of
each family's modality."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from decoderlens import DecoderLens
from decoderlens.testing import TINY_FAMILIES, sample_images, sample_texts, sample_waveforms, tiny_model, tiny_processor

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




def formulas_file(folder: Path, count: int, seed: int, prefix: str = "f-") -> Path:
    """A JSONL file of ``count`` seeded logic formulas with majority targets (``formula``/``target`` fields)."""
    from decoderlens.logic.data import generate_examples, write_jsonl

    path = folder / f"formulas-{seed}.jsonl"
    write_jsonl(generate_examples(count, seed=seed, prefix=prefix, target="majority"), path)
    return path
