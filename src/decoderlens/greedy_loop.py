"""The own greedy loop: greedy decoding over the model's forward, for plain configurations only.

``generate`` spends a fixed overhead on every step (input preparation, logits processors, stopping
criteria); for small models that overhead rivals the forward pass. This loop calls the forward with a
key/value cache, takes the argmax and drops every row the step it ends or reaches its limit. It applies no
logits processor, so it is used only where the generation config asks for none (``plain_greedy``);
elsewhere ``generate`` decodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.utils import ModelOutput

from decoderlens.limits import RowLimits
from decoderlens.step_scores import StepRecorder

Listener = Callable[[dict[int, list[int]]], set[int]]
"""Sees rows' new tokens so far (by row) as decoding runs; returns rows to stop early."""

PROCESSOR_FIELDS: dict[str, object] = {
    "forced_bos_token_id": None, "forced_eos_token_id": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "bad_words_ids": None, "sequence_bias": None,
    "min_length": 0, "min_new_tokens": None, "exponential_decay_length_penalty": None,
    "renormalize_logits": False, "forced_decoder_ids": None, "guidance_scale": None, "watermarking_config": None,
}
"""Generation-config fields that add a logits processor, with the values that add none."""


def plain_greedy(model: PreTrainedModel, options: dict[str, Any]) -> bool:
    """True when ``generate`` with ``options`` would run plain greedy search with no logits processor at all."""
    config = model.generation_config
    if options.get("num_beams", 1) != 1 or options.get("do_sample"):
        return False
    for name, neutral in PROCESSOR_FIELDS.items():
        value = options.get(name, getattr(config, name, neutral))
        if value not in (neutral, None) and not (isinstance(value, (list, tuple, dict)) and not value):
            return False
    return not (set(options) - {"num_beams", "do_sample", "max_new_tokens"})


@torch.no_grad()
def greedy_loop(
    model: PreTrainedModel, prompt: list[int], states: torch.Tensor, mask: torch.Tensor | None,
    make_outputs: Callable[[torch.Tensor], ModelOutput], eos_token_ids: set[int], limits: RowLimits,
    rows: list[int], listener: Listener | None = None, recorder: StepRecorder | None = None,
) -> list[list[int]]:
    """Greedy sequences (prompt included) for stacked encoder states; row ``i`` is ``rows[i]`` of ``limits``.

    A row stops at its end-of-sequence token or its limit; limits that arrive while decoding (an anchor row
    ended) drop the rows already past them, whose sequences are cut when they are returned. ``listener`` sees
    every running row's new tokens after each step and may name rows to stop (their readers left); ``recorder``
    keeps every step's log-probability and entropy per row.
    """
    count = states.shape[0]
    sequences = [list(prompt) for _ in range(count)]
    alive = list(range(count))
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    encoder_outputs = make_outputs(states)
    position = {row: index for index, row in enumerate(rows)}
    step_input = torch.tensor([prompt], device=states.device).repeat(count, 1)
    step = 0
    while alive:
        step += 1
        out = model(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=step_input, cache=cache,
                    use_cache=True)
        cache = out.cache
        logits = out.logits[:, -1, :]
        next_tokens = logits.float().argmax(-1)
        if recorder is not None:
            recorder.add([rows[local] for local in alive], logits)
        ended: set[int] = set()
        for local, token in zip(alive, next_tokens.tolist(), strict=True):
            sequences[local].append(token)
            row = rows[local]
            if token in eos_token_ids or step >= limits.limits[row]:
                ended.add(local)
                length = step - 1 if token in eos_token_ids else step
                for dependent in limits.ended(row, length):
                    if dependent in position and limits.limits[dependent] <= step:
                        ended.add(position[dependent])
        if listener is not None:
            stop = listener({rows[local]: sequences[local][len(prompt):] for local in alive})
            ended |= {position[row] for row in stop if row in position}
        limits.finished(rows[local] for local in ended)
        if not ended:
            step_input = next_tokens[:, None]
            continue
        keep = [index for index, local in enumerate(alive) if local not in ended]
        if not keep:
            break
        index = torch.tensor(keep, device=states.device)
        alive = [alive[i] for i in keep]
        cache.batch_select_indices(index)
        states = states.index_select(0, index)
        encoder_outputs = make_outputs(states)
        mask = None if mask is None else mask.index_select(0, index)
        step_input = next_tokens.index_select(0, index)[:, None]
    return [limits.cut(sequence, row, len(prompt)) for sequence, row in zip(sequences, rows, strict=True)]
