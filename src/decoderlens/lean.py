"""A lean greedy decoding loop over the model's own forward, for plain configurations only.

``generate`` spends a fixed overhead on every step (input preparation, logits processors, stopping
criteria); for small models that overhead rivals the forward pass. This loop calls the forward with a
key/value cache, takes the argmax and drops every row the step it ends. It applies no logits processor,
so it is used only where the generation config asks for none (``lean_applies``); elsewhere ``generate``
decodes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.utils import ModelOutput

PROCESSOR_FIELDS: dict[str, object] = {
    "forced_bos_token_id": None, "forced_eos_token_id": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "bad_words_ids": None, "sequence_bias": None,
    "min_length": 0, "min_new_tokens": None, "exponential_decay_length_penalty": None,
    "renormalize_logits": False, "forced_decoder_ids": None, "guidance_scale": None, "watermarking_config": None,
}
"""Generation-config fields that add a logits processor, with the values that add none."""


def lean_applies(model: PreTrainedModel, generate_kwargs: dict[str, object]) -> bool:
    """True when ``generate`` would run plain greedy search with no logits processor at all."""
    config = model.generation_config
    if generate_kwargs.get("num_beams", 1) != 1 or generate_kwargs.get("do_sample"):
        return False
    for name, neutral in PROCESSOR_FIELDS.items():
        value = generate_kwargs.get(name, getattr(config, name, neutral))
        if value not in (neutral, None) and not (isinstance(value, (list, tuple, dict)) and not value):
            return False
    return not (set(generate_kwargs) - {"num_beams", "do_sample", "max_new_tokens"})


@torch.no_grad()
def lean_greedy(
    model: PreTrainedModel, prompt: list[int], states: torch.Tensor, mask: torch.Tensor | None,
    make_outputs: Callable[[torch.Tensor], ModelOutput], max_new_tokens: int, eos_token_ids: set[int],
    limits: list[int] | None = None,
) -> list[list[int]]:
    """Greedy sequences (prompt included, ending with EOS where a row ends) for stacked encoder states.

    ``limits`` stops row ``i`` after ``limits[i]`` new tokens (its output is then a prefix of the unlimited one).
    """
    rows = states.shape[0]
    sequences = [list(prompt) for _ in range(rows)]
    budget = torch.tensor(limits if limits is not None else [max_new_tokens] * rows, device=states.device)
    alive = torch.arange(rows, device=states.device)
    eos = torch.tensor(sorted(eos_token_ids), device=states.device)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    encoder_outputs = make_outputs(states)
    step_input = torch.tensor([prompt], device=states.device).repeat(rows, 1)
    for step in range(1, min(max_new_tokens, int(budget.max())) + 1):
        out = model(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=step_input,
                    past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        next_tokens = out.logits[:, -1, :].float().argmax(-1)
        for row, token in zip(alive.tolist(), next_tokens.tolist(), strict=True):
            sequences[row].append(token)
        ended = torch.isin(next_tokens, eos) | (budget[alive] <= step)
        if bool(ended.all()):
            break
        if bool(ended.any()):
            keep = (~ended).nonzero().flatten()
            alive, next_tokens = alive[keep], next_tokens[keep]
            cache.batch_select_indices(keep)
            states = states.index_select(0, keep)
            encoder_outputs = make_outputs(states)
            mask = None if mask is None else mask.index_select(0, keep)
        step_input = next_tokens[:, None]
    return sequences
