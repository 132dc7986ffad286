"""Readouts: every selected encoder layer of every input decoded through the lens, from one encoder pass per batch
with all layers stacked, lower layers' lengths tied to the top layer's (the top-length cap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import torch

from decoderlens.adapter import EncodedBatch
from decoderlens.batching import each_batch, encode, rows_per_call
from decoderlens.confidence import own_token_statistics
from decoderlens.decoding import DecodingPlan, decode_rows, strip_output
from decoderlens.greedy_loop import Listener
from decoderlens.inputs import describe
from decoderlens.lenses import RAW, Lens
from decoderlens.limits import LengthCap, RowLimits
from decoderlens.model_parts import ModelParts
from decoderlens.results import ExampleReadouts, LayerReadout, LensOutput
from decoderlens.scheduling import row_slices
from decoderlens.settings import GenerationSettings, RuntimeSettings
from decoderlens.step_scores import StepRecorder

CAP_MARGIN = 16
"""Extra new tokens allowed beyond ``top_length_cap`` times the length of an example's top-layer output."""


class ReadoutWatcher(Protocol):
    """Follows readouts while they are generated (the live explorer)."""

    def tokens(self, item: int, layer: int, token_ids: list[int]) -> None:
        """Input ``item``'s readout of ``layer`` so far."""

    def cancelled(self, item: int) -> bool:
        """Whether nobody waits for input ``item`` any more (its rows stop)."""


@dataclass
class _BatchWatcher:
    """A watcher seen through one batch: batch positions mapped to input indices."""

    watcher: ReadoutWatcher
    indices: list[int]

    def tokens(self, item: int, layer: int, token_ids: list[int]) -> None:
        self.watcher.tokens(self.indices[item], layer, token_ids)

    def cancelled(self, item: int) -> bool:
        return self.watcher.cancelled(self.indices[item])


@torch.no_grad()
def read(parts: ModelParts, items: list[Any], generation: GenerationSettings, runtime: RuntimeSettings,
         lens: Lens = RAW, progress: bool = False, watcher: ReadoutWatcher | None = None,
         encoder: Callable[[list[int]], EncodedBatch] | None = None, **extra: Any) -> LensOutput:
    """Readouts of every selected layer of every input (``extra``: further ``generate`` options). ``watcher``
    sees every readout's tokens as they are generated, and may stop an input's rows. ``encoder(indices)``, where
    given, supplies the encoder states of the inputs at ``indices`` (states kept from an earlier pass)."""
    chosen = parts.select(generation.layers)
    plan = parts.plan(generation, runtime, **extra)

    def work(indices: list[int], advance: Callable[[int], None]) -> list[list[LayerReadout]]:
        encoded = (encode(parts, [items[i] for i in indices], generation.truncation, runtime.max_memory)
                   if encoder is None else encoder(indices))
        return readout_batch(parts, encoded, chosen, plan, generation, runtime, lens,
                             None if watcher is None else _BatchWatcher(watcher, indices), advance)

    per_example = each_batch(parts, items, runtime, rows_per_example(parts, chosen, plan, generation),
                             generation.truncation, progress, work, ticks=True)
    return lens_output(parts, items, per_example, chosen, plan, generation, lens)


def top_outputs(parts: ModelParts, items: list[Any], generation: GenerationSettings,
                runtime: RuntimeSettings, progress: bool = False,
                encoder: Callable[[list[int]], EncodedBatch] | None = None) -> list[LayerReadout]:
    """Each input's ordinary output: its top layer, greedy under ``generation``, uncapped (``encoder``: as for
    ``read``)."""
    top = read(parts, items, replace(generation, layers=[parts.num_layers], top_length_cap=None), runtime,
               progress=progress, encoder=encoder)
    return [example.readouts[0] for example in top]


def lens_output(parts: ModelParts, items: list[Any], per_example: list[list[LayerReadout]], chosen: list[int],
                plan: DecodingPlan, generation: GenerationSettings, lens: Lens) -> LensOutput:
    """The typed result of a readout call, with the settings that made it."""
    examples = [ExampleReadouts(describe(item, i), per_example[i]) for i, item in enumerate(items)]
    settings = {**asdict(generation), "layers": chosen, "max_new_tokens": plan.max_new_tokens,
                "top_length_cap": generation.top_length_cap or None, "prompt": plan.prompt, "lens": lens.name}
    settings.pop("top_k", None)
    return LensOutput(parts.name, parts.num_layers, examples, settings)


