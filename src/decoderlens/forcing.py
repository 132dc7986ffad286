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
from decoderlens.model_parts import ModelParts
from decoderlens.results import LayerReadout
from decoderlens.settings import GenerationSettings, RuntimeSettings


def target_labels(tokenizer: Any, model: PreTrainedModel, targets: Sequence[str], tgt_lang: str | None,
                  prompt: Sequence[int] = ()) -> torch.Tensor:
    """Target token ids, padded with -100; a leading decoder-start token is dropped. Where the decoding plan's
    ``prompt`` holds more than the start token (a speech prompt with language and task tokens), the labels begin
    with it, in place of any prompt tokens the tokenizer writes itself: references are scored in the language and
    task the readouts are decoded with."""
    if tgt_lang is not None and hasattr(tokenizer, "tgt_lang"):
        tokenizer.tgt_lang = tgt_lang
    for index, target in enumerate(targets):
        if not isinstance(target, str) or not target.strip():
            raise InputError(f"target #{index} is empty: give a non-empty reference text")
    ids = tokenizer(text_target=list(targets)).input_ids
    start = decoder_start_id(model)
    special = {*getattr(tokenizer, "all_special_ids", []), *getattr(tokenizer, "added_tokens_decoder", {}), *prompt}

    def planned(seq: list[int]) -> list[int]:
        if len(prompt) <= 1:
            return seq[1:] if seq and seq[0] == start else seq
        text = seq
        while text and (text[0] == start or text[0] in special):  # the tokenizer's own prompt tokens
            text = text[1:]
        return [*prompt[1:], *text]

    ids = [planned(seq) for seq in ids]
    limit = decoder_position_limit(model.config)
    for index, seq in enumerate(ids):
        if limit is not None and len(seq) > limit:
            raise InputError(f"target #{index} is {len(seq)} tokens long; this model's decoder reads at most {limit} "
                             "positions: shorten the target")
    return padded_labels(ids)


def reference_labels(parts: ModelParts, targets: Sequence[str], generation: GenerationSettings,
                     runtime: RuntimeSettings) -> torch.Tensor:
    """Reference texts as labels under the call's decoding plan (its prompt), on the model's device. Models with a
    speech prompt (Whisper-style) write a space before the first word of every transcript, so a reference gets one
    where it has none: ``Das Haus`` is scored as the model writes it (`` Das Haus``)."""
    prompt = parts.plan(generation, runtime).prompt
    if parts.adapter.spec.speech_prompt:
        targets = [t if not isinstance(t, str) or t[:1].isspace() else f" {t}" for t in targets]
    return target_labels(parts.tokenizer, parts.model, targets, generation.tgt_lang, prompt).to(parts.device)


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
