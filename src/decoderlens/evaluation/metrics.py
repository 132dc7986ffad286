"""Task metrics as per-example sufficient statistics, so that corpus scores can be bootstrapped cheaply.

A metric maps (predictions, references) to an array of per-example statistics; summing rows and applying
``score`` gives the corpus value. Mean metrics use ``[value, 1]``; BLEU and chrF use sacrebleu's own
n-gram statistics; WER/CER use error and reference-length counts from jiwer.
"""

from __future__ import annotations

import importlib
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from decoderlens.errors import InputError

StatsFn = Callable[[Sequence[str], Sequence[str], Sequence[str]], np.ndarray]
"""(predictions, references, inputs) -> per-example statistics."""
ScoreFn = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    """A named metric: per-example statistics plus the function that scores their sum."""

    name: str
    stats: StatsFn
    score: ScoreFn
    higher_is_better: bool = True
    signature: str = ""
    """The exact configuration (sacrebleu signature, normalisation), for reproducibility."""
    description: str = ""
    """What the metric measures, in words (report captions)."""
    bounds: tuple[float, float] | None = None
    """The range of values (``(0, 1)`` for rates), for plot axes; ``None`` when unbounded."""
    check_input: Callable[[str], str | None] | None = None
    """Why an input cannot be scored by this metric (``None`` when it can); such rows are skipped up front."""
    constants: Callable[[Sequence[str]], Sequence[str]] | None = None
    """Constant answers worth trying for the best-constant baseline beyond the empty answer and the most common
    references (the logic task: every partial assignment)."""
    uses_reference: bool = True
    """``False`` for diagnostics of the output alone (repetition, empty), which have no chance level."""

    def __call__(self, predictions: Sequence[str], references: Sequence[str],
                 inputs: Sequence[str] | None = None) -> float:
        """The corpus-level value."""
        return self.score(self.stats(predictions, references, inputs or [""] * len(predictions)).sum(axis=0))


T = TypeVar("T")
PLUGINS = ("decoderlens.logic.metrics",)
"""Modules above this layer that register metrics and presets of their own; imported by name the first time a
lookup misses, so that the evaluation layer never imports them (as a package's entry points would)."""
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for module in PLUGINS:
            importlib.import_module(module)


class Registry(Generic[T]):
    """Named entries that plug-ins add to; a lookup that misses loads the plug-ins once, then names the choices."""

    def __init__(self, kind: str, entries: dict[str, T] | None = None, option: str = "") -> None:
        self.kind, self.entries, self.option = kind, dict(entries or {}), option

    def add(self, name: str, entry: T) -> None:
        self.entries[name] = entry

    def names(self) -> list[str]:
        _load_plugins()
        return sorted(self.entries)

    def get(self, name: str) -> T:
        if name not in self.entries:
            _load_plugins()
        if name not in self.entries:
            where = f" ({self.option})" if self.option else ""
            raise InputError(f"unknown {self.kind} {name!r}{where}: choose from {', '.join(self.names())}")
        return self.entries[name]


_REGISTRY: Registry[Callable[[], Metric]] = Registry("metric")


def register_metric(name: str) -> Callable[[Callable[[], Metric]], Callable[[], Metric]]:
    """Decorator: register a metric factory under ``name`` (``get_metric`` builds it on demand)."""

    def wrap(factory: Callable[[], Metric]) -> Callable[[], Metric]:
        _REGISTRY.add(name, factory)
        return factory

    return wrap


def list_metrics() -> list[str]:
    """Names of all registered metrics."""
    return _REGISTRY.names()


def get_metric(name: str) -> Metric:
    """Build the registered metric ``name``; unknown names list the choices."""
    return _REGISTRY.get(name)()


def mean_metric(name: str, per_example: Callable[..., float], description: str = "", signature: str = "",
                uses_input: bool = False, bounds: tuple[float, float] | None = (0.0, 1.0),
                check_input: Callable[[str], str | None] | None = None,
                constants: Callable[[Sequence[str]], Sequence[str]] | None = None) -> Metric:
    """A metric that is the mean of a per-example value ``f(prediction, reference[, input])`` (by default a
    rate in [0, 1]; pass ``bounds=None`` for other values)."""

    def stats(predictions: Sequence[str], references: Sequence[str], inputs: Sequence[str]) -> np.ndarray:
        triples = zip(predictions, references, inputs, strict=True)
        values = [float(per_example(p, r, i) if uses_input else per_example(p, r)) for p, r, i in triples]
        return np.array([[v, 1.0] for v in values], dtype=np.float64).reshape(-1, 2)

    return Metric(name, stats, lambda s: float(s[0] / s[1]) if s[1] else float("nan"),
                  description=description, signature=signature, bounds=bounds, check_input=check_input,
                  constants=constants)


# --- normalisation ------------------------------------------------------------------------------

def normalize_squad(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def normalize_transcript(text: str) -> str:
    """Whisper's basic text normaliser (lower case, symbols and bracketed text removed)."""
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return str(BasicTextNormalizer()(text))


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "none": lambda t: t.strip(),
    "lower": lambda t: " ".join(t.lower().split()),
    "squad": normalize_squad,
    "whisper": normalize_transcript,
}


