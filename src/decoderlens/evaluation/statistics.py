"""Per-example statistics of every metric at every layer, from readout records: what summaries bootstrap and
comparisons resample in pairs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from decoderlens.evaluation.folder import ReadoutRecord
from decoderlens.evaluation.metrics import Metric, get_normalizer, mean_metric

AGREEMENT = "agreement_with_top"
LOGPROB = "logprob"


@dataclass
class LayerStatistics:
    """One layer: example ids (sorted) and, per metric, their per-example statistics in that order."""

    layer: int
    ids: list[str]
    stats: dict[str, np.ndarray]


def agreement_metric(top: dict[str, str]) -> Metric:
    """Does an example's output at a layer equal its (normalised) output at the top layer."""
    return mean_metric(AGREEMENT, lambda p, r, i: p == top.get(i), uses_input=True,
                       description="share of outputs equal to the top layer's output")


def logprob_metric() -> Metric:
    """The mean teacher-forced log-probability of the reference (from records scored with ``--score``)."""
    return mean_metric(LOGPROB, lambda p, r: 0.0, "mean teacher-forced log-probability of the reference",
                       bounds=None)


def layer_statistics(records: list[ReadoutRecord], metrics: list[Metric], normalize_name: str, num_layers: int,
                     scored: bool) -> tuple[list[Metric], list[LayerStatistics]]:
    """Every metric's per-example statistics at every layer, plus agreement with the top layer (when the top
    layer was read) and the reference's log-probability (when ``scored``); returns the metrics measured too."""
    normalize = get_normalizer(normalize_name)
    by_layer: dict[int, list[ReadoutRecord]] = defaultdict(list)
    for record in records:
        by_layer[record.layer].append(record)
    top = {r.id: normalize(r.output) for r in by_layer.get(num_layers, [])}
    extra = ([agreement_metric(top)] if top else []) + ([logprob_metric()] if scored else [])
    result = []
    for layer in sorted(by_layer):
        rows = sorted(by_layer[layer], key=lambda r: r.id)
        preds = [normalize(r.output) for r in rows]
        refs = [normalize(r.reference or "") for r in rows]
        stats = {m.name: m.stats(preds, refs, [r.input for r in rows]) for m in metrics}
        if top:
            stats[AGREEMENT] = extra[0].stats(preds, refs, [r.id for r in rows])
        if scored:
            stats[LOGPROB] = np.array([[r.logprob or 0.0, 1.0] for r in rows], dtype=np.float64).reshape(-1, 2)
        result.append(LayerStatistics(layer, [r.id for r in rows], stats))
    return [*metrics, *extra], result
