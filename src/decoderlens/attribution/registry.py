"""Attribution methods by name: each is a small module that registers a function from rows to scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from decoderlens.attribution.rows import AttributionRows
from decoderlens.settings import AttributionSettings


@dataclass
class MethodScores:
    """A method's answer: (rows, label positions, time) scores, zero where nothing is reported, and for methods
    that have one, the completeness gap per (row, label position)."""

    scores: torch.Tensor
    completeness_gap: torch.Tensor | None = None


Method = Callable[[PreTrainedModel, AttributionRows, AttributionSettings, int], MethodScores]
"""``method(model, rows, settings, max_rows)``: scores of every reported token of every row, in calls of at
most ``max_rows`` stacked rows."""

METHODS: dict[str, Method] = {}
GRADIENT_METHODS: set[str] = set()
"""Methods that run backward passes (they keep activations: fewer rows per call)."""


def register(name: str, gradients: bool = False) -> Callable[[Method], Method]:
    """Register ``method`` under ``name``."""
    def add(method: Method) -> Method:
        METHODS[name] = method
        if gradients:
            GRADIENT_METHODS.add(name)
        return method
    return add