def get_normalizer(name: str) -> Callable[[str], str]:
    """The text normaliser ``name`` (none, lower, squad, whisper)."""
    if name not in NORMALIZERS:
        raise InputError(f"unknown normalisation {name!r}: choose from {', '.join(NORMALIZERS)}")
    return NORMALIZERS[name]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between normalised strings."""
    pred, ref = normalize_squad(prediction).split(), normalize_squad(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@register_metric("exact_match")
def _exact_match() -> Metric:
    norm = NORMALIZERS["squad"]
    return mean_metric("exact_match", lambda p, r: norm(p) == norm(r),
                       "share of outputs equal to the reference after SQuAD normalisation",
                       signature="norm:squad")


@register_metric("accuracy")
def _accuracy() -> Metric:
    return mean_metric("accuracy", lambda p, r: p.strip() == r.strip(), "share of outputs equal to the reference",
                       signature="norm:strip")


@register_metric("token_f1")
def _token_f1() -> Metric:
    return mean_metric("token_f1", token_f1, "word overlap with the reference (SQuAD token F1)", signature="norm:squad")


def _sacrebleu_metric(name: str, scorer_cls: type, description: str) -> Metric:
    """A sacrebleu corpus metric from per-sentence n-gram statistics (sacrebleu's own, so that bootstrap
    resamples score exactly as sacrebleu would; ``pyproject.toml`` pins the 2.x series whose statistics API
    this relies on, and a test checks the result against ``corpus_score``)."""
    scorer = scorer_cls()
    scorer.corpus_score(["x"], [["x"]])  # sacrebleu fills in its signature (number of references) on first use

    def stats(predictions: Sequence[str], references: Sequence[str], inputs: Sequence[str]) -> np.ndarray:
        rows = scorer._extract_corpus_statistics(list(predictions), [list(references)])
        return np.asarray(rows, dtype=np.float64).reshape(len(predictions), -1)

    def score(total: np.ndarray) -> float:
        return float(scorer._compute_score_from_stats(total.tolist()).score)

    return Metric(name, stats, score, signature=str(scorer.get_signature()), description=description,
                  bounds=(0.0, 100.0))


@register_metric("bleu")
def _bleu() -> Metric:
    from sacrebleu.metrics import BLEU

    return _sacrebleu_metric("bleu", BLEU, "BLEU: n-gram overlap with the reference (sacrebleu, corpus level)")


@register_metric("chrf")
def _chrf() -> Metric:
    from sacrebleu.metrics import CHRF

    return _sacrebleu_metric("chrf", CHRF, "chrF: character n-gram F-score against the reference (sacrebleu)")


def _error_rate(name: str, characters: bool) -> Metric:
    import jiwer

    def stats(predictions: Sequence[str], references: Sequence[str], inputs: Sequence[str]) -> np.ndarray:
        rows = []
        for pred, ref in zip(predictions, references, strict=True):
            if not ref.strip():  # nothing to recognise: every hypothesis unit is an insertion
                rows.append([float(len(pred) if characters else len(pred.split())), 0.0])
                continue
            out: Any = jiwer.process_characters(ref, pred) if characters else jiwer.process_words(ref, pred)
            errors = out.substitutions + out.deletions + out.insertions
            rows.append([float(errors), float(out.substitutions + out.deletions + out.hits)])
        return np.array(rows, dtype=np.float64).reshape(-1, 2)

    return Metric(name, stats, lambda s: float(s[0] / s[1]) if s[1] else float("nan"), higher_is_better=False,
                  signature=f"jiwer:{jiwer.__name__}",
                  description=f"{'character' if characters else 'word'} error rate against the reference (lower is "
                              "better)")


@register_metric("wer")
def _wer() -> Metric:
    return _error_rate("wer", characters=False)


@register_metric("cer")
def _cer() -> Metric:
    return _error_rate("cer", characters=True)


def repeats(text: str) -> bool:
    """Whether ``text`` is caught in a loop: one word four times running, or a run of 2-4 words three times
    running (``T B B B B``, ``and then and then and then``), the known failure of low layers."""
    words = text.split()
    for size in range(1, 5):
        times = 4 if size == 1 else 3
        for start in range(len(words) - size * times + 1):
            gram = words[start: start + size]
            if all(words[start + k * size: start + (k + 1) * size] == gram for k in range(1, times)):
                return True
    return False


def _diagnostic(name: str, per_example: Callable[[str, str], float], description: str) -> Metric:
    metric = mean_metric(name, per_example, description, signature="words")
    return Metric(metric.name, metric.stats, metric.score, higher_is_better=False, signature=metric.signature,
                  description=metric.description, bounds=metric.bounds, uses_reference=False)


@register_metric("repetition")
def _repetition() -> Metric:
    return _diagnostic("repetition", lambda p, r: repeats(p),
                       "share of readouts caught in a loop (a word 4 times or a run of 2-4 words 3 times running)")


@register_metric("empty")
def _empty() -> Metric:
    return _diagnostic("empty", lambda p, r: not p.strip(), "share of empty readouts")


DIAGNOSTICS = ("repetition", "empty")
"""Metrics of how a readout fails rather than how right it is, added to every evaluation of a speech model."""


@dataclass(frozen=True)
class Preset:
    """The metrics and normalisation a kind of task is evaluated with."""

    metrics: tuple[str, ...]
    normalize: str = "none"


PRESETS: Registry[Preset] = Registry("preset", option="--preset", entries={
    "qa": Preset(("exact_match", "token_f1")),
    "mt": Preset(("bleu", "chrf")),
    "asr": Preset(("wer", "cer", *DIAGNOSTICS), "whisper"),
    "generic": Preset(("accuracy", "chrf")),
})
"""Evaluation presets (``--preset``): question answering, translation, speech recognition, generic (plug-ins add
theirs with ``register_preset``, the logic task among them)."""


def register_preset(name: str, preset: Preset) -> None:
    """Make ``preset`` available as ``--preset name``."""
    PRESETS.add(name, preset)


def list_presets() -> list[str]:
    """Names of all presets."""
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    """The preset ``name``; unknown names list the choices."""
    return PRESETS.get(name)
