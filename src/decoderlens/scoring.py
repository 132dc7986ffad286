"""Teacher-forced scoring: per-layer log-prob, rank, entropy and top-k of every target token, in stacked passes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.errors import InputError
from decoderlens.generation import decoder_start_id
from decoderlens.results import LayerScore, TokenScore
from decoderlens.scheduling import row_slices
from decoderlens.settings import FinalNorm


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
    width = max(len(seq) for seq in ids)
    return torch.tensor([seq + [-100] * (width - len(seq)) for seq in ids])


def decoder_inputs(model: PreTrainedModel, labels: torch.Tensor) -> torch.Tensor:
    """The teacher-forced decoder input: the start token, then the labels shifted right (padding for -100)."""
    start = decoder_start_id(model)
    pad = model.config.pad_token_id
    pad = start if pad is None else pad
    decoder_in = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
    return decoder_in.masked_fill(decoder_in == -100, pad)


@torch.no_grad()
def token_statistics(
    model: PreTrainedModel, adapter: ModelAdapter, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int],
    top_k: int, max_rows: int, final_norm: FinalNorm = "auto",
    translate: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, ...]:
    """Teacher-forced statistics of every target token at every layer, each shaped (layers, batch, length):
    log-prob, rank and entropy, then the top-k log-probs and token ids (with a trailing k dimension).

    Full-vocabulary log-probs exist for at most ``max_rows`` rows at a time.
    """
    decoder_in = decoder_inputs(model, labels)
    safe = labels.clamp(min=0)
    stack = adapter.stack(encoded, layers, final_norm, labels.device, translate)
    decoder_rows, target_rows = decoder_in.repeat(len(layers), 1), safe.repeat(len(layers), 1)
    parts: list[tuple[torch.Tensor, ...]] = []
    for rows in row_slices(len(stack), max_rows):
        part = stack.part(rows)
        kwargs: dict[str, Any] = {} if part.mask is None else {"attention_mask": part.mask}
        logits = model(encoder_outputs=encoded.as_encoder_outputs(part.states), decoder_input_ids=decoder_rows[rows],
                       **kwargs).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        target = logprobs.gather(-1, target_rows[rows][..., None]).squeeze(-1)
        top_values, top_ids = logprobs.topk(min(top_k, logprobs.shape[-1]), dim=-1)
        parts.append((target, (logprobs > target[..., None]).sum(-1), -(logprobs.exp() * logprobs).sum(-1),
                      top_values, top_ids))
    return tuple(torch.cat(columns).view(len(layers), *labels.shape, *columns[0].shape[2:])
                 for columns in zip(*parts, strict=True))


def layer_scores(tokenizer: Any, labels: torch.Tensor, layers: list[int],
                 statistics: tuple[torch.Tensor, ...]) -> list[list[LayerScore]]:
    """Per example, per layer: the statistics of every target token as typed results."""
    target_lp, ranks, entropy, top_values, top_ids = (t.tolist() for t in statistics)
    label_rows = labels.tolist()
    names: dict[int, str] = {}

    def name(token_id: int) -> str:
        if token_id not in names:
            names[token_id] = str(tokenizer.convert_ids_to_tokens(token_id))
        return names[token_id]

    result: list[list[LayerScore]] = [[] for _ in label_rows]
    for li, layer in enumerate(layers):
        for b, row in enumerate(label_rows):
            tokens = [
                TokenScore(token_id=token_id, token=name(token_id), logprob=target_lp[li][b][p],
                           rank=int(ranks[li][b][p]), entropy=entropy[li][b][p],
                           top_k=[(name(t), v) for t, v in zip(top_ids[li][b][p], top_values[li][b][p], strict=True)])
                for p, token_id in enumerate(row) if token_id != -100
            ]
            result[b].append(LayerScore(layer, tokens))
    return result
