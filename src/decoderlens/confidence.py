"""How sure each layer is of its own readout: the log-probability of every generated token and the entropy of the
distribution it was chosen from, from one teacher-forced pass over the readouts (the colouring of tokens by
probability and entropy in the pages)."""

from __future__ import annotations

import torch

from decoderlens.adapter import EncodedBatch, StackedRows
from decoderlens.batching import rows_per_call
from decoderlens.decoding import DecodingPlan
from decoderlens.forcing import decoder_inputs, output_labels, padded_labels, teacher_forced
from decoderlens.model_parts import ModelParts
from decoderlens.scheduling import row_slices
from decoderlens.settings import RuntimeSettings

DIGITS = 4
"""Decimals kept of each log-probability and entropy."""


@torch.no_grad()
def own_token_statistics(parts: ModelParts, encoded: EncodedBatch, stack: StackedRows, readouts: list[list[int]],
                         plan: DecodingPlan, runtime: RuntimeSettings) -> list[tuple[list[float], list[float]]]:
    """For each stacked row's readout (its token ids, in stack order): per token, its log-probability and the
    entropy (nats) of the row's next-token distribution at that position, teacher-forced through the same
    states the readout was generated from."""
    labels = padded_labels([output_labels(plan, ids) for ids in readouts]).to(parts.device)
    decoder_in = decoder_inputs(parts.model, labels)
    max_rows = rows_per_call(parts, encoded, runtime, lambda cost, length, width: cost.scoring(
        length, width, labels.shape[1]))
    offset = len(plan.prompt) - 1
    result: list[tuple[list[float], list[float]]] = []
    for rows in row_slices(len(readouts), max_rows):
        part = stack.part(rows)
        logits = teacher_forced(parts.model, encoded, part.states, part.mask, decoder_in[rows]).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        chosen = logprobs.gather(-1, labels[rows].clamp(min=0)[..., None]).squeeze(-1).tolist()
        entropy = (-(logprobs.exp() * logprobs).sum(-1)).tolist()
        for index, row in enumerate(range(rows.start, rows.stop)):
            span = slice(offset, offset + len(readouts[row]))
            result.append(([round(v, DIGITS) + 0.0 for v in chosen[index][span]],
                           [round(v, DIGITS) + 0.0 for v in entropy[index][span]]))
    return result
