"""Teacher forcing: targets as label ids, the decoder inputs they imply, the model's own top-layer output as
labels, and the one decoder forward over stacked encoder states that scoring, the 2-D lens, tracing and
training share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch
from decoderlens.architectures import decoder_position_limit
from decoderlens.decoding import DecodingPlan, decoder_start_id
from decoderlens.errors import InputError
from decoderlens.results import LayerReadout


def target_labels(tokenizer: Any, model: PreTrainedModel, targets: Sequence[str], tgt_lang: str | None) -> torch.Tensor:
    """Target token ids, padded with -100; a leading decoder-start token is dropped (Whisper)."""
    if tgt_lang is not None and hasattr(tokenizer, "tgt_lang"):
        tokenizer.tgt_lang = tgt_lang
    for index, target in enumerate(targets):
        if not isinstance(target, str) or not target.strip():
            raise InputError(f"target #{index} is empty: give a non-empty reference text")
    ids = tokenizer(text_target=list(targets)).input_ids
    start = decoder_start_id(model)
    ids = [seq[1:] if seq and seq[0] == start else seq for seq in ids]
    limit = decoder_position_limit(model.config)
    for index, seq in enumerate(ids):
        if limit is not None and len(seq) > limit:
            raise InputError(f"target #{index} is {len(seq)} tokens long; this model's decoder reads at most {limit} "
                             "positions: shorten the target")
    return padded_labels(ids)


def padded_labels(ids: Sequence[list[int]]) -> torch.Tensor:
    """Label rows of unequal length as one tensor, padded with -100 (ignored by every statistic)."""
    width = max(len(seq) for seq in ids)
    return torch.tensor([seq + [-100] * (width - len(seq)) for seq in ids])


def output_labels(plan: DecodingPlan, readout: LayerReadout | list[int]) -> list[int]:
    """A readout (or its token ids) as the labels that teacher-force it: the prompt after the start token, its
    tokens, and the end of the sequence (how the 2-D lens, tracing, tuning and token confidence score the model's
    own output). Its first token is predicted at position ``len(plan.prompt) - 1``."""
    ids = readout if isinstance(readout, list) else readout.token_ids
    return plan.prompt[1:] + ids + sorted(plan.eos_token_ids)[:1]


def decoder_inputs(model: PreTrainedModel, labels: torch.Tensor) -> torch.Tensor:
    """The teacher-forced decoder input: the start token, then the labels shifted right (padding for -100)."""
    start = decoder_start_id(model)
    pad = model.config.pad_token_id
    pad = start if pad is None else pad
    decoder_in = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
    return decoder_in.masked_fill(decoder_in == -100, pad)


def teacher_forced(model: PreTrainedModel, encoded: EncodedBatch, states: torch.Tensor, mask: torch.Tensor | None,
                   decoder_ids: torch.Tensor, hidden_states: bool = False) -> Any:
    """One decoder forward over encoder ``states`` (rows of the stack, with their encoder ``mask``), fed
    ``decoder_ids`` (see ``decoder_inputs``); ``hidden_states`` also returns every decoder layer's states. Returns
    the model's output (``logits``, ``decoder_hidden_states``)."""
    extra: dict[str, Any] = {} if mask is None else {"attention_mask": mask}
    if hidden_states:
        extra["output_hidden_states"] = True
    return model(encoder_outputs=encoded.as_encoder_outputs(states), decoder_input_ids=decoder_ids, **extra)
