"""Where a training run's time goes: seconds per phase, the encoder's counted on their own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from decoderlens.tuned.cache import CacheStats

T = TypeVar("T")
PHASES = ("targets", "lstsq", "steps", "forward", "backward", "validation")


class PhaseClock:
    """Seconds per phase of a run, less the encoder's (which ``stats`` counts as examples are encoded)."""

    def __init__(self, stats: CacheStats) -> None:
        self.stats = stats
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def timed(self, phase: str, work: Callable[[], T]) -> T:
        """``work()``, its seconds added to ``phase``."""
        started, encoding = time.monotonic(), self.stats.encoding_seconds
        try:
            return work()
        finally:
            self.seconds[phase] += time.monotonic() - started - (self.stats.encoding_seconds - encoding)

    def report(self, steps: int) -> dict[str, float]:
        """Where the time went, in seconds: the encoder, and besides it the targets, the least-squares sums, the
        steps (forward with the teacher, backward), the validation; and what the state cache did."""
        timing = {name: round(value, 3) for name, value in self.seconds.items()}
        timing["encoder"] = round(self.stats.encoding_seconds, 3)
        timing["seconds_per_step"] = round(self.seconds["steps"] / steps, 3) if steps else 0.0
        timing.update({f"states_{name}": value for name, value in self.stats.as_dict().items()
                       if name != "encoding_seconds"})
        return timing
