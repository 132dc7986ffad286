"""Settings shared by the Python API, the command line and recipes: defaults stated once, checked in one place.

Each concept has one name everywhere: the field name here is the keyword of the API, the key in recipes,
``run.json`` and ``summary.json``, and (with dashes) the command-line option. Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Literal, TypeVar

from decoderlens.budget import parse_size
from decoderlens.errors import InputError, LayerSelectionError
from decoderlens.layers import select_layers

FinalNorm = Literal["auto", "none"]
FINAL_NORMS: tuple[str, ...] = ("auto", "none")
DEVICE_KINDS: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
DECODING: tuple[str, ...] = ("auto", "generate", "one-call")
S = TypeVar("S", bound="_Settings")


class LensMode(StrEnum):
    """Which lenses a command reads through: the raw one, the tuned one, or both from one encoder pass."""

    raw = "raw"
    tuned = "tuned"
    both = "both"


def option_name(name: str) -> str:
    """How a setting is written on the command line (``max_new_tokens`` -> ``--max-new-tokens``)."""
    return "--" + name.replace("_", "-")


def _label(name: str) -> str:
    return f"{name} ({option_name(name)})"


def check_count(name: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    """Refuse anything but a whole number of at least ``minimum`` (``None`` too, where ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{_label(name)} must be a whole number of at least {minimum}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Refuse a value outside ``choices``."""
    if value not in choices:
        raise InputError(f"{_label(name)} must be one of {', '.join(choices)}, got {value!r}")


def check_layer_spec(layers: Any) -> None:
    """Refuse layer selections that can never be valid, before any model is loaded."""
    try:
        select_layers(layers, 10_000)
    except LayerSelectionError as err:
        if "does not exist" not in str(err):  # ranges are checked once the model is known
            raise


def check_device(device: str) -> None:
    """Refuse device names torch does not know (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    kind, _, index = str(device).partition(":")
    if kind not in DEVICE_KINDS or (index and not (kind == "cuda" and index.isdigit())):
        raise InputError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps (--device)")


def described(text: str, cli_type: type | None = None, metavar: str | None = None,
              flag: str | None = None) -> dict[str, Any]:
    """A field's documentation, which is also its command-line help (``cli_type``: the option's type where the
    annotation allows several; ``flag``: the option's name where it is not the field's)."""
    return {"help": text, "cli_type": cli_type, "metavar": metavar, "flag": flag}


class _Settings:
    """A settings dataclass: ``update`` gives a checked copy with some fields changed (unknown names refused)."""

    def validate(self: S) -> S:
        return self

    def update(self: S, **overrides: Any) -> S:
        """A checked copy with ``overrides`` applied; a name that is no field of this class is refused."""
        unknown = set(overrides) - settings_fields(type(self))
        if unknown:
            raise InputError(f"unknown setting {sorted(unknown)[0]!r}: known settings are "
                             f"{', '.join(sorted(settings_fields(type(self))))}")
        return replace(self, **overrides).validate()  # type: ignore[type-var]


@dataclass
class GenerationSettings(_Settings):
    """What is read out, and how the decoder generates from each layer (field help = its documentation)."""

    layers: Any = field(default="all", metadata=described(
        "Layers to read: 'all', a list like '0,3,-1' (negatives count from the end, -1 = the final output) or a "
        "slice like '2:6'.", str, "all|LIST|SLICE"))
    max_new_tokens: int | None = field(default=None, metadata=described(
        "New tokens per readout (default: the model's generation config, else 64)."))
    num_beams: int = field(default=1, metadata=described("Beam width; 1 is greedy decoding, as in the paper."))
    final_norm: FinalNorm = field(default="auto", metadata=described(
        "'auto' applies a pre-LN encoder's final norm to intermediate layers; 'none' reads raw block outputs.", str,
        "auto|none"))
    tgt_lang: str | None = field(default=None, metadata=described(
        "Target language of multilingual translation models (fra_Latn for NLLB, fr for M2M100, fr_XX for "
        "mBART-50)."))
    language: str | None = field(default=None, metadata=described(
        "Spoken language of Whisper-style speech models (en, de, ...)."))
    task: str | None = field(default=None, metadata=described("Whisper-style speech models: transcribe or translate.",
                                                          str, "transcribe|translate"))
    top_length_cap: float | None = field(default=2.0, metadata=described(
        "Greedy readouts below the top layer stop after CAP x n + 16 new tokens, n = the example's top-layer "
        "length; 0 switches it off."))
    truncation: bool = field(default=False, metadata=described(
        "Cut over-long text inputs to the model's limit instead of refusing them."))
    top_k: int = field(default=5, metadata=described("Most likely tokens listed per target position (scores)."))
    token_scores: bool = field(default=False, metadata=described(
        "Also record how sure each layer is of its readout: every token's log-probability and the entropy of the "
        "distribution it was chosen from (recorded while decoding; the pages colour tokens by them). On in eval, "
        "run --html and the explorer; off by default in Python."))

    def validate(self) -> GenerationSettings:
        """Raise ``InputError`` naming the setting and its option for any value that cannot work."""
        check_layer_spec(self.layers)
        if self.top_length_cap == 0:
            self.top_length_cap = None
        check_count("max_new_tokens", self.max_new_tokens, optional=True)
        check_count("num_beams", self.num_beams)
        check_count("top_k", self.top_k)
        check_choice("final_norm", self.final_norm, FINAL_NORMS)
        cap = self.top_length_cap
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or cap < 0):
            raise InputError(f"{_label('top_length_cap')} must be a number of at least 0, got {cap!r}")
        for name in ("tgt_lang", "language", "task"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"{_label(name)} must be a non-empty text, got {value!r}")
        return self


@dataclass
class RuntimeSettings(_Settings):
    """In what pieces and by which decoding loop the work runs, per call; these change speed and memory, never
    results."""

    batch_size: int | str | None = field(default=None, metadata=described(
        "Inputs encoded together; 'auto' (None in Python) takes as many inputs of similar length as max_rows and "
        "max_memory allow.", str, "auto|N"))
    max_rows: int = field(default=1024, metadata=described(
        "Most stacked rows (layers x inputs) in one decoding or scoring call."))
    max_memory: str | int | None = field(default=None, metadata=described(
        "Memory budget of one call's encoder pass, stacked states, caches and logits, e.g. 8GiB.", str, "SIZE"))
    decoding: str = field(default="auto", metadata=described(
        "Greedy decoding loop: 'auto' (the own loop over the model's forward where the generation config adds no "
        "logits processor, else rounds of generate), 'generate' (rounds of generate) or 'one-call' (one generate "
        "call); token-identical, only speed differs.", str, "auto|generate|one-call"))
    first_round: int = field(default=16, metadata=described(
        "New tokens of the first round of generate-based greedy decoding (later rounds double)."))

    def validate(self) -> RuntimeSettings:
        """Raise ``InputError`` naming the setting and its option for any value that cannot work."""
        if isinstance(self.batch_size, str):
            text = self.batch_size.strip().lower()
            if text != "auto" and not text.isdigit():
                raise InputError(f"{_label('batch_size')} must be 'auto' or a whole number of at least 1, got "
                                 f"{self.batch_size!r}")
            self.batch_size = None if text == "auto" else int(text)
        check_count("batch_size", self.batch_size, optional=True)
        check_count("max_rows", self.max_rows)
        check_count("first_round", self.first_round)
        check_choice("decoding", self.decoding, DECODING)
        if self.max_memory is not None:
            parse_size(self.max_memory)
        return self


@dataclass
class LoadSettings(_Settings):
    """How the model is loaded, once: device, precision, placement and the tuned lens's translators."""

    device: str = field(default="auto", metadata=described("auto (CUDA when available), cpu, cuda, cuda:N or mps."))
    dtype: str = field(default="auto", metadata=described(
        "auto (bfloat16 on GPUs that support it, else float32), float32, bfloat16 or float16.", str,
        "auto|float32|bfloat16|float16"))
    device_map: str | None = field(default=None, metadata=described(
        "'auto' spreads a model too large for one GPU over all GPUs (replaces device)."))
    translators: str | None = field(default=None, metadata=described(
        "Read layers below the top through trained translators (a folder or Hub id from decoderlens tune).", str,
        "DIR"))

    def validate(self) -> LoadSettings:
        """Raise ``InputError`` naming the setting and its option for any value that cannot work."""
        check_device(self.device)
        check_choice("dtype", self.dtype, DTYPES)
        if self.translators is not None and (not isinstance(self.translators, str) or not self.translators.strip()):
            raise InputError(f"{_label('translators')} must name a folder or Hub id, got {self.translators!r}")
        return self


@dataclass
class TraceSettings(_Settings):
    """How causal tracing corrupts the input and restores clean states."""

    window: int = field(default=1, metadata=described("Layers restored together, from each layer up."))
    restore_all: bool = field(default=False, metadata=described(
        "Restore every position of a layer at once (one value per layer)."))
    samples: int = field(default=10, metadata=described("Noise draws averaged."))
    noise_scale: float = field(default=3.0, metadata=described(
        "Noise standard deviation in units of the embeddings' (or features')."))
    seed: int = field(default=0, metadata=described("Seed of the noise."))

    def validate(self) -> TraceSettings:
        """Raise ``InputError`` naming the setting and its option for any value that cannot work."""
        check_count("window", self.window)
        check_count("samples", self.samples)
        check_count("seed", self.seed, minimum=0)
        scale = self.noise_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise InputError(f"{_label('noise_scale')} must be a finite number above 0, got {scale!r}")
        return self


ATTRIBUTION_METHODS: tuple[str, ...] = ("grad", "ig", "occlusion")
BASELINES: tuple[str, ...] = ("zero", "mean")


@dataclass
class AttributionSettings(_Settings):
    """How each readout token is attributed to the source positions of the layer it reads."""

    method: str = field(default="grad", metadata=described(
        "grad (gradient x input, one backward pass per batch of rows), ig (integrated gradients) or occlusion "
        "(the drop when a window of positions is replaced by the baseline; slow).", str, "grad|ig|occlusion"))
    steps: int = field(default=16, metadata=described("Integrated gradients: points on the path from the baseline."))
    baseline: str = field(default="zero", metadata=described(
        "The state ig starts from and occlusion puts in: zero, or mean (the input's mean state at that layer).",
        str, "zero|mean"))
    occlusion_window: int | None = field(default=None, metadata=described(
        "Occlusion: positions replaced together (default: 1 for up to 100 positions, else enough for 100 "
        "windows; 15 frames = 0.3 s on Whisper)."))

    def validate(self) -> AttributionSettings:
        """Raise ``InputError`` naming the setting and its option for any value that cannot work."""
        check_choice("method", self.method, ATTRIBUTION_METHODS)
        check_count("steps", self.steps)
        check_choice("baseline", self.baseline, BASELINES)
        check_count("occlusion_window", self.occlusion_window, optional=True)
        return self


GENERATION_DEFAULTS = GenerationSettings()
RUNTIME_DEFAULTS = RuntimeSettings()
LOAD_DEFAULTS = LoadSettings()


def help_text(item: Any) -> str:
    """The help text of a settings field, with its default (command-line help is written once, here)."""
    default = item.default
    shown = "" if default is None or isinstance(default, bool) else f" [default: {default}]"
    return str(item.metadata.get("help", "")) + shown


def settings_fields(cls: type) -> set[str]:
    """The field names of a settings dataclass."""
    return {f.name for f in fields(cls)}


def compose(generation: GenerationSettings | None, runtime: RuntimeSettings | None,
            overrides: dict[str, Any]) -> tuple[GenerationSettings, RuntimeSettings]:
    """The settings of one call: ``generation`` and ``runtime`` (defaults where absent) with keyword ``overrides``
    applied to whichever holds each name, checked. Load-time names (device, translators, ...) and unknown names
    are refused with the known ones."""
    generation_names, runtime_names = settings_fields(GenerationSettings), settings_fields(RuntimeSettings)
    unknown = set(overrides) - generation_names - runtime_names
    if unknown:
        name = sorted(unknown)[0]
        if name in settings_fields(LoadSettings):
            raise InputError(f"{name!r} is chosen when the model is loaded (DecoderLens.from_pretrained), not per call")
        raise InputError(f"unknown setting {name!r}: known settings are "
                         f"{', '.join(sorted(generation_names | runtime_names))}")
    chosen = {k: v for k, v in overrides.items() if k in generation_names}
    return ((generation or GenerationSettings()).update(**chosen),
            (runtime or RuntimeSettings()).update(**{k: v for k, v in overrides.items() if k in runtime_names}))
