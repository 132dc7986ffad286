"""The language each encoder layer detects: the decoder reads the layer and, after its start token, names the spoken
language with one of its language tokens (multilingual models whose generation config maps language codes to
tokens, as Whisper's does). One teacher-forced step per layer, batched like readouts."""

from __future__ import annotations

from typing import Any

import torch

from decoderlens.adapter import EncodedBatch
from decoderlens.batching import Progress, each_batch, encode
from decoderlens.decoding import decoder_start_id
from decoderlens.errors import InputError
from decoderlens.forcing import teacher_forced
from decoderlens.inputs import describe
from decoderlens.lenses import RAW, Lens
from decoderlens.model_parts import ModelParts
from decoderlens.results import ExampleLanguages, LanguageGuess, LanguageOutput, LayerLanguage
from decoderlens.scheduling import row_slices
from decoderlens.settings import GenerationSettings, RuntimeSettings

RUNNERS_UP = 3
"""Languages listed per layer after the detected one."""


def language_tokens(model: Any) -> dict[str, int]:
    """Language code (``en``) -> token id, from the generation config's ``lang_to_id`` (``<|en|>``); empty for
    models that name no languages."""
    mapping = getattr(model.generation_config, "lang_to_id", None) or {}
    multilingual = bool(getattr(model.generation_config, "is_multilingual", bool(mapping)))
    return {str(token).strip("<|>").lower(): int(index) for token, index in mapping.items()} if multilingual else {}


def language_code(name: str, known: dict[str, int]) -> str | None:
    """A language as the model's code (``en``, ``<|en|>``, ``EN`` -> ``en``); ``None`` where the model has no such
    language."""
    code = str(name).strip().strip("<|>").lower()
    return code if code in known else None


@torch.no_grad()
def detect(parts: ModelParts, items: list[Any], generation: GenerationSettings, runtime: RuntimeSettings,
           lens: Lens = RAW, progress: Progress = False) -> LanguageOutput:
    """Per input and selected layer: the language the decoder names first when it reads that layer, its
    probability among the model's languages, and the runners-up."""
    check_languages(parts)
    chosen = parts.select(generation.layers)

    def work(indices: list[int]) -> list[list[LayerLanguage]]:
        encoded = encode(parts, [items[i] for i in indices], generation.truncation, runtime.max_memory)
        return language_batch(parts, encoded, chosen, generation, runtime, lens)

    per_example = each_batch(parts, items, runtime, len(chosen), generation.truncation, progress, work,
                             "decoderlens languages")
    return language_output(parts, items, per_example, chosen, generation, lens)


def check_languages(parts: ModelParts) -> None:
    """Refuse a model that names no languages, with what to use instead."""
    if not language_tokens(parts.model):
        raise InputError(f"{parts.name} names no languages (its generation config has no language tokens): language "
                         "detection needs a multilingual speech model such as Whisper base")


def language_batch(parts: ModelParts, encoded: EncodedBatch, layers: list[int], generation: GenerationSettings,
                   runtime: RuntimeSettings, lens: Lens) -> list[list[LayerLanguage]]:
    """The languages of one encoded batch: per example, one ``LayerLanguage`` per layer (in order)."""
    known = language_tokens(parts.model)
    codes, ids = list(known), torch.tensor(list(known.values()), device=parts.device)
    stack = parts.adapter.stack(encoded, layers, generation.final_norm, parts.device, lens)
    decoder_ids = torch.full((runtime.max_rows, 1), decoder_start_id(parts.model), device=parts.device)
    shares = []
    for rows in row_slices(len(stack), runtime.max_rows):
        part = stack.part(rows)
        logits = teacher_forced(parts.model, encoded, part.states, part.mask,
                                decoder_ids[: rows.stop - rows.start]).logits[:, 0, :]
        shares.append(torch.softmax(logits.float()[:, ids], dim=-1))
    top = torch.cat(shares).topk(min(RUNNERS_UP + 1, len(codes)), dim=-1)
    size = encoded.batch_size
    result: list[list[LayerLanguage]] = [[] for _ in range(size)]
    for row, (values, places) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True)):
        guesses = [LanguageGuess(codes[p], round(v, 4)) for v, p in zip(values, places, strict=True)]
        result[row % size].append(LayerLanguage(layers[row // size], guesses[0].language, guesses[0].probability,
                                                guesses[1:]))
    return result


def language_output(parts: ModelParts, items: list[Any], per_example: list[list[LayerLanguage]], layers: list[int],
                    generation: GenerationSettings, lens: Lens) -> LanguageOutput:
    """The typed result of a detection, with the settings that made it."""
    examples = [ExampleLanguages(describe(item, i), per_example[i]) for i, item in enumerate(items)]
    return LanguageOutput(parts.name, parts.num_layers, examples, {"layers": layers, "lens": lens.name,
                                                                   "final_norm": generation.final_norm})
