"""The lens engine: encode once, stack every selected layer's states, decode or score them together."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.budget import ENCODER_SHARE, RowCost, available_bytes, encoding_bytes, parse_size, rows_within
from decoderlens.errors import InputError
from decoderlens.generation import DecodingPlan, decode_rows, plan_decoding, strip_output
from decoderlens.grid import example_grids, grid_statistics
from decoderlens.inputs import InputPreparer, describe, get_tokenizer
from decoderlens.layers import LayerSpec, select_layers
from decoderlens.limits import LengthCap, RowLimits
from decoderlens.loading import load_model_and_processor
from decoderlens.results import (
    ExampleGrid,
    ExampleReadouts,
    ExampleScores,
    GridOutput,
    LayerReadout,
    LayerScore,
    LensOutput,
    ScoreOutput,
    TraceOutput,
)
from decoderlens.scheduling import input_length, plan_batches, row_slices
from decoderlens.scoring import layer_scores, target_labels, token_statistics
from decoderlens.settings import GENERATION_DEFAULTS as GEN
from decoderlens.settings import RUNTIME_DEFAULTS as RUN
from decoderlens.settings import FinalNorm, GenerationSettings, RuntimeSettings, settings_from_keywords
from decoderlens.trace import Tracer, embedding_noise, feature_noise, variants
from decoderlens.tuned.translators import Translators, model_fingerprint

CAP_MARGIN = 16
"""Extra new tokens allowed beyond ``top_length_cap`` times the length of an example's top-layer output."""

T = TypeVar("T")


class ReadoutWatcher(Protocol):
    """Follows readouts while they are generated (the live explorer)."""

    def tokens(self, item: int, layer: int, token_ids: list[int]) -> None:
        """Input ``item``'s readout of ``layer`` so far."""

    def cancelled(self, item: int) -> bool:
        """Whether nobody waits for input ``item`` any more (its rows stop)."""


@dataclass
class _BatchWatcher:
    """A watcher seen through one batch: batch positions mapped to input indices."""

    watcher: ReadoutWatcher
    indices: list[int]

    def tokens(self, item: int, layer: int, token_ids: list[int]) -> None:
        self.watcher.tokens(self.indices[item], layer, token_ids)

    def cancelled(self, item: int) -> bool:
        return self.watcher.cancelled(self.indices[item])


