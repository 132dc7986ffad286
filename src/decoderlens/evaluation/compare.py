"""Two evaluation folders side by side: per layer and metric, the paired difference B - A with a bootstrap
interval over the shared examples, where each run first closes a share of the gap from chance to its top-layer
score, and the examples on which the runs disagree most."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decoderlens.errors import InputError
from decoderlens.evaluation.bootstrap import paired_bootstrap
from decoderlens.evaluation.folder import EvalFolder, ReadoutRecord, Summary
from decoderlens.evaluation.metrics import Metric, get_metric
from decoderlens.evaluation.nonspeech import HALLUCINATION
from decoderlens.evaluation.spoken_language import LANGUAGE
from decoderlens.evaluation.statistics import AGREEMENT, LOGPROB, LayerStatistics, layer_statistics
from decoderlens.results import Presentable

SHARES = (0.5, 0.9)
"""Shares of the gap between chance and the top-layer score whose first layer is reported."""


@dataclass
class MetricDiff:
    """One metric at one layer in both runs, and the paired difference B - A with its interval."""

    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float


@dataclass
class LayerComparison:
    layer: int
    metrics: dict[str, MetricDiff]


@dataclass
class Disagreement:
    """An example whose outputs differ most between the runs (``rows``: layer, output in A, output in B)."""

    id: str
    input: str
    reference: str | None
    layers_differing: int
    rows: list[tuple[int, str, str]]


@dataclass
class Comparison(Presentable):
    """The result of ``compare``; ``compare.json`` holds it as it is."""

    a: str
    b: str
    examples: int
    """Examples in both runs (the comparison is over these)."""
    layers: list[LayerComparison]
    first_layer_reaching: dict[str, dict[str, dict[str, int | None]]] = field(default_factory=dict)
    """Run (``a``/``b``) -> metric -> share of the gap from chance to the top-layer score (``50%``, ``90%``) ->
    the first layer that closes it."""
    disagreements: list[Disagreement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    confidence: float = 0.95
    baselines: dict[str, float] = field(default_factory=dict)
    """Each metric's chance level on the data (run A's best constant answer); 0 where a metric has none."""

    def to_records(self) -> list[dict[str, Any]]:
        """One row per layer and metric: the difference B - A with its interval."""
        return [{"layer": layer.layer, "metric": name, **vars(diff)}
                for layer in self.layers for name, diff in layer.metrics.items()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Run:
    name: str
    summary: Summary
    records: list[ReadoutRecord]


def _load(folder: Path) -> _Run:
    store = EvalFolder(folder)
    records = store.require_records()
    summary = store.summary()
    if summary is None:
        raise InputError(f"{folder} has no summary.json: finish its run first (`decoderlens eval ... --out {folder}`)")
    return _Run(str(folder), summary, [r for r in records if r.lens is None])  # with --lens both: the tuned lens


def _metrics(run: _Run, warnings: list[str]) -> list[Metric]:
    chosen = []
    for name in run.summary.metrics:
        if name in (AGREEMENT, LOGPROB, HALLUCINATION, LANGUAGE):  # not from the task's own metric on readouts
            continue
        try:
            chosen.append(get_metric(name))
        except InputError:
            warnings.append(f"metric {name!r} of {run.name} is not registered here, so it is not compared")
    return chosen


def first_layer_reaching(values: dict[int, float], share: float, higher_is_better: bool,
                         baseline: float | None = None) -> int | None:
    """The first layer that closes ``share`` of the gap from ``baseline`` (chance; 0 when not given) to the top
    layer's value. Without a baseline, lower-is-better metrics need at most the top value divided by ``share``."""
    top = values[max(values)]
    for layer in sorted(values):
        value = values[layer]
        if math.isnan(value) or math.isnan(top):
            continue
        if higher_is_better:
            reached = value >= (baseline or 0.0) + share * (top - (baseline or 0.0))
        elif baseline is not None:
            reached = value <= baseline - share * (baseline - top)
        else:
            reached = value <= top / share
        if reached:
            return layer
    return None


