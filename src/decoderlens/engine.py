"""``DecoderLens``, the front of the library: it loads a model and hands each call to the module that does the work
(``readout``, ``scoring``, ``grid``, ``trace``, ``attribution``, ``readings``), with the call's settings and the
lens to read through."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens import batching, languages, readings, readout, scoring
from decoderlens import grid as grid_lens
from decoderlens import trace as tracing
from decoderlens.adapter import EncodedBatch
from decoderlens.attribution import run as attribution_run
from decoderlens.attribution.output import AttributionOutput
from decoderlens.batching import Progress
from decoderlens.decoding import DecodingPlan
from decoderlens.inputs import as_items, as_targets
from decoderlens.layers import LayerSpec
from decoderlens.lenses import RAW, Lens, LensMode, TunedLens, lenses_for, tuned_lens
from decoderlens.loading import load_model_and_processor
from decoderlens.model_parts import ModelParts
from decoderlens.readings import Readings
from decoderlens.readout import ReadoutWatcher
from decoderlens.results import GridOutput, LanguageOutput, LensOutput, ScoreOutput, TraceOutput
from decoderlens.settings import LOAD_DEFAULTS as LOAD
from decoderlens.settings import AttributionSettings, GenerationSettings, RuntimeSettings, TraceSettings, compose
from decoderlens.translators import Translators

Settings = dict[str, Any]


class DecoderLens:
    """Read out every encoder layer of an encoder-decoder model through its unchanged decoder.

    Every analysis takes ``generation`` and ``runtime`` settings (defaults where absent) and keyword overrides of
    their fields (``max_new_tokens=8``, ``batch_size=4``; unknown names are refused), and reads through ``lens``
    (default: the lens this object was built with, the raw lens unless translators were given).
    """

    def __init__(self, model: PreTrainedModel, processor: Any, name: str | None = None, lens: Lens = RAW) -> None:
        """Wrap a loaded model and its tokenizer (text) or processor (speech, vision)."""
        self.parts = ModelParts(model, processor,
                                name or str(getattr(model.config, "_name_or_path", "") or type(model).__name__))
        self.lens = lens
        """The lens every call reads through unless it is given another."""

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, *, device: str = LOAD.device, dtype: str = LOAD.dtype,
        device_map: str | dict[str, Any] | None = LOAD.device_map, translators: str | Path | None = None,
        force: bool = False, name: str | None = None, **kwargs: Any,
    ) -> DecoderLens:
        """Load a Hub model or local folder; unsupported models are refused before weights download.

        ``dtype``: auto (bfloat16 on GPUs that support it, else float32), float32, bfloat16 or float16;
        ``device_map="auto"`` spreads a model too large for one GPU over several (see accelerate).
        ``translators`` (a folder or Hub id from ``decoderlens tune``) makes the tuned lens the default lens (see
        ``tuned_lens``). ``name``: the model's name in results (default: ``name_or_path``).
        """
        model, processor = load_model_and_processor(name_or_path, device=device, dtype=dtype,
                                                     device_map=device_map, **kwargs)
        lens = cls(model, processor, name=name or name_or_path)
        if translators is not None:
            lens.lens = lens.tuned_lens(translators, force=force)
        return lens

    # --- model facts -------------------------------------------------------------------------------

    @property
    def model(self) -> PreTrainedModel:
        return self.parts.model

    @property
    def processor(self) -> Any:
        return self.parts.processor

    @property
    def tokenizer(self) -> Any:
        return self.parts.tokenizer

    @property
    def adapter(self) -> Any:
        return self.parts.adapter

    @property
    def name(self) -> str:
        return self.parts.name

    @property
    def num_layers(self) -> int:
        """L: the encoder's number of blocks; readable layers are 0..L."""
        return self.parts.num_layers

    @property
    def device(self) -> torch.device:
        return self.parts.device

    def select(self, layers: LayerSpec) -> list[int]:
        """The layers a selection names, checked against this encoder."""
        return self.parts.select(layers)

    def plan(self, generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
             **extra: Any) -> DecodingPlan:
        """The decoding plan of ``generation`` for this model (prompt, forced tokens, length, strategy)."""
        return self.parts.plan(generation or GenerationSettings(), runtime, **extra)

    # --- lenses ------------------------------------------------------------------------------------

    def tuned_lens(self, translators: str | Path | Translators, force: bool = False) -> TunedLens:
        """A tuned lens from translators (a folder, Hub id or object from ``decoderlens tune``) made for this model.
        Translators made for another model are refused: a different shape always, a different model hash unless
        ``force`` (then with a warning)."""
        adapter = self.parts.adapter
        return tuned_lens(translators, self.model, adapter.encoder, self.num_layers, adapter.encoder_width,
                          self.device, force)

    def lenses(self, mode: LensMode | str) -> list[Lens]:
        """The lenses a mode reads: raw, tuned (this object's tuned lens) or both (tuned first)."""
        return lenses_for(mode, None if self.lens is RAW else self.lens)

    # --- analyses ----------------------------------------------------------------------------------

    def encode(self, inputs: Sequence[Any] | str, truncation: bool = False,
               max_memory: int | str | None = None) -> EncodedBatch:
        """Every encoder layer's states for a batch of inputs (``hidden_states[l]``, l = 0..L), from one pass."""
        return batching.encode(self.parts, as_items(inputs), truncation, max_memory)

    def generate(self, inputs: Sequence[Any] | str, layers: LayerSpec = None, *,
                 generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
                 lens: Lens | None = None, progress: bool = False, watcher: ReadoutWatcher | None = None,
                 generate_options: Settings | None = None, **overrides: Any) -> LensOutput:
        """Generate from every selected encoder layer (0 = embeddings .. L = final) for every input.

        The encoder runs once per batch; selected layers are stacked along the batch dimension and decoded
        together, in as few calls as ``max_rows`` (and ``max_memory``) allow. Greedy readouts of layers below the
        top are cut after ``ceil(top_length_cap * n) + 16`` new tokens, n = the example's top-layer length (a cut
        readout is a prefix of the uncut one; ``top_length_cap=0`` switches it off). ``watcher`` sees every
        readout's tokens as they are generated (and may stop an input's rows); ``generate_options``: further
        ``generate`` keywords (e.g. ``no_repeat_ngram_size``).
        """
        generation, runtime = self._settings(layers, generation, runtime, overrides)
        return readout.read(self.parts, as_items(inputs), generation, runtime, lens or self.lens, progress, watcher,
                            **(generate_options or {}))

    def score(self, inputs: Sequence[Any] | str, targets: Sequence[str] | str, layers: LayerSpec = None, *,
              generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
              lens: Lens | None = None, progress: bool = False, **overrides: Any) -> ScoreOutput:
        """Teacher-forced scores of ``targets`` (one per input) at every selected layer: log-prob, rank, entropy and
        the ``top_k`` most likely tokens of every target position."""
        generation, runtime = self._settings(layers, generation, runtime, overrides)
        items = as_items(inputs)
        return scoring.score(self.parts, items, as_targets(items, targets), generation, runtime, lens or self.lens,
                             progress)

    def grid(self, inputs: Sequence[Any] | str, targets: Sequence[str] | str | None = None, layers: LayerSpec = None,
             *, generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
             lens: Lens | None = None, progress: bool = False, **overrides: Any) -> GridOutput:
        """The 2-D lens: for every selected encoder layer and every decoder layer 1..D, the teacher-forced log-prob
        and rank of each target token and the top-1 token. Decoder layers below D are read through the decoder's
        own final norm and output head (a logit lens inside the decoder); D is the real output, so column D equals
        ``score``. Without ``targets`` the model's own top-layer output (greedy) is the target."""
        generation, runtime = self._settings(layers, generation, runtime, overrides)
        items = as_items(inputs)
        return grid_lens.grid(self.parts, items, None if targets is None else as_targets(items, targets), generation,
                              runtime, lens or self.lens, progress)

    def trace(self, item: Any, answer: str | None = None, corrupt: tracing.Corruption = None, *,
              trace: TraceSettings | None = None, generation: GenerationSettings | None = None,
              runtime: RuntimeSettings | None = None, **overrides: Any) -> TraceOutput:
        """Causal tracing in the encoder: where (layer, position) does the answer get decided?

        The clean input is run, then a corrupted one: Gaussian noise of ``noise_scale`` times the embeddings'
        standard deviation on the token span ``corrupt=(start, end)`` (speech: a span of seconds on the input
        features; default: the whole input), averaged over ``samples`` seeded draws, or another input of the same
        length (``corrupt="..."``). For every encoder layer k (a window of ``window`` layers from k up) and input
        position i, the clean state at (k, i) is restored in the corrupted run, the encoder continues from there,
        and the answer's teacher-forced probability is measured (``restore_all``: every position of the layer at
        once). ``answer`` defaults to the model's greedy output for the clean input. ``overrides`` may name fields
        of ``TraceSettings`` too.
        """
        names = set(TraceSettings.__dataclass_fields__)
        trace_settings = (trace or TraceSettings()).update(**{k: v for k, v in overrides.items() if k in names})
        generation, runtime = self._settings(None, generation, runtime,
                                             {k: v for k, v in overrides.items() if k not in names})
        return tracing.trace(self.parts, item, answer, corrupt, trace_settings, generation, runtime)

    def attribute(self, inputs: Sequence[Any] | str, layers: LayerSpec = None,
                  target: Sequence[str] | str | None = None, method: str | None = None, *,
                  attribution: AttributionSettings | None = None,
                  generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
                  lens: Lens | None = None, progress: Progress = False, **overrides: Any) -> AttributionOutput:
        """Where each layer looks: for every selected layer and every token of its readout (or of ``target``,
        one per input, teacher-forced at every layer), a score per source position (tokens, audio frames with
        their seconds, or image patches) of the states the decoder reads there.

        ``method``: ``grad`` (gradient x input, the cheap default), ``ig`` (integrated gradients from the
        ``baseline`` state in ``steps`` points, with its completeness gap) or ``occlusion`` (the log-probability's
        drop when a window of positions is replaced by the baseline). ``overrides`` may name fields of
        ``AttributionSettings`` too (``steps=32``)."""
        names = set(AttributionSettings.__dataclass_fields__)
        chosen = {k: v for k, v in overrides.items() if k in names}
        if method is not None:
            chosen["method"] = method
        settings = (attribution or AttributionSettings()).update(**chosen)
        generation, runtime = self._settings(layers, generation, runtime,
                                             {k: v for k, v in overrides.items() if k not in names})
        items = as_items(inputs)
        return attribution_run.attribute(self.parts, items, None if target is None else as_targets(items, target),
                                         generation, runtime, settings, lens or self.lens, progress)

    def detect_language(self, inputs: Sequence[Any] | str, layers: LayerSpec = None, *,
                        generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
                        lens: Lens | None = None, progress: Progress = False, **overrides: Any) -> LanguageOutput:
        """The language each selected layer detects for each input (multilingual speech models): what the decoder
        names first when it reads that layer, with its probability and the runners-up."""
        generation, runtime = self._settings(layers, generation, runtime, overrides)
        return languages.detect(self.parts, as_items(inputs), generation, runtime, lens or self.lens, progress)

    def read_all(self, inputs: Sequence[Any] | str, targets: Sequence[str] | str, layers: LayerSpec = None, *,
                 generation: GenerationSettings | None = None, runtime: RuntimeSettings | None = None,
                 lenses: list[Lens] | None = None, score: bool = True, grid: bool = False,
                 languages: bool = False, progress: Progress = False, **overrides: Any) -> Readings:
        """Readouts through each of ``lenses`` (default: this object's lens) and, from the same encoder pass per
        batch, the teacher-forced scores of ``targets`` and (``grid``) their 2-D lens: what ``eval`` records.
        ``progress``: a bar, or a function told after every batch how many more examples are done."""
        generation, runtime = self._settings(layers, generation, runtime, overrides)
        items = as_items(inputs)
        return readings.read_all(self.parts, items, as_targets(items, targets), generation, runtime,
                                 lenses or [self.lens], score=score, grid=grid, languages=languages,
                                 progress=progress)

    @staticmethod
    def _settings(layers: LayerSpec, generation: GenerationSettings | None, runtime: RuntimeSettings | None,
                  overrides: Settings) -> tuple[GenerationSettings, RuntimeSettings]:
        """The call's settings: the given ones (defaults where absent) with ``layers`` and the overrides applied."""
        if layers is not None:
            overrides = {**overrides, "layers": layers}
        return compose(generation, runtime, overrides)