def length_cap(parts: ModelParts, plan: DecodingPlan, generation: GenerationSettings,
               layers: list[int]) -> LengthCap | None:
    """The top-length cap where it applies: greedy decoding, and some layer below the top selected."""
    if not generation.top_length_cap or not plan.greedy or layers == [parts.num_layers]:
        return None
    return LengthCap(float(generation.top_length_cap), CAP_MARGIN)


def rows_per_example(parts: ModelParts, layers: list[int], plan: DecodingPlan, generation: GenerationSettings) -> int:
    """Stacked rows one input takes: its selected layers, plus its top layer where only the cap needs it."""
    capped = length_cap(parts, plan, generation, layers) is not None and parts.num_layers not in layers
    return len(layers) + int(capped)


def readout_batch(parts: ModelParts, encoded: EncodedBatch, layers: list[int], plan: DecodingPlan,
                  generation: GenerationSettings, runtime: RuntimeSettings, lens: Lens = RAW,
                  watcher: ReadoutWatcher | None = None,
                  on_examples: Callable[[int], None] | None = None) -> list[list[LayerReadout]]:
    """Readouts of one encoded batch: a list per example, one ``LayerReadout`` per layer (in order);
    ``on_examples(n)`` hears as examples finish decoding (every one of their rows stopped).

    With the top-length cap the top layer's rows come first in the stack, so that however the rows are split into
    calls, every lower row's anchor (its example's top row) is decoded no later than it.
    """
    size, top = encoded.batch_size, parts.num_layers
    cap = length_cap(parts, plan, generation, layers)
    order = [top, *[layer for layer in layers if layer != top]] if cap else layers
    anchors = [None if cap is None or layer == top else b for layer in order for b in range(size)]
    limits = RowLimits([plan.max_new_tokens] * len(anchors), anchors, cap,
                       None if on_examples is None else _example_counter(size, len(order), on_examples))
    stack = parts.adapter.stack(encoded, order, generation.final_norm, parts.device, lens)
    max_rows = rows_per_call(parts, encoded, runtime, lambda cost, length, width: cost.decoding(
        length, width, plan.max_new_tokens, len(plan.prompt), plan.num_beams))
    listener = None if watcher is None else _listener(watcher, order, layers, size, plan)
    recorder = StepRecorder() if generation.token_scores and plan.greedy else None
    sequences: list[list[int]] = []
    for rows in row_slices(len(anchors), max_rows):
        sequences += decode_rows(parts.model, plan, stack.part(rows), encoded.as_encoder_outputs, limits,
                                 list(range(rows.start, rows.stop)), listener, recorder)
    outputs = [strip_output(sequence, plan) for sequence in sequences]
    sure = None
    if recorder is not None:  # recorded while decoding
        sure = [recorder.scores(row, len(ids)) for row, ids in enumerate(outputs)]
    elif generation.token_scores:  # beam search: one teacher-forced pass over the chosen beams
        sure = own_token_statistics(parts, encoded, stack, outputs, plan, runtime)
    result: list[list[LayerReadout]] = [[] for _ in range(size)]
    for row, ids in enumerate(outputs):
        layer, example = order[row // size], row % size
        if layer in layers:
            readout = layer_readout(parts, layer, ids)
            if sure is not None:
                readout.logprobs, readout.entropies = sure[row]
            result[example].append(readout)
    for readouts in result:
        readouts.sort(key=lambda r: r.layer)
    return result


def _example_counter(size: int, rows_per_example: int, on_examples: Callable[[int], None]) -> Callable[[int], None]:
    """A row observer that tells ``on_examples(1)`` when the last row of an example (row ``i`` belongs to example
    ``i % size``) stops."""
    running = [rows_per_example] * size

    def finished(row: int) -> None:
        running[row % size] -= 1
        if running[row % size] == 0:
            on_examples(1)

    return finished


def _listener(watcher: ReadoutWatcher, order: list[int], layers: list[int], size: int,
              plan: DecodingPlan) -> Listener:
    """Hands each stacked row's tokens so far to ``watcher`` by input and layer; stops rows nobody waits for."""

    def listen(updates: dict[int, list[int]]) -> set[int]:
        stop = set()
        for row, ids in updates.items():
            layer, example = order[row // size], row % size
            if layer in layers:
                watcher.tokens(example, layer, strip_output(plan.prompt + ids, plan))
            if watcher.cancelled(example):
                stop.add(row)
        return stop

    return listen


def layer_readout(parts: ModelParts, layer: int, ids: list[int]) -> LayerReadout:
    """A layer's readout from its generated token ids."""
    text = parts.tokenizer.decode(ids, skip_special_tokens=True).strip()
    return LayerReadout(layer, text, ids, parts.tokenizer.convert_ids_to_tokens(ids))