def compare(folder_a: Path, folder_b: Path, resamples: int = 1000, seed: int = 0,
            max_disagreements: int = 20) -> Comparison:
    """Compare two evaluation folders over the examples they share (refused when they share none)."""
    warnings: list[str] = []
    run_a, run_b = _load(folder_a), _load(folder_b)
    ids_a, ids_b = {r.id for r in run_a.records}, {r.id for r in run_b.records}
    shared = ids_a & ids_b
    if not shared:
        raise InputError(f"{folder_a} and {folder_b} have no example in common (by id): compare runs over the same "
                         "data")
    examples_a = {r.id: (r.input, r.reference) for r in run_a.records}
    examples_b = {r.id: (r.input, r.reference) for r in run_b.records}
    differ = sorted(i for i in shared if examples_a[i] != examples_b[i])
    if differ:
        first = differ[0]
        raise InputError(f"{folder_a} and {folder_b} hold different examples under the same ids ({len(differ)} of "
                         f"{len(shared)}; e.g. {first!r}: input {examples_a[first][0]!r} against "
                         f"{examples_b[first][0]!r}): compare runs over the same data (ids from an id field, not row "
                         "numbers of different files)")
    if shared != ids_a or shared != ids_b:
        warnings.append(f"the runs share {len(shared)} of their {len(ids_a)} and {len(ids_b)} examples; compared on "
                        "those")
    names_b = {m.name for m in _metrics(run_b, warnings)}
    metrics = [m for m in _metrics(run_a, warnings) if m.name in names_b]
    measured_a, layers_a = _statistics(run_a, shared, metrics)
    measured_b, layers_b = _statistics(run_b, shared, metrics)
    common = [name for name in measured_a if name in measured_b]
    layers = []
    for layer in sorted(set(layers_a) & set(layers_b)):
        entry_a, entry_b = layers_a[layer], layers_b[layer]
        diffs = {}
        for name in common:
            a, b = _aligned(entry_a, entry_b, name)
            metric = measured_a[name]
            estimate = paired_bootstrap(a, b, metric.score, resamples, seed=seed)
            diffs[name] = MetricDiff(metric.score(a.sum(axis=0)), metric.score(b.sum(axis=0)), estimate.value,
                                     estimate.low, estimate.high)
        layers.append(LayerComparison(layer, diffs))
    chance = {name: info.baseline for name, info in run_a.summary.metrics.items()
              if name in common and info.baseline is not None}
    reaching = {}
    for key, measured in (("a", measured_a), ("b", measured_b)):
        reaching[key] = {name: {f"{share:.0%}": first_layer_reaching(
            {lc.layer: getattr(lc.metrics[name], key) for lc in layers}, share, measured[name].higher_is_better,
            chance.get(name)) for share in SHARES} for name in common if layers}
    return Comparison(run_a.name, run_b.name, len(shared), layers, reaching,
                      _disagreements(run_a, run_b, shared, max_disagreements), warnings, baselines=chance)


def _statistics(run: _Run, shared: set[str], metrics: list[Metric]) -> tuple[dict[str, Metric],
                                                                              dict[int, LayerStatistics]]:
    records = [r for r in run.records if r.id in shared]
    scored = any(r.logprob is not None for r in records)
    measured, per_layer = layer_statistics(records, metrics, run.summary.normalize, run.summary.num_encoder_layers,
                                           scored)
    return {m.name: m for m in measured}, {entry.layer: entry for entry in per_layer}


def _aligned(entry_a: LayerStatistics, entry_b: LayerStatistics, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both runs' statistics of ``name`` over the ids both have at this layer, in the same order."""
    position_b = {key: i for i, key in enumerate(entry_b.ids)}
    rows = [(i, position_b[key]) for i, key in enumerate(entry_a.ids) if key in position_b]
    index_a, index_b = [r[0] for r in rows], [r[1] for r in rows]
    return entry_a.stats[name][index_a], entry_b.stats[name][index_b]


def _disagreements(run_a: _Run, run_b: _Run, shared: set[str], most: int) -> list[Disagreement]:
    outputs_b = {(r.id, r.layer): r.output for r in run_b.records}
    by_id: dict[str, list[tuple[int, str, str]]] = {}
    firsts: dict[str, ReadoutRecord] = {}
    for record in run_a.records:
        if record.id in shared and (record.id, record.layer) in outputs_b:
            by_id.setdefault(record.id, []).append((record.layer, record.output, outputs_b[(record.id, record.layer)]))
            firsts.setdefault(record.id, record)
    ranked = sorted(by_id.items(), key=lambda kv: -sum(a.strip() != b.strip() for _, a, b in kv[1]))
    result = []
    for key, rows in ranked[:most]:
        differing = sum(a.strip() != b.strip() for _, a, b in rows)
        if differing:
            result.append(Disagreement(key, firsts[key].input, firsts[key].reference, differing, sorted(rows)))
    return result
