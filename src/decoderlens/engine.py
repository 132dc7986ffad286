"""The lens engine: encode once, stack every selected layer's states, decode or score them together."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch, FinalNorm, ModelAdapter
from decoderlens.budget import RowCost, parse_size, rows_within
from decoderlens.errors import InputError
from decoderlens.generation import (
    DecodingPlan,
    decode_rows,
    decoder_start_id,
    greedy,
    plan_decoding,
    strip_output,
)
from decoderlens.inputs import InputPreparer, describe, get_tokenizer
from decoderlens.layers import LayerSpec, select_layers
from decoderlens.loading import load_model_and_processor
from decoderlens.results import (
    ExampleReadouts,
    ExampleScores,
    LayerReadout,
    LayerScore,
    LensOutput,
    ScoreOutput,
    TokenScore,
)

DEFAULT_MAX_ROWS = 256
DEFAULT_TOP_LENGTH_CAP = 2.0
CAP_MARGIN = 16
"""Extra new tokens allowed beyond ``top_length_cap`` times the length of an example's top-layer output."""


def layer_chunks(layers: list[int], batch_size: int, max_rows: int) -> Iterator[list[int]]:
    """Groups of layers whose stacked rows (``len(group) * batch_size``) fit the row budget."""
    per_chunk = max(1, max_rows // max(1, batch_size))
    for start in range(0, len(layers), per_chunk):
        yield layers[start : start + per_chunk]


def row_slices(rows: int, max_rows: int) -> list[slice]:
    """Consecutive slices of at most ``max_rows`` rows (one layer of a large batch may need several)."""
    return [slice(start, min(rows, start + max_rows)) for start in range(0, rows, max(1, max_rows))]


class DecoderLens:
    """Read out every encoder layer of an encoder-decoder model through its unchanged decoder."""

    def __init__(self, model: PreTrainedModel, processor: Any, name: str | None = None) -> None:
        """Wrap a loaded model and its tokenizer (text) or processor (speech, vision)."""
        self.adapter = ModelAdapter(model)
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = get_tokenizer(processor)
        self.name = name or str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        self._prepare = InputPreparer(self.adapter.spec, processor, model.config)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, *, device: str = "auto", dtype: str = "auto",
        device_map: str | dict[str, Any] | None = None, **kwargs: Any,
    ) -> DecoderLens:
        """Load a Hub model or local folder; unsupported models are refused before weights download.

        ``dtype``: auto (bfloat16 on GPUs that support it, else float32), float32, bfloat16 or float16;
        ``device_map="auto"`` spreads a model too large for one GPU over several (see accelerate).
        """
        model, processor = load_model_and_processor(name_or_path, device=device, dtype=dtype,
                                                     device_map=device_map, **kwargs)
        return cls(model, processor, name=name_or_path)

    @property
    def num_layers(self) -> int:
        """L: the encoder's number of blocks; readable layers are 0..L."""
        return self.adapter.num_layers

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, items: Sequence[Any], truncation: bool = False) -> EncodedBatch:
        """Prepare and encode a batch of inputs (one at a time where padding would change the encoder)."""
        if self.adapter.spec.padding_sensitive and len(items) > 1:
            return self.adapter.merge([self.encode([item], truncation) for item in items])
        batch = self._prepare(list(items), truncation=truncation)
        return self.adapter.encode({k: v.to(self.device) for k, v in batch.items()})

    def _batches(self, items: Sequence[Any], batch_size: int, truncation: bool) -> Iterator[
            tuple[list[int], EncodedBatch]]:
        """Encoded, length-sorted batches (less padding), with the original indices of their rows."""
        order = list(range(len(items)))
        if self.adapter.spec.modality == "text":
            order.sort(key=lambda i: len(str(items[i])))
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            yield indices, self.encode([items[i] for i in indices], truncation)

    def _stack(self, encoded: EncodedBatch, layers: list[int], final_norm: FinalNorm) -> tuple[
            torch.Tensor, torch.Tensor | None]:
        """Layer-major stacking: row ``i * B + b`` is example ``b`` read from ``layers[i]``."""
        states = torch.cat([self.adapter.layer_state(encoded, layer, final_norm).to(self.device) for layer in layers])
        mask = None if encoded.attention_mask is None else encoded.attention_mask.repeat(len(layers), 1)
        return states, mask

    def _check_items(self, inputs: Sequence[Any] | str) -> list[Any]:
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        if not items:
            raise InputError("no inputs given: pass at least one input")
        return items

    @torch.no_grad()
    def generate(
        self,
        inputs: Sequence[Any] | str,
        layers: LayerSpec = "all",
        *,
        max_new_tokens: int | None = None,
        num_beams: int = 1,
        batch_size: int = 8,
        max_rows: int = DEFAULT_MAX_ROWS,
        final_norm: FinalNorm = "auto",
        tgt_lang: str | None = None,
        language: str | None = None,
        task: str | None = None,
        truncation: bool = False,
        progress: bool = False,
        first_round: int | None = 16,
        lean: bool = True,
        top_length_cap: float | None = DEFAULT_TOP_LENGTH_CAP,
        max_memory: int | str | None = None,
        **generate_kwargs: Any,
    ) -> LensOutput:
        """Generate from every selected encoder layer (0 = embeddings .. L = final) for every input.

        The encoder runs once per batch; selected layers are stacked along the batch dimension and
        decoded together, in as many ``generate`` calls as the ``max_rows`` budget requires. Greedy
        decoding runs in rounds (``first_round`` new tokens, then twice as many, ...) that continue only
        unfinished rows; ``first_round=None`` decodes each stack in one ``generate`` call. Where the
        generation config asks for plain greedy search with no logits processor, a lean loop over the
        model's forward replaces ``generate`` and drops rows the step they end (``lean.lean_greedy``;
        token-identical, tested for every family it applies to); ``lean=False`` keeps ``generate``.

        ``top_length_cap`` (greedy decoding; default 2.0) ties the length of lower layers' outputs to the
        top layer's: an example's readout of layer ``l < L`` is cut after ``ceil(cap * n) + 16`` new tokens,
        where ``n`` is the length of its top-layer output (decoded first, also when layer L is not
        selected). Layers that babble on stop costing compute there; a readout that ends by itself within
        that length is unchanged, and a cut one is a prefix of the uncut output. ``None`` or 0 switches it
        off; ``max_new_tokens`` stays the limit for every layer.

        ``max_memory`` (bytes, or text such as ``"8GiB"``) caps what one ``generate`` call may hold: the
        stacked rows are split so that their encoder states, key/value caches and logits stay under it
        (estimated from the decoder's shape; the model's weights and the encoder pass are not counted).
        """
        items = self._check_items(inputs)
        chosen = select_layers(layers, self.num_layers)
        plan = plan_decoding(self.model, self.adapter.spec, self.processor, first_round=first_round, lean=lean,
                             max_new_tokens=max_new_tokens,
                             num_beams=num_beams, tgt_lang=tgt_lang, language=language, task=task,
                             **generate_kwargs)
        per_example: list[list[LayerReadout]] = [[] for _ in items]
        with tqdm(total=len(items), desc="decoderlens", unit="ex", disable=not progress) as bar:
            for indices, encoded in self._batches(items, batch_size, truncation):
                rows = self._rows(encoded, max_rows, max_memory, lambda cost, length, width: cost.decoding(
                    length, width, plan.generate_kwargs["max_new_tokens"], len(plan.prompt), num_beams))
                batch_readouts = self.readouts_for_batch(encoded, chosen, plan, rows, final_norm, top_length_cap)
                for index, readouts in zip(indices, batch_readouts, strict=True):
                    per_example[index] = readouts
                bar.update(len(indices))
        examples = [ExampleReadouts(describe(item, i), per_example[i]) for i, item in enumerate(items)]
        settings = {"layers": chosen, "final_norm": final_norm, "num_beams": num_beams,
                    "max_new_tokens": plan.generate_kwargs["max_new_tokens"], "tgt_lang": tgt_lang,
                    "language": language, "task": task, "prompt": plan.prompt, "top_length_cap": top_length_cap or None}
        return LensOutput(self.name, self.num_layers, examples, settings)

    def _rows(self, encoded: EncodedBatch, max_rows: int, max_memory: int | str | None,
              row_bytes: Callable[[RowCost, int, int], int]) -> int:
        """The row limit for one batch: ``max_rows``, lowered to what fits ``max_memory``."""
        if max_memory is None:
            return max_rows
        _, length, width = encoded.final_output.shape
        return min(max_rows, rows_within(parse_size(max_memory), row_bytes(RowCost(self.model), length, width)))

    def readouts_for_batch(
        self, encoded: EncodedBatch, layers: list[int], plan: DecodingPlan, max_rows: int,
        final_norm: FinalNorm = "auto", top_length_cap: float | None = DEFAULT_TOP_LENGTH_CAP,
    ) -> list[list[LayerReadout]]:
        """Readouts of one encoded batch: a list per example, one ``LayerReadout`` per layer (in order)."""
        size = encoded.batch_size
        result: list[list[LayerReadout]] = [[] for _ in range(size)]
        top = self.num_layers
        rest, limits = layers, None
        if top_length_cap and greedy(plan) and layers != [top]:
            top_rows: list[list[LayerReadout]] = [[] for _ in range(size)]
            self._decode_groups(encoded, [top], plan, max_rows, final_norm, top_rows)
            limits = [math.ceil(top_length_cap * len(rows[0].token_ids)) + CAP_MARGIN for rows in top_rows]
            if top in layers:
                for per_example, rows in zip(result, top_rows, strict=True):
                    per_example.extend(rows)
            rest = [layer for layer in layers if layer != top]
        self._decode_groups(encoded, rest, plan, max_rows, final_norm, result, limits)
        for per_example in result:
            per_example.sort(key=lambda r: r.layer)
        return result

    def _decode_groups(
        self, encoded: EncodedBatch, layers: list[int], plan: DecodingPlan, max_rows: int, final_norm: FinalNorm,
        result: list[list[LayerReadout]], limits: list[int] | None = None,
    ) -> None:
        """Decode ``layers`` in stacks of at most ``max_rows`` rows; ``limits`` cuts each example's rows."""
        size = encoded.batch_size
        for group in layer_chunks(layers, size, max_rows):
            states, mask = self._stack(encoded, group, final_norm)
            row_limits = None if limits is None else limits * len(group)
            sequences: list[list[int]] = []
            for rows in row_slices(states.shape[0], max_rows):
                sequences += decode_rows(self.model, plan, states[rows], None if mask is None else mask[rows],
                                         encoded.as_encoder_outputs, None if row_limits is None else row_limits[rows])
            for row, sequence in enumerate(sequences):
                layer, example = group[row // size], row % size
                ids = strip_output(sequence, plan)
                text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                result[example].append(LayerReadout(layer, text, ids, self.tokenizer.convert_ids_to_tokens(ids)))

    def _labels(self, targets: Sequence[str], tgt_lang: str | None) -> torch.Tensor:
        """Target token ids, padded with -100; a leading decoder-start token is dropped (Whisper)."""
        if tgt_lang is not None and hasattr(self.tokenizer, "tgt_lang"):
            self.tokenizer.tgt_lang = tgt_lang
        for index, target in enumerate(targets):
            if not isinstance(target, str) or not target.strip():
                raise InputError(f"target #{index} is empty: give a non-empty reference text")
        ids = self.tokenizer(text_target=list(targets)).input_ids
        start = decoder_start_id(self.model)
        ids = [seq[1:] if seq and seq[0] == start else seq for seq in ids]
        width = max(len(seq) for seq in ids)
        return torch.tensor([seq + [-100] * (width - len(seq)) for seq in ids])

    @torch.no_grad()
    def score(
        self,
        inputs: Sequence[Any] | str,
        targets: Sequence[str] | str,
        layers: LayerSpec = "all",
        *,
        top_k: int = 5,
        batch_size: int = 8,
        max_rows: int = DEFAULT_MAX_ROWS,
        final_norm: FinalNorm = "auto",
        tgt_lang: str | None = None,
        truncation: bool = False,
        progress: bool = False,
        max_memory: int | str | None = None,
    ) -> ScoreOutput:
        """Teacher-forced scores of ``targets`` at every selected layer: log-prob, rank, entropy, top-k.

        ``max_memory`` splits the stacked rows so that their states, activations and full-vocabulary
        log-probs stay under it (see ``generate``).
        """
        items = self._check_items(inputs)
        target_list = [targets] if isinstance(targets, str) else list(targets)
        if len(target_list) != len(items):
            raise InputError(f"got {len(items)} inputs but {len(target_list)} targets: give one target per input")
        chosen = select_layers(layers, self.num_layers)
        per_example: list[list[LayerScore]] = [[] for _ in items]
        with tqdm(total=len(items), desc="decoderlens score", unit="ex", disable=not progress) as bar:
            for indices, encoded in self._batches(items, batch_size, truncation):
                labels = self._labels([target_list[i] for i in indices], tgt_lang).to(self.device)
                target_length = labels.shape[1]
                rows = self._rows(encoded, max_rows, max_memory, lambda cost, length, width: cost.scoring(
                    length, width, target_length))  # noqa: B023 (used at once)
                scores = self.scores_for_batch(encoded, labels, chosen, top_k, rows, final_norm)
                for index, layer_scores in zip(indices, scores, strict=True):
                    per_example[index] = layer_scores
                bar.update(len(indices))
        examples = [ExampleScores(describe(item, i), target_list[i], per_example[i]) for i, item in enumerate(items)]
        settings = {"layers": chosen, "final_norm": final_norm, "top_k": top_k, "tgt_lang": tgt_lang}
        return ScoreOutput(self.name, self.num_layers, examples, settings)

    def token_statistics(
        self, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int], top_k: int, max_rows: int,
        final_norm: FinalNorm = "auto",
    ) -> tuple[torch.Tensor, ...]:
        """Teacher-forced statistics of every target token at every layer, each shaped (layers, batch, length):
        log-prob, rank and entropy, then the top-k log-probs and token ids (with a trailing k dimension).

        Full-vocabulary log-probs exist for at most ``max_rows`` rows at a time.
        """
        start = decoder_start_id(self.model)
        pad = self.model.config.pad_token_id
        pad = start if pad is None else pad
        decoder_in = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
        decoder_in = decoder_in.masked_fill(decoder_in == -100, pad)
        safe = labels.clamp(min=0)
        parts: list[tuple[torch.Tensor, ...]] = []
        for group in layer_chunks(layers, encoded.batch_size, max_rows):
            states, mask = self._stack(encoded, group, final_norm)
            decoder_rows, target_rows = decoder_in.repeat(len(group), 1), safe.repeat(len(group), 1)
            for rows in row_slices(states.shape[0], max_rows):
                kwargs: dict[str, Any] = {} if mask is None else {"attention_mask": mask[rows]}
                logits = self.model(encoder_outputs=encoded.as_encoder_outputs(states[rows]),
                                    decoder_input_ids=decoder_rows[rows], **kwargs).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                target = logprobs.gather(-1, target_rows[rows][..., None]).squeeze(-1)
                top_values, top_ids = logprobs.topk(min(top_k, logprobs.shape[-1]), dim=-1)
                parts.append((target, (logprobs > target[..., None]).sum(-1), -(logprobs.exp() * logprobs).sum(-1),
                              top_values, top_ids))
        return tuple(torch.cat(columns).view(len(layers), *labels.shape, *columns[0].shape[2:])
                     for columns in zip(*parts, strict=True))

    def scores_for_batch(
        self, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int], top_k: int,
        max_rows: int, final_norm: FinalNorm = "auto",
    ) -> list[list[LayerScore]]:
        """Per example, per layer: the statistics of every target token."""
        target_lp, ranks, entropy, top_values, top_ids = self.token_statistics(
            encoded, labels, layers, top_k, max_rows, final_norm)
        result: list[list[LayerScore]] = [[] for _ in range(labels.shape[0])]
        for li, layer in enumerate(layers):
            for b in range(labels.shape[0]):
                positions = (labels[b] != -100).nonzero().flatten().tolist()
                tokens = [
                    TokenScore(
                        token_id=int(labels[b, p]),
                        token=str(self.tokenizer.convert_ids_to_tokens(int(labels[b, p]))),
                        logprob=float(target_lp[li, b, p]),
                        rank=int(ranks[li, b, p]),
                        entropy=float(entropy[li, b, p]),
                        top_k=[(str(self.tokenizer.convert_ids_to_tokens(int(t))), float(v))
                               for t, v in zip(top_ids[li, b, p], top_values[li, b, p], strict=True)],
                    )
                    for p in positions
                ]
                result[b].append(LayerScore(layer, tokens))
        return result