@dataclass
class Readings:
    """What ``read_all`` returns: readouts, and where asked for, scores and 2-D lenses of the same inputs."""

    readouts: LensOutput
    scores: ScoreOutput | None = None
    grids: GridOutput | None = None
    raw: LensOutput | None = None
    """The raw lens's readouts beside tuned ones (``raw_too``)."""


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
        self.translators: Translators | None = None
        """Tuned-lens translators applied to every layer below the top (``use_translators``)."""

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, *, device: str = RUN.device, dtype: str = RUN.dtype,
        device_map: str | dict[str, Any] | None = RUN.device_map, translators: str | Path | None = None,
        force: bool = False, **kwargs: Any,
    ) -> DecoderLens:
        """Load a Hub model or local folder; unsupported models are refused before weights download.

        ``dtype``: auto (bfloat16 on GPUs that support it, else float32), float32, bfloat16 or float16;
        ``device_map="auto"`` spreads a model too large for one GPU over several (see accelerate).
        ``translators`` (a folder or Hub id from ``decoderlens tune``) reads every layer below the top through
        trained translators (see ``use_translators``).
        """
        model, processor = load_model_and_processor(name_or_path, device=device, dtype=dtype,
                                                     device_map=device_map, **kwargs)
        lens = cls(model, processor, name=name_or_path)
        if translators is not None:
            lens.use_translators(translators, force=force)
        return lens

    def use_translators(self, translators: str | Path | Translators | None, force: bool = False) -> DecoderLens:
        """Read every layer below the top through trained translators (a folder, Hub id or object; ``None``:
        the raw lens again). Translators made for another model are refused: a different shape always, a
        different model hash unless ``force`` (then with a warning)."""
        if translators is None or isinstance(translators, Translators):
            loaded = translators
        else:
            loaded = Translators.from_pretrained(str(translators))
        if loaded is not None:
            width = self.adapter.encoder_width
            if loaded.num_layers != self.num_layers or loaded.d_model != width:
                raise InputError(f"these translators are for an encoder of {loaded.num_layers} layers of width "
                                 f"{loaded.d_model}, this one has {self.num_layers} of width {width}: train "
                                 "translators for this model (decoderlens tune)")
            expected = loaded.info.get("model_hash")
            actual = model_fingerprint(self.model, self.adapter.encoder)
            if expected != actual:
                message = (f"these translators were trained for another model ({loaded.info.get('model')}, hash "
                           f"{expected}; this one is {actual})")
                if not force:
                    raise InputError(message + ": train translators for this model, or pass force=True (--force)")
                warnings.warn(message + "; used anyway (force)", stacklevel=2)
            loaded.to(self.device)
        self.translators = loaded
        return self

    @property
    def lens_kind(self) -> str:
        """``raw``, or ``tuned:<hash>`` naming the translators (recorded in results and evaluation folders)."""
        if self.translators is None:
            return "raw"
        return f"tuned:{self.translators.info.get('fingerprint', '?')}"

    def _translate(self) -> Callable[[int, torch.Tensor], torch.Tensor] | None:
        return None if self.translators is None else self.translators

    @property
    def num_layers(self) -> int:
        """L: the encoder's number of blocks; readable layers are 0..L."""
        return self.adapter.num_layers

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def select(self, layers: LayerSpec) -> list[int]:
        """The layers a selection names, checked against this encoder."""
        return select_layers(layers, self.num_layers)

    def plan(self, generation: GenerationSettings, **options: Any) -> DecodingPlan:
        """The decoding plan of ``generation`` for this model (prompt, forced tokens, length)."""
        return plan_decoding(self.model, self.adapter.spec, self.processor, max_new_tokens=generation.max_new_tokens,
                             num_beams=generation.num_beams, tgt_lang=generation.tgt_lang,
                             language=generation.language, task=generation.task, **options)

    # --- encoding ---------------------------------------------------------------------------------

    def encode(self, items: Sequence[Any], truncation: bool = False,
               max_memory: int | str | None = None) -> EncodedBatch:
        """Prepare and encode a batch of inputs: one at a time where padding would change the encoder, and in
        pieces that fit ``max_memory`` otherwise (the pieces share one padding, so results do not change)."""
        if self.adapter.spec.padding_sensitive and len(items) > 1:
            return self.adapter.merge([self.encode([item], truncation) for item in items])
        batch = {k: v.to(self.device) for k, v in self._prepare(list(items), truncation=truncation).items()}
        if max_memory is None or len(items) == 1:
            return self.adapter.encode(batch)
        first = self.adapter.encode(_rows_of(batch, 0, 1))
        size = rows_within(parse_size(max_memory), _input_bytes(first))
        parts = [first] + [self.adapter.encode(_rows_of(batch, start, min(len(items), start + size)))
                           for start in range(1, len(items), size)]
        return self.adapter.merge(parts)

    def _each_batch(self, items: list[Any], runtime: RuntimeSettings, rows_per_example: int, truncation: bool,
                    progress: bool, work: Callable[[list[int]], list[T]], label: str = "decoderlens") -> list[T]:
        """Run ``work`` on every planned batch of input indices; results come back in input order. Batches of
        the auto size are split where their inputs' kept states would not fit the memory budget."""
        results: list[T | None] = [None] * len(items)
        group = self.adapter.spec.modality == "text" or not self.adapter.spec.padding_sensitive
        size = runtime.batch_size if isinstance(runtime.batch_size, int) else None
        batches = plan_batches(items, size, rows_per_example, runtime.max_rows, group_by_length=group)
        if size is None:
            batches = self._within_memory(items, batches, truncation, runtime.max_memory)
        with tqdm(total=len(items), desc=label, unit="ex", disable=not progress, dynamic_ncols=True) as bar:
            for indices in batches:
                for index, result in zip(indices, work(indices), strict=True):
                    results[index] = result
                bar.update(len(indices))
        return results  # type: ignore[return-value]

    def _within_memory(self, items: list[Any], batches: list[list[int]], truncation: bool,
                       max_memory: int | str | None) -> list[list[int]]:
        """``batches`` cut so that each one's kept states fit a share of the memory budget (``max_memory``, else
        the automatic one), measured on the longest input by encoding it alone."""
        budget = parse_size(max_memory) if max_memory is not None else available_bytes(self.device)
        if budget is None or all(len(batch) == 1 for batch in batches):
            return batches
        longest = max((index for batch in batches for index in batch), key=lambda index: input_length(items[index]))
        try:
            per_input = _input_bytes(self.encode([items[longest]], truncation))
        except InputError:  # a bad input: the batch that holds it reports it, by its place in the call
            return batches
        most = max(1, int(ENCODER_SHARE * budget) // per_input)
        return [batch[start: start + most] for batch in batches for start in range(0, len(batch), most)]

    def _rows_per_call(self, encoded: EncodedBatch, max_rows: int, max_memory: int | str | None,
                       row_bytes: Callable[[RowCost, int, int], int]) -> int:
        """The row limit for one call: ``max_rows``, lowered to what fits ``max_memory`` (without one, to what
        fits a share of the device's free memory, never below one row)."""
        _, length, width = encoded.final_output.shape
        if max_memory is None:
            budget = available_bytes(self.device)
            try:
                per_row = row_bytes(RowCost(self.model), length, width)
            except InputError:  # a config whose shape cannot be read: the plain row limit
                return max_rows
            return max_rows if budget is None else max(1, min(max_rows, budget // max(1, per_row)))
        return min(max_rows, rows_within(parse_size(max_memory), row_bytes(RowCost(self.model), length, width)))

    @staticmethod
    def _check_items(inputs: Sequence[Any] | str) -> list[Any]:
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        if not items:
            raise InputError("no inputs given: pass at least one input")
        return items

    # --- generation -------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        inputs: Sequence[Any] | str,
        layers: LayerSpec = GEN.layers,
        *,
        max_new_tokens: int | None = GEN.max_new_tokens,
        num_beams: int = GEN.num_beams,
        batch_size: int | str | None = RUN.batch_size,
        max_rows: int = RUN.max_rows,
        final_norm: FinalNorm = GEN.final_norm,
        tgt_lang: str | None = GEN.tgt_lang,
        language: str | None = GEN.language,
        task: str | None = GEN.task,
        truncation: bool = GEN.truncation,
        progress: bool = False,
        first_round: int | None = 16,
        lean: bool = True,
        top_length_cap: float | None = GEN.top_length_cap,
        max_memory: int | str | None = RUN.max_memory,
        **generate_kwargs: Any,
    ) -> LensOutput:
        """Generate from every selected encoder layer (0 = embeddings .. L = final) for every input.

        The encoder runs once per batch; selected layers are stacked along the batch dimension and decoded
        together, in as few calls as ``max_rows`` (and ``max_memory``) allow. ``batch_size=None`` (default) puts
        as many inputs of similar length into one batch as the stacked rows allow. Where the generation config
        asks for plain greedy search with no logits processor, a lean loop over the model's forward replaces
        ``generate`` and drops rows the step they end (token-identical; ``lean=False`` keeps ``generate``);
        elsewhere greedy decoding runs in rounds (``first_round`` new tokens, then twice as many, ...) that
        continue only unfinished rows (``first_round=None``: one ``generate`` call).

        ``top_length_cap`` (greedy decoding; default 2.0) ties the length of lower layers' outputs to the top
        layer's: an example's readout of layer ``l < L`` is cut after ``ceil(cap * n) + 16`` new tokens, where
        ``n`` is the length of its top-layer output. The top layer is decoded in the same stack (also when it
        is not selected) and each lower row gets its limit the step its example's top row ends. A readout that
        ends by itself within that length is unchanged, and a cut one is a prefix of the uncut output. ``None``
        or 0 switches it off; ``max_new_tokens`` stays the limit for every layer.

        ``max_memory`` (bytes, or text such as ``"8GiB"``) caps what one call may hold: inputs are encoded in
        pieces and stacked rows split so that encoder states, key/value caches and logits stay under it
        (estimated from the model's shape; the weights are not counted).
        """
        generation = GenerationSettings(layers, max_new_tokens, num_beams, final_norm, tgt_lang, language, task,
                                        top_length_cap, truncation).validate()
        runtime = RuntimeSettings(batch_size, max_rows, max_memory).validate()
        return self.read(self._check_items(inputs), generation, runtime, progress=progress,
                         first_round=first_round, lean=lean, **generate_kwargs)

    def read(self, items: list[Any], generation: GenerationSettings, runtime: RuntimeSettings,
             progress: bool = False, watcher: ReadoutWatcher | None = None, **options: Any) -> LensOutput:
        """``generate`` with composed settings (the path the command line, evaluation and the server take).
        ``watcher`` sees every readout's tokens as they are generated, and may stop an input's rows."""
        chosen = self.select(generation.layers)
        plan = self.plan(generation, **options)
        per_example = self._each_batch(
            items, runtime, self._rows_per_example(chosen, plan, generation), generation.truncation, progress,
            lambda indices: self._readout_batch(self.encode([items[i] for i in indices], generation.truncation,
                                                            runtime.max_memory), chosen, plan, generation, runtime,
                                                None if watcher is None else _BatchWatcher(watcher, indices)))
        return self._lens_output(items, per_example, chosen, plan, generation)

    def _lens_output(self, items: list[Any], per_example: list[list[LayerReadout]], chosen: list[int],
                     plan: DecodingPlan, generation: GenerationSettings) -> LensOutput:
        examples = [ExampleReadouts(describe(item, i), per_example[i]) for i, item in enumerate(items)]
        settings = {**asdict(generation), "layers": chosen, "max_new_tokens": plan.max_new_tokens,
                    "top_length_cap": generation.top_length_cap or None, "prompt": plan.prompt, "lens": self.lens_kind}
        return LensOutput(self.name, self.num_layers, examples, settings)

    def _cap(self, plan: DecodingPlan, generation: GenerationSettings, layers: list[int]) -> LengthCap | None:
        """The top-length cap where it applies: greedy decoding, and some layer below the top selected."""
        if not generation.top_length_cap or not plan.greedy or layers == [self.num_layers]:
            return None
        return LengthCap(float(generation.top_length_cap), CAP_MARGIN)

    def _rows_per_example(self, layers: list[int], plan: DecodingPlan, generation: GenerationSettings) -> int:
        capped = self._cap(plan, generation, layers) is not None and self.num_layers not in layers
        return len(layers) + int(capped)

    def _readout_batch(self, encoded: EncodedBatch, layers: list[int], plan: DecodingPlan,
                       generation: GenerationSettings, runtime: RuntimeSettings,
                       watcher: ReadoutWatcher | None = None) -> list[list[LayerReadout]]:
        """Readouts of one encoded batch: a list per example, one ``LayerReadout`` per layer (in order).

        With the top-length cap the top layer's rows come first in the stack, so that however the rows are
        split into calls, every lower row's anchor (its example's top row) is decoded no later than it.
        """
        size, top = encoded.batch_size, self.num_layers
        cap = self._cap(plan, generation, layers)
        order = [top, *[layer for layer in layers if layer != top]] if cap else layers
        anchors = [None if cap is None or layer == top else b for layer in order for b in range(size)]
        limits = RowLimits([plan.max_new_tokens] * len(anchors), anchors, cap)
        stack = self.adapter.stack(encoded, order, generation.final_norm, self.device, self._translate())
        max_rows = self._rows_per_call(encoded, runtime.max_rows, runtime.max_memory, lambda cost, length, width:
                                       cost.decoding(length, width, plan.max_new_tokens, len(plan.prompt),
                                                     plan.num_beams))
        listener = None
        if watcher is not None:
            def listener(updates: dict[int, list[int]]) -> set[int]:
                stop = set()
                for row, ids in updates.items():
                    layer, example = order[row // size], row % size
                    if layer in layers:
                        watcher.tokens(example, layer, strip_output(plan.prompt + ids, plan))
                    if watcher.cancelled(example):
                        stop.add(row)
                return stop
        sequences: list[list[int]] = []
        for rows in row_slices(len(anchors), max_rows):
            sequences += decode_rows(self.model, plan, stack.part(rows), encoded.as_encoder_outputs, limits,
                                     list(range(rows.start, rows.stop)), listener)
        result: list[list[LayerReadout]] = [[] for _ in range(size)]
        for row, sequence in enumerate(sequences):
            layer, example = order[row // size], row % size
            if layer in layers:
                result[example].append(self._readout(layer, strip_output(sequence, plan)))
        for readouts in result:
            readouts.sort(key=lambda r: r.layer)
        return result

    def _readout(self, layer: int, ids: list[int]) -> LayerReadout:
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return LayerReadout(layer, text, ids, self.tokenizer.convert_ids_to_tokens(ids))

    # --- scoring ----------------------------------------------------------------------------------

    @torch.no_grad()
    def score(
        self,
        inputs: Sequence[Any] | str,
        targets: Sequence[str] | str,
        layers: LayerSpec = GEN.layers,
        *,
        top_k: int = 5,
        batch_size: int | str | None = RUN.batch_size,
        max_rows: int = RUN.max_rows,
        final_norm: FinalNorm = GEN.final_norm,
        tgt_lang: str | None = GEN.tgt_lang,
        truncation: bool = GEN.truncation,
        progress: bool = False,
        max_memory: int | str | None = RUN.max_memory,
    ) -> ScoreOutput:
        """Teacher-forced scores of ``targets`` at every selected layer: log-prob, rank, entropy, top-k.

        ``max_memory`` splits the stacked rows so that their states, activations and full-vocabulary
        log-probs stay under it (see ``generate``).
        """
        generation = GenerationSettings(layers, final_norm=final_norm, tgt_lang=tgt_lang,
                                        truncation=truncation).validate()
        runtime = RuntimeSettings(batch_size, max_rows, max_memory).validate()
        items = self._check_items(inputs)
        return self.score_items(items, self._check_targets(items, targets), generation, runtime, top_k, progress)

    def score_items(self, items: list[Any], targets: list[str], generation: GenerationSettings,
                    runtime: RuntimeSettings, top_k: int = 5, progress: bool = False) -> ScoreOutput:
        """``score`` with composed settings."""
        chosen = self.select(generation.layers)
        per_example = self._each_batch(
            items, runtime, len(chosen), generation.truncation, progress,
            lambda indices: self._score_batch(self.encode([items[i] for i in indices], generation.truncation,
                                                          runtime.max_memory), [targets[i] for i in indices],
                                              chosen, generation, runtime, top_k), "decoderlens score")
        return self._score_output(items, targets, per_example, chosen, generation, top_k)

    def _score_output(self, items: list[Any], targets: list[str], per_example: list[list[LayerScore]],
                      chosen: list[int], generation: GenerationSettings, top_k: int) -> ScoreOutput:
        examples = [ExampleScores(describe(item, i), targets[i], per_example[i]) for i, item in enumerate(items)]
        settings = {"layers": chosen, "final_norm": generation.final_norm, "top_k": top_k,
                    "tgt_lang": generation.tgt_lang, "lens": self.lens_kind}
        return ScoreOutput(self.name, self.num_layers, examples, settings)

    @staticmethod
    def _check_targets(items: list[Any], targets: Sequence[str] | str) -> list[str]:
        target_list = [targets] if isinstance(targets, str) else list(targets)
        if len(target_list) != len(items):
            raise InputError(f"got {len(items)} inputs but {len(target_list)} targets: give one target per input")
        return target_list

    def _score_batch(self, encoded: EncodedBatch, targets: list[str], layers: list[int],
                     generation: GenerationSettings, runtime: RuntimeSettings, top_k: int) -> list[list[LayerScore]]:
        labels = target_labels(self.tokenizer, self.model, targets, generation.tgt_lang).to(self.device)
        max_rows = self._rows_per_call(encoded, runtime.max_rows, runtime.max_memory, lambda cost, length, width:
                                       cost.scoring(length, width, labels.shape[1]))
        statistics = token_statistics(self.model, self.adapter, encoded, labels, layers, top_k, max_rows,
                                      generation.final_norm, self._translate())
        return layer_scores(self.tokenizer, labels, layers, statistics)

    @torch.no_grad()
    def read_all(self, items: list[Any], targets: list[str], generation: GenerationSettings,
                 runtime: RuntimeSettings, *, score: bool = True, grid: bool = False, raw_too: bool = False,
                 top_k: int = 5, progress: bool = False, **options: Any) -> Readings:
        """Readouts and, from the same encoder pass per batch, the teacher-forced scores of ``targets``
        (``score``), their 2-D lens (``grid``) and, with translators in use, the raw lens's readouts too
        (``raw_too``): what ``eval --score --grid --lens both`` records."""
        chosen = self.select(generation.layers)
        targets = self._check_targets(items, targets)
        plan = self.plan(generation, **options)
        if grid:
            self.adapter.decoder_layout  # noqa: B018 (refuses unmapped decoders before any work)

        raw_too = raw_too and self.translators is not None

        def each(indices: list[int]) -> list[tuple[Any, ...]]:
            encoded = self.encode([items[i] for i in indices], generation.truncation, runtime.max_memory)
            chunk = [targets[i] for i in indices]
            readouts = self._readout_batch(encoded, chosen, plan, generation, runtime)
            raw: list[list[LayerReadout] | None] = [None] * len(indices)
            if raw_too:
                with self.raw_lens():
                    raw = list(self._readout_batch(encoded, chosen, plan, generation, runtime))
            scores = self._score_batch(encoded, chunk, chosen, generation, runtime, top_k) if score else [
                []] * len(indices)
            grids: list[ExampleGrid | None] = [None] * len(indices)
            if grid:
                labels = target_labels(self.tokenizer, self.model, chunk, generation.tgt_lang).to(self.device)
                grids = list(self._grid_batch(encoded, labels, chosen, generation, runtime,
                                              [describe(items[i], i) for i in indices], chunk))
            return list(zip(readouts, scores, grids, raw, strict=True))

        rows = self._each_batch(items, runtime, self._rows_per_example(chosen, plan, generation),
                                generation.truncation, progress, each)
        raw_output = None
        if raw_too:
            with self.raw_lens():
                raw_output = self._lens_output(items, [r[3] for r in rows], chosen, plan, generation)
        return Readings(
            self._lens_output(items, [r[0] for r in rows], chosen, plan, generation),
            self._score_output(items, targets, [r[1] for r in rows], chosen, generation, top_k) if score else None,
            self._grid_output([r[2] for r in rows], chosen, generation, "given") if grid else None,
            raw_output)

    @contextlib.contextmanager
    def raw_lens(self) -> Iterator[None]:
        """Read through the raw lens for a while, whatever translators are in use."""
        saved, self.translators = self.translators, None
        try:
            yield
        finally:
            self.translators = saved

    # --- the 2-D lens -----------------------------------------------------------------------------

    @torch.no_grad()
    def grid(self, inputs: Sequence[Any] | str, targets: Sequence[str] | str | None = None,
             layers: LayerSpec = GEN.layers, *, progress: bool = False, **settings: Any) -> GridOutput:
        """The 2-D lens: for every selected encoder layer and every decoder layer 1..D, the teacher-forced
        log-prob and rank of each target token and the top-1 token. Decoder layers below D are read through the
        decoder's own final norm and output head (a logit lens inside the decoder); D is the real output, so
        column D equals ``score``. Without ``targets`` the model's own top-layer output (greedy) is the target.
        One teacher-forced forward over the stacked encoder layers gives every decoder layer at once.

        ``settings``: any field of ``GenerationSettings`` (``max_new_tokens``, ``final_norm``, ``tgt_lang``,
        ``language``, ``task``, ``truncation``) or ``RuntimeSettings`` (``batch_size``, ``max_rows``,
        ``max_memory``).
        """
        generation, runtime = settings_from_keywords({**settings, "layers": layers, "top_length_cap": None})
        return self.grid_items(self._check_items(inputs), targets, generation, runtime, progress)

    def grid_items(self, items: list[Any], targets: Sequence[str] | str | None, generation: GenerationSettings,
                   runtime: RuntimeSettings, progress: bool = False) -> GridOutput:
        """``grid`` with composed settings."""
        self.adapter.decoder_layout  # noqa: B018 (refuses unmapped decoders before any work)
        chosen = self.select(generation.layers)
        label_ids: list[list[int]]
        if targets is None:
            plan = self.plan(generation)
            top = self.read(items, replace(generation, layers=[self.num_layers], top_length_cap=None), runtime)
            eos = sorted(plan.eos_token_ids)[:1]
            label_ids = [plan.prompt[1:] + ex.readouts[0].token_ids + eos for ex in top]
            target_list = [ex.readouts[0].text for ex in top]
        else:
            target_list = self._check_targets(items, targets)
            label_ids = []

        def cells(indices: list[int]) -> list[ExampleGrid]:
            encoded = self.encode([items[i] for i in indices], generation.truncation, runtime.max_memory)
            if label_ids:
                width = max(len(label_ids[i]) for i in indices)
                labels = torch.tensor([label_ids[i] + [-100] * (width - len(label_ids[i])) for i in indices])
            else:
                labels = target_labels(self.tokenizer, self.model, [target_list[i] for i in indices],
                                       generation.tgt_lang)
            return self._grid_batch(encoded, labels.to(self.device), chosen, generation, runtime,
                                    [describe(items[i], i) for i in indices], [target_list[i] for i in indices])

        examples = self._each_batch(items, runtime, len(chosen), generation.truncation, progress, cells,
                                    "decoderlens grid")
        return self._grid_output(examples, chosen, generation,
                                 "given" if targets is not None else "top-layer greedy output")

    def _grid_batch(self, encoded: EncodedBatch, labels: torch.Tensor, layers: list[int],
                    generation: GenerationSettings, runtime: RuntimeSettings, inputs: list[str],
                    targets: list[str]) -> list[ExampleGrid]:
        rows = self._rows_per_call(encoded, runtime.max_rows, runtime.max_memory, lambda cost, length, width:
                                   cost.scoring(length, width, labels.shape[1]))
        statistics = grid_statistics(self.model, self.adapter, encoded, labels, layers, rows, generation.final_norm,
                                     self._translate())
        return example_grids(self.tokenizer, labels, layers, inputs, targets, statistics)

    def _grid_output(self, examples: list[ExampleGrid], layers: list[int], generation: GenerationSettings,
                     targets: str) -> GridOutput:
        settings = {"layers": layers, "final_norm": generation.final_norm, "tgt_lang": generation.tgt_lang,
                    "language": generation.language, "task": generation.task, "targets": targets,
                    "lens": self.lens_kind}
        return GridOutput(self.name, self.num_layers, examples, settings,
                          num_decoder_layers=self.adapter.num_decoder_layers)


    # --- causal tracing ---------------------------------------------------------------------------

    @torch.no_grad()
    def trace(
        self,
        item: Any,
        answer: str | None = None,
        corrupt: tuple[float, float] | str | None = None,
        *,
        window: int = 1,
        restore_all: bool = False,
        samples: int = 10,
        noise_scale: float = 3.0,
        seed: int = 0,
        max_rows: int = RUN.max_rows,
        max_new_tokens: int | None = GEN.max_new_tokens,
        tgt_lang: str | None = GEN.tgt_lang,
        language: str | None = GEN.language,
        task: str | None = GEN.task,
    ) -> TraceOutput:
        """Causal tracing in the encoder: where (layer, position) does the answer get decided?

        The clean input is run, then a corrupted one: Gaussian noise of ``noise_scale`` times the embeddings'
        standard deviation on the token span ``corrupt=(start, end)`` (speech: a span of seconds on the input
        features; default: the whole input), averaged over ``samples`` seeded draws, or another input of the
        same length (``corrupt="..."``). For every encoder layer k (a window of ``window`` layers from k up) and
        input position i, the clean state at (k, i) is restored in the corrupted run, the encoder continues from
        there, and the answer's teacher-forced probability is measured (``restore_all``: every position of the
        layer at once). ``answer`` defaults to the model's greedy output for the clean input.
        """
        from decoderlens.settings import check_count

        check_count("window", window)
        check_count("samples", samples)
        generation = GenerationSettings(max_new_tokens=max_new_tokens, tgt_lang=tgt_lang, language=language,
                                        task=task, top_length_cap=None).validate()
        if self.adapter.spec.modality == "vision":
            raise InputError("causal tracing corrupts text tokens or spans of audio; images are not supported")
        if not isinstance(item, str) and self.adapter.spec.modality == "text":
            raise InputError("give the input as text")
        batch = {k: v.to(self.device) for k, v in self._prepare([item]).items()}
        clean = self.adapter.encode(batch)
        plan = self.plan(generation)
        if answer is None:
            top = self.read([item], replace(generation, layers=[self.num_layers]), RuntimeSettings())[0].readouts[0]
            labels = torch.tensor([plan.prompt[1:] + top.token_ids + sorted(plan.eos_token_ids)[:1]])
            answer = top.text
        else:
            labels = target_labels(self.tokenizer, self.model, [answer], tgt_lang)
        tracer = Tracer(self.model, self.adapter, batch, clean, labels.to(self.device))
        clean_prob = float(tracer.answer_prob(clean.final_output, clean.attention_mask)[0])
        corrupted, noise, corruption = self._corruption(item, batch, corrupt, samples, noise_scale, seed)
        length = clean.final_output.shape[1]
        runs = variants(self.num_layers, length, window, restore_all)
        probs = tracer.run(runs, corrupted, noise, max_rows)
        restored = probs[1:].reshape(self.num_layers + 1, -1)
        return TraceOutput(
            self.name, describe(item, 0), answer, self._position_labels(batch, length, item), clean_prob,
            float(probs[0]), [float(v) for v in restored[:, 0]] if restore_all else restored.tolist(), corruption,
            window, 1 if noise is None else samples,
            {"noise_scale": noise_scale, "seed": seed, "restore_all": restore_all, "tgt_lang": tgt_lang,
             "language": language, "task": task})

    def _corruption(self, item: Any, batch: dict[str, torch.Tensor], corrupt: tuple[float, float] | str | None,
                    samples: int, scale: float, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor | None,
                                                                    str]:
        """The corrupted encoder inputs, the embedding noise (text) and a description of the corruption."""
        spec = self.adapter.spec
        if isinstance(corrupt, str):
            other = {k: v.to(self.device) for k, v in self._prepare([corrupt]).items()}
            if any(other[k].shape != batch[k].shape for k in batch if k in other):
                raise InputError("the corrupting input must have the same length as the input (in tokens or frames): "
                                 f"{corrupt!r} does not")
            return other, None, f"input replaced by {corrupt!r}"
        if spec.modality == "text":
            length = batch["input_ids"].shape[1]
            span = (0, length) if corrupt is None else (int(corrupt[0]), int(corrupt[1]))
            noise = embedding_noise(self.adapter, batch, span, samples, scale, seed)
            return batch, noise, f"noise x{scale:g} on tokens {span[0]}:{span[1]}"
        key = "input_features" if "input_features" in batch else "input_values"
        features = batch[key]
        axis = spec.speech_time_axis % features.dim()
        seconds = self._input_seconds(item)
        rate = features.shape[axis] / seconds
        start, end = (0.0, seconds) if corrupt is None else (float(corrupt[0]), float(corrupt[1]))
        frames = (round(start * rate), round(end * rate))
        noisy = feature_noise(features, axis, frames, samples, scale, seed)
        corrupted = {k: (noisy if k == key else v.repeat(samples, *([1] * (v.dim() - 1)))) for k, v in batch.items()}
        return corrupted, None, f"noise x{scale:g} on seconds {start:g}-{end:g} ({samples} draws)"

    def _input_seconds(self, item: Any) -> float:
        """The duration the speech model's input features cover (its fixed window where it pads to one)."""
        from decoderlens.inputs import load_audio

        extractor = getattr(self.processor, "feature_extractor", self.processor)
        rate = int(extractor.sampling_rate)
        if self.adapter.spec.feature_padding == "max_length" and getattr(extractor, "n_samples", None):
            return float(extractor.n_samples) / rate
        return load_audio(item, rate).size / rate

    def _position_labels(self, batch: dict[str, torch.Tensor], length: int, item: Any) -> list[str]:
        if "input_ids" in batch:
            return [str(t) for t in self.tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())][:length]
        step = self._input_seconds(item) / length
        return [f"{i * step:.2f}s" for i in range(length)]


def _rows_of(batch: dict[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
    """Inputs ``start:stop`` of a prepared batch."""
    return {key: value[start:stop] for key, value in batch.items()}


def _input_bytes(encoded: EncodedBatch) -> int:
    """What one input of an encoder batch holds at its peak, from a batch of that one input."""
    return encoding_bytes(sum(t.numel() * t.element_size() for t in encoded.hidden_states))
