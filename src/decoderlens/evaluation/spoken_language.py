"""Language identification per layer, for multilingual speech models on data that names each example's language:
the share of examples whose detected language is the true one (with its chance level, the most common language),
and what each layer takes each language for."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from decoderlens.evaluation.bootstrap import Estimate, bootstrap
from decoderlens.evaluation.folder import AnalysisTable, MetricInfo, ReadoutRecord, Summary

LANGUAGE = "language"
CONFUSIONS_SHOWN = 3
"""Detected languages listed per (layer, true language)."""


def judged(records: list[ReadoutRecord]) -> list[ReadoutRecord]:
    """The records of the main lens with both a true and a detected language."""
    return [r for r in records if r.lens is None and r.language and r.detected_language]


def add_language_metric(summary: Summary, records: list[ReadoutRecord], resamples: int) -> None:
    """Per layer, the share of examples whose detected language is the true one, added to ``summary`` as the
    metric ``language``; its chance level is always answering the most common true language."""
    rows = judged(records)
    if not rows:
        return
    by_layer: dict[int, list[float]] = defaultdict(list)
    for record in sorted(rows, key=lambda r: r.id):
        by_layer[record.layer].append(float(record.detected_language == record.language))
    truth = Counter(r.language for r in rows if r.layer == max(by_layer))
    common, count = truth.most_common(1)[0]
    summary.metrics[LANGUAGE] = MetricInfo(
        "share of examples whose language, as the layer detects it, is the true one", "language-token",
        True, [0.0, 1.0], count / sum(truth.values()), f"always {common!r}")
    estimates: dict[int, Estimate] = {
        layer: bootstrap(np.array([[v, 1.0] for v in values]), lambda s: float(s[0] / s[1]), resamples)
        for layer, values in by_layer.items()}
    for entry in summary.layers:
        if entry.layer in estimates:
            entry.metrics[LANGUAGE] = estimates[entry.layer]


def confusion_table(records: list[ReadoutRecord]) -> AnalysisTable | None:
    """Per layer and true language: how often it is detected right, and the languages taken for it most."""
    rows = judged(records)
    if not rows:
        return None
    cells: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    for record in rows:
        cells[(record.layer, str(record.language))][str(record.detected_language)] += 1
    table = []
    for (layer, truth), detected in sorted(cells.items()):
        total = sum(detected.values())
        others = [f"{lang} {n}" for lang, n in detected.most_common() if lang != truth][:CONFUSIONS_SHOWN]
        table.append([str(layer), truth, str(total), f"{detected[truth] / total:.0%}", ", ".join(others) or "-"])
    return AnalysisTable("Language detected per layer", ["layer", "true language", "examples", "detected right",
                                                         "taken for (count)"], table,
                         "What the decoder names first (its language token) when it reads each layer, against each "
                         "example's language in the data.")
