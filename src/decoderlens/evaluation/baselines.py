"""The chance level of a metric on a data set: the best constant answer (one output given for every example), the
first thing a reader needs to judge a layer's score."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from decoderlens.evaluation.metrics import Metric

COMMON_REFERENCES = 8
"""The most common references tried as constant answers (with the empty answer and the metric's own)."""


@dataclass(frozen=True)
class Baseline:
    """A metric's chance level on a data set: its value and the answer that reaches it."""

    value: float
    answer: str

    @property
    def label(self) -> str:
        """In words, for legends and captions."""
        return f"best constant answer {self.answer.strip()!r}" if self.answer.strip() else "the empty answer"


def best_constant(metric: Metric, references: Sequence[str], inputs: Sequence[str]) -> Baseline | None:
    """The best score ``metric`` gives one answer repeated for every example: the empty answer, the most common
    (normalised) references and the metric's own candidates are tried. ``None`` when no candidate scores, and for
    diagnostics of the output alone."""
    if not metric.uses_reference:
        return None
    candidates = ["", *(text for text, _ in Counter(references).most_common(COMMON_REFERENCES))]
    if metric.constants is not None:
        candidates += list(metric.constants(references))
    best: Baseline | None = None
    for answer in dict.fromkeys(candidates):
        value = metric.score(metric.stats([answer] * len(references), references, inputs).sum(axis=0))
        if math.isnan(value):
            continue
        better = best is None or (value > best.value if metric.higher_is_better else value < best.value)
        if better:
            best = Baseline(value, answer)
    return best
