"""How work is cut into pieces: encoder batches of similar-length inputs, and decoding calls of bounded rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def input_length(item: Any) -> int:
    """A cheap measure of an input's length, for grouping similar inputs (0 where it cannot tell)."""
    if isinstance(item, str):
        return len(item)
    if isinstance(item, tuple) and item and isinstance(item[0], np.ndarray):
        return int(item[0].size)
    if isinstance(item, np.ndarray):
        return int(item.size)
    return 0  # files and images: unknown until read


def plan_batches(items: Sequence[Any], batch_size: int | None, rows_per_example: int, max_rows: int,
                 group_by_length: bool = True) -> list[list[int]]:
    """Input indices of each encoder batch, shortest inputs first (less padding).

    ``batch_size=None`` takes as many inputs per batch as ``max_rows`` stacked rows allow (``rows_per_example``
    each), in batches of nearly equal size.
    """
    order = list(range(len(items)))
    if group_by_length:
        order.sort(key=lambda index: input_length(items[index]))
    if batch_size is None:
        most = max(1, max_rows // max(1, rows_per_example))
        count = max(1, math.ceil(len(order) / most))
        bounds = [round(i * len(order) / count) for i in range(count + 1)]
        return [order[bounds[i]: bounds[i + 1]] for i in range(count)]
    return [order[start: start + batch_size] for start in range(0, len(order), batch_size)]


def row_slices(rows: int, max_rows: int) -> list[slice]:
    """Consecutive slices of at most ``max_rows`` rows (one layer of a large batch may need several)."""
    return [slice(start, min(rows, start + max_rows)) for start in range(0, rows, max(1, max_rows))]
