"""Causal tracing in the encoder (after Meng et al. 2022, "Locating and Editing Factual Associations"): corrupt
the input, restore single clean hidden states (encoder layer x position) in the corrupted run, let the encoder
continue from there, and measure how much of the clean answer's probability comes back at the output."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.errors import InputError
from decoderlens.scheduling import row_slices
from decoderlens.scoring import decoder_inputs


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
        rows = states.shape[0]
        labels = self.labels.repeat(rows, 1)
        kwargs: dict[str, Any] = {} if mask is None else {"attention_mask": mask}
        logits = self.model(encoder_outputs=self.clean.as_encoder_outputs(states),
                            decoder_input_ids=decoder_inputs(self.model, labels), **kwargs).logits
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
            noising = self.adapter.noisy_embeddings(noisy) if noisy is not None else contextlib.nullcontext()
            with self.adapter.restoring(swaps, self.clean.hidden_states), noising:
                encoded = self.adapter.encode(batch)
            final = self.adapter.restore_output(encoded.final_output, swaps[top], self.clean.final_output)
            probs.append(self.answer_prob(final, encoded.attention_mask))
        return torch.cat(probs).view(len(runs), samples).mean(-1).cpu().numpy()


def embedding_noise(adapter: ModelAdapter, batch: dict[str, torch.Tensor], span: tuple[int, int], samples: int,
                    scale: float, seed: int) -> torch.Tensor:
    """Seeded Gaussian noise of ``scale`` times the input's embedding standard deviation on positions
    ``span[0]:span[1]`` (zero elsewhere), one draw per sample."""
    embed = adapter.input_embeddings()
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
