"""Causal tracing in the encoder (after Meng et al. 2022, "Locating and Editing Factual Associations"): corrupt
the input, restore single clean hidden states (encoder layer x position) in the corrupted run, let the encoder
continue from there, and measure how much of the clean answer's probability comes back at the output."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.errors import InputError
from decoderlens.forcing import decoder_inputs, output_labels, reference_labels, teacher_forced
from decoderlens.inputs import describe
from decoderlens.model_parts import ModelParts
from decoderlens.positions import input_seconds, source_positions
from decoderlens.readout import top_outputs
from decoderlens.results import TraceOutput
from decoderlens.scheduling import row_slices
from decoderlens.settings import GenerationSettings, RuntimeSettings, TraceSettings

Corruption = tuple[float, float] | str | None
"""A span to noise (token positions, or seconds for speech; ``None``: the whole input), or another input."""


@torch.no_grad()
def trace(parts: ModelParts, item: Any, answer: str | None, corrupt: Corruption, settings: TraceSettings,
          generation: GenerationSettings, runtime: RuntimeSettings) -> TraceOutput:
    """Causal tracing of one input (see ``DecoderLens.trace``)."""
    spec = parts.adapter.spec
    if spec.modality == "vision":
        raise InputError("causal tracing corrupts text tokens or spans of audio; images are not supported")
    if not isinstance(item, str) and spec.modality == "text":
        raise InputError("give the input as text")
    batch = parts.prepared([item])
    clean = parts.adapter.encode(batch)
    if answer is None:
        top = top_outputs(parts, [item], generation, runtime)[0]
        labels = torch.tensor([output_labels(parts.plan(generation, runtime), top)])
        answer = top.text
    else:
        labels = reference_labels(parts, [answer], generation, runtime)
    tracer = Tracer(parts.model, parts.adapter, batch, clean, labels.to(parts.device))
    clean_prob = float(tracer.answer_prob(clean.final_output, clean.attention_mask)[0])
    corrupted, noise, corruption = _corruption(parts, item, batch, corrupt, settings)
    length = clean.final_output.shape[1]
    runs = variants(parts.num_layers, length, settings.window, settings.restore_all)
    probs = tracer.run(runs, corrupted, noise, runtime.max_rows)
    restored = probs[1:].reshape(parts.num_layers + 1, -1)
    return TraceOutput(
        parts.name, describe(item, 0), answer, _labels(parts, batch, length, item), clean_prob,
        float(probs[0]), restored.tolist(),
        corruption, settings.window, 1 if noise is None else settings.samples,
        {"noise_scale": settings.noise_scale, "seed": settings.seed, "restore_all": settings.restore_all,
         "tgt_lang": generation.tgt_lang, "language": generation.language, "task": generation.task})


def _corruption(parts: ModelParts, item: Any, batch: dict[str, torch.Tensor], corrupt: Corruption,
                settings: TraceSettings) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, str]:
    """The corrupted encoder inputs, the embedding noise (text) and a description of the corruption."""
    spec, samples, scale, seed = parts.adapter.spec, settings.samples, settings.noise_scale, settings.seed
    if corrupt is not None and not isinstance(corrupt, str):
        try:
            start, end = (float(value) for value in corrupt)
        except (TypeError, ValueError):
            raise InputError(f"corrupt (--corrupt) must be (START, END), another input or None, got {corrupt!r}") \
                from None
        if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
            raise InputError(f"corrupt (--corrupt) takes START:END with 0 <= START < END, both finite numbers, got "
                             f"{start:g}:{end:g}")
    if isinstance(corrupt, str):
        other = parts.prepared([corrupt])
        if any(other[k].shape != batch[k].shape for k in batch if k in other):
            raise InputError("the corrupting input must have the same length as the input (in tokens or frames): "
                             f"{corrupt!r} does not")
        return other, None, f"input replaced by {corrupt!r}"
    if spec.modality == "text":
        length = batch["input_ids"].shape[1]
        span = (0, length) if corrupt is None else (int(corrupt[0]), int(corrupt[1]))
        noise = embedding_noise(parts.adapter, batch, span, samples, scale, seed)
        return batch, noise, f"noise x{scale:g} on tokens {span[0]}:{span[1]}"
    key = "input_features" if "input_features" in batch else "input_values"
    features = batch[key]
    axis = spec.speech_time_axis % features.dim()
    seconds = input_seconds(parts, item)
    rate = features.shape[axis] / seconds
    start, end = (0.0, seconds) if corrupt is None else (float(corrupt[0]), float(corrupt[1]))
    frames = (round(start * rate), round(end * rate))
    noisy = feature_noise(features, axis, frames, samples, scale, seed)
    corrupted = {k: (noisy if k == key else v.repeat(samples, *([1] * (v.dim() - 1)))) for k, v in batch.items()}
    return corrupted, None, f"noise x{scale:g} on seconds {start:g}-{end:g} ({samples} draws)"


def _labels(parts: ModelParts, batch: dict[str, torch.Tensor], length: int, item: Any) -> list[str]:
    """Each encoder position's label: its input token, or the start of its frame in seconds."""
    ids = batch["input_ids"][0].tolist()[:length] if "input_ids" in batch else None
    return [position.label for position in source_positions(parts, item, length, ids)]


