"""Per-row limits on new tokens, some of which arrive while decoding runs (the top-length cap)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LengthCap:
    """A readout below the top layer may write at most ``ceil(factor * n) + margin`` new tokens, where ``n`` is
    the length of the same example's top-layer output."""

    factor: float
    margin: int

    def limit(self, top_length: int) -> int:
        """The limit that a top-layer output of ``top_length`` tokens sets."""
        return math.ceil(self.factor * top_length) + self.margin


class RowLimits:
    """New-token limits of stacked rows; the limit of a row with an anchor arrives when its anchor row ends.

    Greedy decoding makes a row's first ``k`` tokens independent of how long it may run, so a row cut at its
    limit (also after it has run past it) is a prefix of what it would write uncut.
    """

    def __init__(self, limits: list[int], anchors: list[int | None] | None = None,
                 cap: LengthCap | None = None, on_finish: Callable[[int], None] | None = None) -> None:
        self.limits = list(limits)
        self.cap = cap
        self.on_finish = on_finish
        """Told each row once when it stops running (progress within a batch)."""
        self._finished: set[int] = set()
        self._dependents: dict[int, list[int]] = {}
        for row, anchor in enumerate(anchors or []):
            if anchor is not None:
                self._dependents.setdefault(anchor, []).append(row)

    @classmethod
    def uniform(cls, rows: int, limit: int) -> RowLimits:
        """The same fixed limit for every row."""
        return cls([limit] * rows)

    def ended(self, row: int, length: int) -> list[int]:
        """Row ``row`` ended after ``length`` new tokens; returns the rows whose limits this set."""
        dependents = self._dependents.pop(row, [])
        if self.cap is not None:
            for dependent in dependents:
                self.limits[dependent] = min(self.limits[dependent], self.cap.limit(length))
        return dependents

    def finished(self, rows: Iterable[int]) -> None:
        """Rows ``rows`` stopped running (for whatever reason); ``on_finish`` hears of each once."""
        if self.on_finish is None:
            return
        for row in rows:
            if row not in self._finished:
                self._finished.add(row)
                self.on_finish(row)

    def cut(self, sequence: list[int], row: int, keep: int) -> list[int]:
        """``sequence`` (``keep`` prompt tokens, then new ones) cut at the row's limit."""
        return sequence[: keep + self.limits[row]]
