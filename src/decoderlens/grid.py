"""The 2-D lens: teacher-forced target scores read through every encoder layer x every decoder layer, from one
forward pass over the stacked encoder layers (decoder layers below the top through the decoder's own final norm
and output head, a logit lens inside the decoder)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.batching import each_batch, encode, rows_per_call
from decoderlens.decoder_head import DecoderHead
from decoderlens.forcing import decoder_inputs, output_labels, padded_labels, reference_labels, teacher_forced
from decoderlens.inputs import describe
from decoderlens.lenses import RAW, Lens
from decoderlens.model_parts import ModelParts
from decoderlens.readout import top_outputs
from decoderlens.results import ExampleGrid, GridCell, GridOutput
from decoderlens.scheduling import row_slices
from decoderlens.settings import FinalNorm, GenerationSettings, RuntimeSettings

GIVEN, OWN_OUTPUT = "given", "top-layer greedy output"
"""What the 2-D lens's targets are: given ones, or the model's own output."""


@torch.no_grad()
def grid(parts: ModelParts, items: list[Any], targets: Sequence[str] | None, generation: GenerationSettings,
         runtime: RuntimeSettings, lens: Lens = RAW, progress: bool = False) -> GridOutput:
    """The 2-D lens of ``targets`` (one per input; ``None``: each input's own top-layer greedy output)."""
    head = DecoderHead(parts.model)  # refuses unmapped decoders before any work
    chosen = parts.select(generation.layers)
    label_ids: list[list[int]] = []
    if targets is None:
        plan = parts.plan(generation, runtime)
        top = top_outputs(parts, items, generation, runtime)
        label_ids = [output_labels(plan, readout) for readout in top]
        target_list = [readout.text for readout in top]
    else:
        target_list = list(targets)

    def work(indices: list[int]) -> list[ExampleGrid]:
        encoded = encode(parts, [items[i] for i in indices], generation.truncation, runtime.max_memory)
        chunk = [target_list[i] for i in indices]
        labels = (padded_labels([label_ids[i] for i in indices]) if label_ids
                  else reference_labels(parts, chunk, generation, runtime))
        return grid_batch(parts, head, encoded, labels.to(parts.device), chosen, generation, runtime, lens,
                          [describe(items[i], i) for i in indices], chunk)

    examples = each_batch(parts, items, runtime, len(chosen), generation.truncation, progress, work,
                          "decoderlens grid")
    return grid_output(parts, head, examples, chosen, generation, lens, GIVEN if targets is not None else OWN_OUTPUT)


def grid_batch(parts: ModelParts, head: DecoderHead, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int],
               generation: GenerationSettings, runtime: RuntimeSettings, lens: Lens, inputs: list[str],
               targets: list[str]) -> list[ExampleGrid]:
    """The 2-D lens of one encoded batch, one ``ExampleGrid`` per example."""
    rows = rows_per_call(parts, encoded, runtime, lambda cost, length, width: cost.scoring(
        length, width, labels.shape[1]))
    statistics = grid_statistics(parts.model, parts.adapter, head, encoded, labels, layers, rows,
                                 generation.final_norm, lens)
    return example_grids(parts.tokenizer, labels, layers, inputs, targets, statistics)


def grid_output(parts: ModelParts, head: DecoderHead, examples: list[ExampleGrid], layers: list[int],
                generation: GenerationSettings, lens: Lens, targets: str) -> GridOutput:
    """The typed result of a 2-D lens call, with the settings that made it."""
    settings = {"layers": layers, "final_norm": generation.final_norm, "tgt_lang": generation.tgt_lang,
                "language": generation.language, "task": generation.task, "targets": targets, "lens": lens.name}
    return GridOutput(parts.name, parts.num_layers, examples, settings, num_decoder_layers=head.num_layers)


@torch.no_grad()
def grid_statistics(
    model: PreTrainedModel, adapter: ModelAdapter, head: DecoderHead, encoded: EncodedBatch, labels: torch.Tensor,
    layers: list[int], max_rows: int, final_norm: FinalNorm = "auto", lens: Lens = RAW,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Target log-probs, ranks and top-1 token ids, each shaped (encoder layers, batch, decoder layers, length)."""
    decoder_in = decoder_inputs(model, labels)
    safe = labels.clamp(min=0)
    stack = adapter.stack(encoded, layers, final_norm, labels.device, lens)
    depth = head.num_layers
    decoder_rows, target_rows = decoder_in.repeat(len(layers), 1), safe.repeat(len(layers), 1)
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for rows in row_slices(len(stack), max_rows):
        part = stack.part(rows)
        out = teacher_forced(model, encoded, part.states, part.mask, decoder_rows[rows], hidden_states=True)
        states = out.decoder_hidden_states
        if states is None or len(states) != depth + 1:
            count = 0 if states is None else len(states)
            raise RuntimeError(f"expected {depth + 1} decoder hidden states, got {count}")
        target = target_rows[rows][..., None]
        per_layer = []
        for layer in range(1, depth + 1):
            logits = out.logits if layer == depth else head.logits(states[layer])
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            chosen = logprobs.gather(-1, target).squeeze(-1)
            per_layer.append((chosen, (logprobs > chosen[..., None]).sum(-1), logprobs.argmax(-1)))
        parts.append(tuple(torch.stack(column, dim=1) for column in zip(*per_layer, strict=True)))  # type: ignore[misc, arg-type]
    return tuple(torch.cat(column).view(len(layers), labels.shape[0], depth, labels.shape[1])  # type: ignore[return-value]
                 for column in zip(*parts, strict=True))


def example_grids(tokenizer: Any, labels: torch.Tensor, layers: list[int], items: list[str], targets: list[str],
                  statistics: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> list[ExampleGrid]:
    """Per example, a typed cell for every (encoder layer, decoder layer)."""
    logprobs, ranks, tops = (t.tolist() for t in statistics)
    names = tokenizer.convert_ids_to_tokens
    result = []
    for b, row in enumerate(labels.tolist()):
        positions = [p for p, token in enumerate(row) if token != -100]
        cells = []
        for li, layer in enumerate(layers):
            for d in range(len(logprobs[li][b])):
                token_lp = [logprobs[li][b][d][p] for p in positions]
                rank = [int(ranks[li][b][d][p]) for p in positions]
                top = [str(t) for t in names([tops[li][b][d][p] for p in positions])]
                cells.append(GridCell(layer, d + 1, sum(token_lp), token_lp, rank, top))
        result.append(ExampleGrid(items[b], targets[b], [str(t) for t in names([row[p] for p in positions])], cells))
    return result