@dataclass(frozen=True)
class Variant:
    """One restored run: the layers whose clean states come back, at these positions (none: the corrupted run)."""

    layers: tuple[int, ...]
    positions: tuple[int, ...]


def variants(num_layers: int, length: int, window: int, restore_all: bool) -> list[Variant]:
    """The corrupted run (first), then one restored run per layer (and per position unless ``restore_all``);
    a window restores layers ``k .. k + window - 1`` (clipped at the top)."""
    result = [Variant((), ())]
    for layer in range(num_layers + 1):
        layers = tuple(range(layer, min(num_layers, layer + window - 1) + 1))
        if restore_all:
            result.append(Variant(layers, tuple(range(length))))
        else:
            result += [Variant(layers, (position,)) for position in range(length)]
    return result


class Tracer:
    """Runs corrupted and restored encoder passes of one input and scores the answer on each."""

    def __init__(self, model: Any, adapter: ModelAdapter, batch: dict[str, torch.Tensor], clean: EncodedBatch,
                 labels: torch.Tensor) -> None:
        self.model, self.adapter, self.batch, self.clean, self.labels = model, adapter, batch, clean, labels

    @torch.no_grad()
    def answer_prob(self, states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The probability of the whole answer (teacher-forced) given each row's encoder output."""
        labels = self.labels.repeat(states.shape[0], 1)
        logits = teacher_forced(self.model, self.clean, states, mask, decoder_inputs(self.model, labels)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
        return torch.exp((logprobs * (labels != -100)).sum(-1))

    @torch.no_grad()
    def run(self, runs: list[Variant], corrupted: dict[str, torch.Tensor], noise: torch.Tensor | None,
            max_rows: int) -> np.ndarray:
        """The answer's probability for every variant, averaged over the noise samples: ``noise`` holds one draw per
        sample for the token embeddings; without it, ``corrupted`` holds one input per sample (noisy audio, or a
        single other input)."""
        draws = next(iter(corrupted.values())).shape[0]
        samples = draws if noise is None else noise.shape[0]
        top = self.adapter.num_layers
        rows = [(v, s) for v in runs for s in range(samples)]
        probs = []
        for part in row_slices(len(rows), max_rows):
            chunk = rows[part]
            pick = torch.tensor([s if draws > 1 else 0 for _, s in chunk], device=self.labels.device)
            batch = {k: v.index_select(0, pick.to(v.device)) for k, v in corrupted.items()}
            swaps: dict[int, list[tuple[int, list[int]]]] = {layer: [] for layer in range(top + 1)}
            for row, (variant, _) in enumerate(chunk):
                for layer in variant.layers:
                    swaps[layer].append((row, list(variant.positions)))
            noisy = noise[[s for _, s in chunk]] if noise is not None else None
            noising = noisy_embeddings(self.adapter, noisy) if noisy is not None else contextlib.nullcontext()
            with restoring(self.adapter, swaps, self.clean.hidden_states), noising:
                encoded = self.adapter.encode(batch)
            final = restore_output(encoded.final_output, swaps[top], self.clean.final_output)
            probs.append(self.answer_prob(final, encoded.attention_mask))
        return torch.cat(probs).view(len(runs), samples).mean(-1).cpu().numpy()


def embedding_noise(adapter: ModelAdapter, batch: dict[str, torch.Tensor], span: tuple[int, int], samples: int,
                    scale: float, seed: int) -> torch.Tensor:
    """Seeded Gaussian noise of ``scale`` times the input's embedding standard deviation on positions
    ``span[0]:span[1]`` (zero elsewhere), one draw per sample."""
    embed = input_embeddings(adapter)
    with torch.no_grad():
        embedded = embed(batch["input_ids"])
    length, width = embedded.shape[1], embedded.shape[2]
    start, end = span
    if not 0 <= start < end <= length:
        raise InputError(f"the corrupted span {start}:{end} is outside the input's {length} tokens: give START:END "
                         f"with 0 <= START < END <= {length}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.zeros(samples, length, width)
    noise[:, start:end] = torch.randn(samples, end - start, width, generator=generator)
    return (noise * scale * embedded.float().std()).to(embedded.device)


def feature_noise(features: torch.Tensor, axis: int, frames: tuple[int, int], samples: int, scale: float,
                  seed: int) -> torch.Tensor:
    """Copies of a speech input (features or waveform, batch of one) with seeded Gaussian noise of ``scale`` times
    its standard deviation added on ``frames`` along ``axis``, one per sample."""
    axis = axis % features.dim()
    start, end = frames
    if not 0 <= start < end <= features.shape[axis]:
        raise InputError("the corrupted time span lies outside the audio: give START:END in seconds within it")
    generator = torch.Generator().manual_seed(seed)
    copies = features.repeat(samples, *([1] * (features.dim() - 1))).float()
    index = [slice(None)] * copies.dim()
    index[axis] = slice(start, end)
    region = copies[tuple(index)]
    copies[tuple(index)] = region + torch.randn(region.shape, generator=generator) * scale * features.float().std()
    return copies.to(features.dtype)


# --- hooks: the encoder continues from restored states ----------------------------------------------------


def input_embeddings(adapter: ModelAdapter) -> Any:
    """The module that embeds the encoder's input tokens."""
    getter = getattr(adapter.encoder, "get_input_embeddings", None)
    return getter() if getter is not None else adapter.model.get_input_embeddings()


@contextlib.contextmanager
def noisy_embeddings(adapter: ModelAdapter, noise: torch.Tensor) -> Iterator[None]:
    """Add ``noise`` (rows, length, width; zero outside the corrupted span) to the encoder's token embeddings
    while the block runs."""

    def add(mod: torch.nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        extra = out.shape[1] - noise.shape[1]
        if extra < 0:  # the embeddings of padding an encoder adds to reach its block size: left alone
            return out
        padded = torch.nn.functional.pad(noise, (0, 0, 0, extra)) if extra > 0 else noise
        return out + padded.to(out.dtype)

    handle = input_embeddings(adapter).register_forward_hook(add)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def restoring(adapter: ModelAdapter, swaps: dict[int, list[tuple[int, list[int]]]],
              clean: list[torch.Tensor]) -> Iterator[None]:
    """While the block runs, the input of encoder block ``k`` (the hidden state of layer ``k``) has, for each
    ``(row, positions)`` in ``swaps[k]``, those positions replaced by the clean run's ``clean[k]`` (one example,
    batch-first). Layer L is the encoder's output: see ``restore_output``."""
    time_major = adapter.spec.time_major_blocks

    def hook_for(layer: int) -> Any:
        def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            positional = bool(args)
            hidden = args[0] if positional else kwargs["hidden_states"]
            hidden = hidden.clone()
            source = clean[layer][0]
            for row, positions in swaps[layer]:
                if time_major:
                    hidden[positions, row] = source[positions].to(hidden.dtype)
                else:
                    hidden[row, positions] = source[positions].to(hidden.dtype)
            if positional:
                return (hidden, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": hidden}
        return hook

    handles = [adapter.blocks[layer].register_forward_pre_hook(hook_for(layer), with_kwargs=True)
               for layer in swaps if layer < adapter.num_layers and swaps[layer]]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def restore_output(final: torch.Tensor, swaps: list[tuple[int, list[int]]], clean: torch.Tensor) -> torch.Tensor:
    """The encoder output with, for each ``(row, positions)``, those positions taken from the clean output."""
    final = final.clone()
    for row, positions in swaps:
        final[row, positions] = clean[0, positions].to(final.dtype)
    return final
