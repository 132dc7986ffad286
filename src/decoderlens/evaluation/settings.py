"""The settings of an evaluation run, composed of data, generation and runtime settings, with one override path
that the command line and recipes share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from decoderlens.errors import InputError
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.metrics import Metric, get_metric, get_normalizer, get_preset
from decoderlens.settings import (
    ATTRIBUTION_METHODS,
    GenerationSettings,
    LensMode,
    LoadSettings,
    RuntimeSettings,
    check_choice,
    check_count,
    described,
)

OnError = Literal["skip", "fail"]


MAX_NONSPEECH = 256
"""The most clips without speech an evaluation makes."""


@dataclass
class EvalSettings:
    """Everything that determines an evaluation run."""

    model: str
    """Hub model name or local folder."""
    data: DataSource
    preset: str = field(default="generic", metadata=described(
        "Metrics and normalisation for a kind of task: qa, mt, asr, logic or generic.", metavar="NAME"))
    metrics: list[str | Metric] | None = field(default=None, metadata=described(
        "Metric name (repeat the flag for several; default: the preset's); in Python also Metric objects "
        "(e.g. mean_metric('mine', fn)).", list, "NAME", "--metric"))
    normalize: str | None = field(default=None, metadata=described(
        "Text normalisation before metrics: none, lower, squad or whisper (default: the preset's).", str, "NAME"))
    score: bool = field(default=False, metadata=described(
        "Also score the reference per layer (teacher-forced log-probs)."))
    grid: bool = field(default=False, metadata=described(
        "Also record the 2-D lens of the reference (every encoder layer x decoder layer)."))
    attribute: str | None = field(default=None, metadata=described(
        "Also attribute every readout token to the source positions of its layer with this method (grad, ig or "
        "occlusion); the report shows where each layer looks (attributions.jsonl).", str, "METHOD"))
    lens: LensMode | str | None = field(default=None, metadata=described(
        "raw, tuned (with --translators) or both: raw and tuned readouts from one encoder pass (default: tuned with "
        "--translators, else raw).", str, "raw|tuned|both"))
    force: bool = field(default=False, metadata=described(
        "Use translators trained for another model (same shape) anyway, with a warning."))
    generation: GenerationSettings = field(default_factory=lambda: GenerationSettings(token_scores=True))
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    load: LoadSettings = field(default_factory=LoadSettings)
    chunk_size: int = field(default=256, metadata=described(
        "Examples decoded between two writes to disk (and grouped by length within)."))
    on_error: OnError = field(default="skip", metadata=described(
        "skip (and report) or fail on malformed rows.", str, "skip|fail"))
    bootstrap_resamples: int = field(default=1000, metadata=described(
        "Bootstrap resamples of every interval (0: none)."))
    nonspeech: int | None = field(default=None, metadata=described(
        "Speech models: clips without speech (silence and noise, made here) read out at every layer to measure "
        "hallucination, the share of readouts that produce words. Default: 8 for speech models; 0 switches it "
        "off.", metavar="N"))

    def validate(self) -> EvalSettings:
        """Check every option before any model is loaded or any example decoded."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise InputError("give a model: a Hub name or a local folder")
        self.data.validate()
        self.metric_objects()
        self.generation.validate()
        self.runtime.validate()
        self.load.validate()
        check_count("chunk_size", self.chunk_size)
        check_choice("on_error", self.on_error, ("skip", "fail"))
        if self.lens is not None:
            check_choice("lens", self.lens, tuple(LensMode))
            self.lens = LensMode(self.lens)
            if self.lens is not LensMode.raw and not self.load.translators:
                raise InputError(f"lens (--lens) {self.lens} needs translators: give --translators DIR (from "
                                 "decoderlens tune)")
        if self.attribute is not None:
            check_choice("attribute", self.attribute, ATTRIBUTION_METHODS)
        check_count("bootstrap_resamples", self.bootstrap_resamples, minimum=0)
        if self.nonspeech is not None:
            check_count("nonspeech", self.nonspeech, minimum=0)
            if self.nonspeech > MAX_NONSPEECH:
                raise InputError(f"nonspeech (--nonspeech) is at most {MAX_NONSPEECH} clips, got {self.nonspeech}")
        return self

    def metric_objects(self) -> tuple[list[Metric], str]:
        """The metrics to compute and the normalisation to apply first."""
        preset = get_preset(self.preset)
        chosen = self.metrics or list(preset.metrics)
        metrics = [m if isinstance(m, Metric) else get_metric(m) for m in chosen]
        normalize = self.normalize or preset.normalize
        get_normalizer(normalize)
        return metrics, normalize

    def with_metrics(self, names: Sequence[str]) -> EvalSettings:
        """These settings with the metrics ``names`` added where they are not measured yet (the speech
        diagnostics for every speech model)."""
        chosen = list(self.metrics or get_preset(self.preset).metrics)
        have = {m.name if isinstance(m, Metric) else m for m in chosen}
        return replace(self, metrics=[*chosen, *(name for name in names if name not in have)])

    def identity(self, layers: list[int], max_new_tokens: int) -> dict[str, Any]:
        """The settings that determine the readouts (``run.json``), with the layers and length resolved for the
        model; a results folder only ever holds one identity."""
        data = asdict(self.data)
        data.pop("limit", None)
        generation = asdict(self.generation)
        generation.pop("top_k")
        generation.pop("token_scores")  # what is recorded beside the readouts, not what they are
        generation.update(layers=layers, max_new_tokens=max_new_tokens,
                          top_length_cap=self.generation.top_length_cap or None, translators=self.load.translators)
        return {"model": self.model, "data": data, **generation, "score": self.score, "grid": self.grid,
                "lens": self.lens_mode.value}

    @property
    def lens_mode(self) -> LensMode:
        """raw, tuned or both (the default resolved)."""
        if self.lens is not None:
            return LensMode(self.lens)
        return LensMode.tuned if self.load.translators else LensMode.raw


_SECTIONS: dict[str, type] = {"data": DataSource, "generation": GenerationSettings, "runtime": RuntimeSettings,
                               "load": LoadSettings}
_TOP = {f.name for f in fields(EvalSettings)} - set(_SECTIONS)


def setting_names() -> list[str]:
    """Every name an override (or a recipe key) may use."""
    names = set(_TOP)
    for cls in _SECTIONS.values():
        names |= {f.name for f in fields(cls)}
    return sorted(names)


def apply_overrides(settings: EvalSettings, overrides: dict[str, Any]) -> EvalSettings:
    """A copy of ``settings`` with ``overrides`` (flat names, ``None`` values ignored) applied where they belong."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in _TOP:
            top[key] = value
            continue
        for section, cls in _SECTIONS.items():
            if key in {f.name for f in fields(cls)}:
                sections[section][key] = value
                break
        else:
            raise InputError(f"unknown setting {key!r}; known settings: {', '.join(setting_names())}")
    return replace(settings, **top, **{name: replace(getattr(settings, name), **values)
                                       for name, values in sections.items() if values})


def settings_from(options: dict[str, Any]) -> EvalSettings:
    """Settings from flat options (command line, recipe); ``model`` and ``path`` are required."""
    model, path = options.get("model"), options.get("path")
    if not model or not path:
        raise InputError("give MODEL and DATA, or --recipe FILE")
    base = EvalSettings(model=str(model), data=DataSource(str(path)))
    return apply_overrides(base, {k: v for k, v in options.items() if k not in ("model", "path")})
