"""Memory budgets: how many stacked rows fit, estimated from the decoder's shape and the batch at hand."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from decoderlens.architectures import decoder_config
from decoderlens.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
LOGIT_COPIES = 3
"""float32 copies of one row's logits alive at a step (logits, processed scores, log-softmax)."""
SLACK = 1.3
"""Growth of key/value caches by concatenation and allocator slack on top of the tensors counted
(measured with ``benchmarks/bench_memory.py``)."""


def parse_size(size: int | str) -> int:
    """Bytes in ``size``: an int, or text such as ``"8GiB"``, ``"500 MB"``, ``"1.5gb"``."""
    if isinstance(size, int):
        value = size
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", size)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise InputError(f"cannot read the memory size {size!r}: write it like 8GiB, 500MB or 2000000000")
        value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise InputError(f"the memory budget must be positive, got {size!r}")
    return value


def _first(config: object, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise InputError(f"cannot tell the decoder's {names[0]} from its config: pass max_rows instead of max_memory")


class RowCost:
    """Bytes one stacked row costs while decoding or scoring, from the decoder's config."""

    def __init__(self, model: PreTrainedModel) -> None:
        config = decoder_config(model.config)
        self.width = _first(config, "d_model", "hidden_size", "n_embd")
        heads = getattr(config, "num_heads", 0) or 0
        self.kv_width = (getattr(config, "d_kv", 0) or 0) * heads or self.width
        self.layers = _first(config, "decoder_layers", "num_decoder_layers", "num_hidden_layers", "num_layers",
                             "n_layer")
        self.ffn = getattr(config, "d_ff", 0) or getattr(config, "decoder_ffn_dim", 0) or 4 * self.width
        self.vocab = _first(config, "vocab_size")
        self.item = next(model.parameters()).element_size()

    def decoding(self, source_length: int, state_width: int, new_tokens: int, prompt_length: int,
                 num_beams: int = 1) -> int:
        """One row of greedy or beam decoding: its encoder states, key/value caches, one step's work."""
        caches = 2 * self.layers * self.kv_width * (source_length + prompt_length + new_tokens)
        step = self.ffn + 4 * self.width
        per_beam = (source_length * state_width + caches + step) * self.item + LOGIT_COPIES * 4 * self.vocab
        return int(SLACK * num_beams * per_beam)

    def scoring(self, source_length: int, state_width: int, target_length: int) -> int:
        """One row of a teacher-forced pass: encoder states, activations and full-vocabulary log-probs."""
        activations = target_length * (self.ffn + 6 * self.width) + 2 * self.layers * self.kv_width * (
            source_length + target_length)
        logprobs = LOGIT_COPIES * 4 * target_length * self.vocab
        return int(SLACK * ((source_length * state_width + activations) * self.item + logprobs))


def encoding_bytes(hidden_states_bytes: int) -> int:
    """What one input of an encoder batch holds at its peak, from the size of its kept hidden states (all
    layers): the states themselves plus as much again (one block's transient activations while encoding, the
    stacked rows made from the states while decoding)."""
    return int(SLACK * 2 * hidden_states_bytes)


ENCODER_SHARE = 0.5
"""The share of a memory budget (given or automatic) that one encoder batch's kept states may take; the
decoding calls of the batch get rows from the budget as well."""


def rows_within(budget: int, row_bytes: int) -> int:
    """How many rows of ``row_bytes`` fit ``budget``; refuses a budget below one row."""
    if row_bytes > budget:
        raise InputError(f"a memory budget of {budget:,} bytes is below what one row needs (about {row_bytes:,} "
                         "bytes): raise max_memory (--max-memory) or lower max_new_tokens")
    return budget // row_bytes


AUTO_SHARE_GPU = 0.6
"""Without ``max_memory``, one call may hold this share of the GPU memory that is free after loading."""
AUTO_SHARE_CPU = 0.4
"""Without ``max_memory``, one call may hold this share of the machine's available memory."""


def available_bytes(device: object) -> int | None:
    """Memory one call may use when no budget is given: a share of what is free on ``device`` (``None`` when
    that cannot be told)."""
    import torch

    kind = getattr(device, "type", str(device))
    if kind == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)  # type: ignore[arg-type]
        return int(AUTO_SHARE_GPU * free)
    if kind == "cpu":
        try:
            with open("/proc/meminfo") as f:
                fields = dict(line.split(":", 1) for line in f)
            return int(AUTO_SHARE_CPU * int(fields["MemAvailable"].split()[0]) * 1024)
        except (OSError, KeyError, ValueError):
            return None
    return None
