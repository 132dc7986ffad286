"""Percentile bootstrap confidence intervals over examples, from per-example statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A corpus-level value with its bootstrap confidence interval."""

    value: float
    low: float
    high: float
    n: int


def bootstrap(stats: np.ndarray, score: Callable[[np.ndarray], float], resamples: int = 1000,
              confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Resample examples with replacement; each resample's score comes from its summed statistics."""
    n = stats.shape[0]
    value = score(stats.sum(axis=0))
    if n < 2 or resamples < 1:
        return Estimate(value, value, value, n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)  # (resamples, n) weights
    totals = counts @ stats
    values = np.array([score(total) for total in totals])
    values = values[~np.isnan(values)]
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(values, [alpha, 1 - alpha]) if values.size else (value, value))
    return Estimate(value, float(low), float(high), n)


def paired_bootstrap(stats_a: np.ndarray, stats_b: np.ndarray, score: Callable[[np.ndarray], float],
                     resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """The difference ``score(B) - score(A)`` over the same examples (rows aligned), with a paired percentile
    interval: every resample draws the same examples for both runs."""
    n = stats_a.shape[0]
    value = score(stats_b.sum(axis=0)) - score(stats_a.sum(axis=0))
    if n < 2 or resamples < 1:
        return Estimate(value, value, value, n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    values = np.array([score(b) - score(a) for a, b in zip(counts @ stats_a, counts @ stats_b, strict=True)])
    values = values[~np.isnan(values)]
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(values, [alpha, 1 - alpha]) if values.size else (value, value))
    return Estimate(value, float(low), float(high), n)
