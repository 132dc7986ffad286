"""The 2-D lens: teacher-forced target scores read through every encoder layer x every decoder layer, from one
forward pass over the stacked encoder layers (decoder layers below the top through the decoder's own final norm
and output head, a logit lens inside the decoder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.results import ExampleGrid, GridCell
from decoderlens.scheduling import row_slices
from decoderlens.scoring import decoder_inputs
from decoderlens.settings import FinalNorm


@torch.no_grad()
def grid_statistics(
    model: PreTrainedModel, adapter: ModelAdapter, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int],
    max_rows: int, final_norm: FinalNorm = "auto", translate: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Target log-probs, ranks and top-1 token ids, each shaped (encoder layers, batch, decoder layers, length)."""
    decoder_in = decoder_inputs(model, labels)
    safe = labels.clamp(min=0)
    stack = adapter.stack(encoded, layers, final_norm, labels.device, translate)
    depth = adapter.num_decoder_layers
    decoder_rows, target_rows = decoder_in.repeat(len(layers), 1), safe.repeat(len(layers), 1)
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for rows in row_slices(len(stack), max_rows):
        part = stack.part(rows)
        kwargs: dict[str, Any] = {} if part.mask is None else {"attention_mask": part.mask}
        out = model(encoder_outputs=encoded.as_encoder_outputs(part.states), decoder_input_ids=decoder_rows[rows],
                    output_hidden_states=True, **kwargs)
        states = out.decoder_hidden_states
        if states is None or len(states) != depth + 1:
            count = 0 if states is None else len(states)
            raise RuntimeError(f"expected {depth + 1} decoder hidden states, got {count}")
        target = target_rows[rows][..., None]
        per_layer = []
        for layer in range(1, depth + 1):
            logits = out.logits if layer == depth else adapter.decoder_logits(states[layer])
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
