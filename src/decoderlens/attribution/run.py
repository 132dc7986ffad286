"""``DecoderLens.attribute``: one encoder pass per batch, each selected layer's readout (or the target), and the
chosen method over the stacked (example, layer) rows."""

from __future__ import annotations

from typing import Any

import torch

from decoderlens.adapter import EncodedBatch
from decoderlens.attribution import gradients, occlusion  # noqa: F401  (they register their methods)
from decoderlens.attribution.output import AttributionOutput, ExampleAttribution, LayerAttribution, TokenAttribution
from decoderlens.attribution.registry import GRADIENT_METHODS, METHODS, MethodScores
from decoderlens.attribution.rows import AttributionRows
from decoderlens.batching import Progress, each_batch, encode, rows_per_call
from decoderlens.decoding import DecodingPlan
from decoderlens.forcing import decoder_inputs, output_labels, padded_labels, reference_labels
from decoderlens.inputs import describe
from decoderlens.lenses import RAW, Lens
from decoderlens.model_parts import ModelParts
from decoderlens.positions import SourcePosition, source_positions
from decoderlens.readout import readout_batch
from decoderlens.settings import AttributionSettings, GenerationSettings, RuntimeSettings

BACKWARD_FACTOR = 3
"""A row of a gradient method keeps its forward activations for the backward pass: about this many times what a
teacher-forced row holds."""
DIGITS = 6
"""Significant digits of the scores a result keeps."""


def attribute(parts: ModelParts, items: list[Any], targets: list[str] | None, generation: GenerationSettings,
              runtime: RuntimeSettings, settings: AttributionSettings, lens: Lens = RAW,
              progress: Progress = False) -> AttributionOutput:
    """Scores of every readout token (or target token) of every selected layer, per source position."""
    chosen = parts.select(generation.layers)
    plan = parts.plan(generation, runtime)

    def work(indices: list[int]) -> list[ExampleAttribution]:
        batch_items = [items[i] for i in indices]
        encoded = encode(parts, batch_items, generation.truncation, runtime.max_memory)
        rows, texts = build_rows(parts, encoded, [None if targets is None else targets[i] for i in indices],
                                 chosen, plan, generation, runtime, lens)
        rows.progress = progress is True
        factor = BACKWARD_FACTOR if settings.method in GRADIENT_METHODS else 1
        max_rows = rows_per_call(parts, encoded, runtime, lambda cost, length, width: factor * cost.scoring(
            length, width, rows.labels.shape[1]))
        found = METHODS[settings.method](parts.model, rows, settings, max_rows)
        return examples_of(parts, encoded, batch_items, [describe(items[i], i) for i in indices], rows, texts,
                           found, chosen, max_rows)

    examples = each_batch(parts, items, runtime, len(chosen), generation.truncation, progress, work,
                          "decoderlens attribute")
    recorded: dict[str, Any] = {"layers": chosen, "lens": lens.name, "final_norm": generation.final_norm,
                                "tgt_lang": generation.tgt_lang, "language": generation.language,
                                "task": generation.task}
    if settings.method == "ig":
        recorded.update(steps=settings.steps, baseline=settings.baseline)
    if settings.method == "occlusion":
        recorded.update(baseline=settings.baseline, occlusion_window=settings.occlusion_window)
    return AttributionOutput(parts.name, settings.method, examples, "readout" if targets is None else "target",
                             recorded)


def build_rows(parts: ModelParts, encoded: EncodedBatch, targets: list[str | None], layers: list[int],
               plan: DecodingPlan, generation: GenerationSettings, runtime: RuntimeSettings,
               lens: Lens) -> tuple[AttributionRows, list[str]]:
    """Layer-major rows (row ``i * B + b``: example ``b`` at ``layers[i]``) with their labels, and each row's
    text: its readout, or the target."""
    size, offset = encoded.batch_size, len(plan.prompt) - 1
    if targets[0] is None:
        readouts = readout_batch(parts, encoded, layers, plan, generation, runtime, lens)
        per_row = [readouts[b][i] for i in range(len(layers)) for b in range(size)]
        labels = padded_labels([output_labels(plan, readout) for readout in per_row])
        counts = [len(readout.token_ids) for readout in per_row]
        texts = [readout.text for readout in per_row]
    else:
        target_labels = reference_labels(parts, [str(t) for t in targets], generation, runtime).cpu()
        labels = target_labels.repeat(len(layers), 1)
        counts = [_target_count(row, offset, plan.eos_token_ids) for row in labels.tolist()]
        texts = [str(targets[b]) for _ in layers for b in range(size)]
    wanted = torch.zeros(labels.shape, dtype=torch.bool)
    for row, count in enumerate(counts):
        wanted[row, offset: offset + count] = True
    with torch.no_grad():
        stack = parts.adapter.stack(encoded, layers, generation.final_norm, parts.device, lens)
    labels = labels.to(parts.device)
    rows = AttributionRows(encoded, stack.states.detach(), stack.mask, decoder_inputs(parts.model, labels), labels,
                           wanted.to(parts.device), parts.adapter.state_mask(stack.mask, stack.states.shape[1]))
    return rows, texts


def _target_count(labels: list[int], offset: int, eos: set[int]) -> int:
    """How many of a target's labels after the prompt are its text (padding and end-of-sequence excluded)."""
    ids = [token for token in labels[offset:] if token != -100]
    while ids and ids[-1] in eos:
        ids.pop()
    return len(ids)


def examples_of(parts: ModelParts, encoded: EncodedBatch, items: list[Any], names: list[str], rows: AttributionRows,
                texts: list[str], found: MethodScores, layers: list[int], max_rows: int) -> list[ExampleAttribution]:
    """Per example: its source positions and, per layer, each reported token with its scores there."""
    size = encoded.batch_size
    present = rows.positions()[:size].bool()
    scores = found.scores.float().cpu()
    gaps = None if found.completeness_gap is None else found.completeness_gap.float().cpu().tolist()
    clean = gradients.logprobs_at(parts.model, rows, rows.states, max_rows).cpu().tolist()
    labels = rows.labels.tolist()
    result = []
    for b, item in enumerate(items):
        columns = present[b].nonzero().flatten().tolist()
        ids = None if encoded.input_ids is None else [int(encoded.input_ids[b, c]) for c in columns]
        source = [SourcePosition(k, p.label, p.start, p.end)
                  for k, p in enumerate(source_positions(parts, item, len(columns), ids))]
        per_layer = []
        for i, layer in enumerate(layers):
            row = i * size + b
            positions = rows.wanted[row].nonzero().flatten().tolist()
            tokens = [TokenAttribution(
                str(parts.tokenizer.convert_ids_to_tokens(labels[row][s])), labels[row][s],
                round(clean[row][s], DIGITS), [float(f"{v:.{DIGITS}g}") for v in scores[row, s, columns].tolist()],
                None if gaps is None else float(f"{gaps[row][s]:.{DIGITS}g}")) for s in positions]
            per_layer.append(LayerAttribution(layer, texts[row], tokens))
        result.append(ExampleAttribution(names[b], source, per_layer))
    return result
