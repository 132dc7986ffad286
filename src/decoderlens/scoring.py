"""Teacher-forced scoring: per-layer log-prob, rank, entropy and top-k of every target token, in stacked passes."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.batching import each_batch, encode, rows_per_call
from decoderlens.forcing import decoder_inputs, reference_labels, teacher_forced
from decoderlens.inputs import describe
from decoderlens.lenses import RAW, Lens
from decoderlens.model_parts import ModelParts
from decoderlens.results import ExampleScores, LayerScore, ScoreOutput, TokenScore
from decoderlens.scheduling import row_slices
from decoderlens.settings import FinalNorm, GenerationSettings, RuntimeSettings


@torch.no_grad()
def score(parts: ModelParts, items: list[Any], targets: list[str], generation: GenerationSettings,
          runtime: RuntimeSettings, lens: Lens = RAW, progress: bool = False) -> ScoreOutput:
    """Teacher-forced scores of ``targets`` (one per input) at every selected layer."""
    chosen = parts.select(generation.layers)

    def work(indices: list[int]) -> list[list[LayerScore]]:
        encoded = encode(parts, [items[i] for i in indices], generation.truncation, runtime.max_memory)
        return score_batch(parts, encoded, [targets[i] for i in indices], chosen, generation, runtime, lens)

    per_example = each_batch(parts, items, runtime, len(chosen), generation.truncation, progress, work,
                             "decoderlens score")
    return score_output(parts, items, targets, per_example, chosen, generation, lens)


def score_batch(parts: ModelParts, encoded: EncodedBatch, targets: list[str], layers: list[int],
                generation: GenerationSettings, runtime: RuntimeSettings, lens: Lens) -> list[list[LayerScore]]:
    """Scores of one encoded batch: per example, one ``LayerScore`` per layer."""
    labels = reference_labels(parts, targets, generation, runtime)
    max_rows = rows_per_call(parts, encoded, runtime, lambda cost, length, width: cost.scoring(
        length, width, labels.shape[1]))
    statistics = token_statistics(parts.model, parts.adapter, encoded, labels, layers, generation.top_k, max_rows,
                                  generation.final_norm, lens)
    return layer_scores(parts.tokenizer, labels, layers, statistics)


def score_output(parts: ModelParts, items: list[Any], targets: list[str], per_example: list[list[LayerScore]],
                 chosen: list[int], generation: GenerationSettings, lens: Lens) -> ScoreOutput:
    """The typed result of a scoring call, with the settings that made it."""
    examples = [ExampleScores(describe(item, i), targets[i], per_example[i]) for i, item in enumerate(items)]
    settings = {"layers": chosen, "final_norm": generation.final_norm, "top_k": generation.top_k,
                "tgt_lang": generation.tgt_lang, "lens": lens.name}
    return ScoreOutput(parts.name, parts.num_layers, examples, settings)




@torch.no_grad()
def token_statistics(
    model: PreTrainedModel, adapter: ModelAdapter, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int],
    top_k: int, max_rows: int, final_norm: FinalNorm = "auto", lens: Lens = RAW,
) -> tuple[torch.Tensor, ...]:
    """Teacher-forced statistics of every target token at every layer, each shaped (layers, batch, length):
    log-prob, rank and entropy, then the top-k log-probs and token ids (with a trailing k dimension).

    Full-vocabulary log-probs exist for at most ``max_rows`` rows at a time.
    """
    decoder_in = decoder_inputs(model, labels)
    safe = labels.clamp(min=0)
    stack = adapter.stack(encoded, layers, final_norm, labels.device, lens)
    decoder_rows, target_rows = decoder_in.repeat(len(layers), 1), safe.repeat(len(layers), 1)
    parts: list[tuple[torch.Tensor, ...]] = []
    for rows in row_slices(len(stack), max_rows):
        part = stack.part(rows)
        logits = teacher_forced(model, encoded, part.states, part.mask, decoder_rows[rows]).logits
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
