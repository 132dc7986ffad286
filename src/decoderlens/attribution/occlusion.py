"""Occlusion: replace a window of positions of the layer's states by the baseline and measure how much each
reported token's log-probability drops (the slow reference: one decoder pass per window)."""

from __future__ import annotations

import math

import torch
from transformers import PreTrainedModel

from decoderlens.attribution.gradients import logprobs_at
from decoderlens.attribution.registry import MethodScores, register
from decoderlens.attribution.rows import AttributionRows, label_logprobs
from decoderlens.settings import AttributionSettings

MAX_WINDOWS = 100
"""Without ``occlusion_window``, positions are grouped so that a row has at most this many windows."""


def window_size(length: int, window: int | None) -> int:
    """Positions per window: the setting, else 1 up to ``MAX_WINDOWS`` positions and enough for that many after."""
    return window if window is not None else max(1, math.ceil(length / MAX_WINDOWS))


@register("occlusion")
@torch.no_grad()
def occlusion(model: PreTrainedModel, rows: AttributionRows, settings: AttributionSettings,
              max_rows: int) -> MethodScores:
    """Every position's score is the drop in each token's log-probability when its window is occluded."""
    length = rows.states.shape[1]
    size = window_size(length, settings.occlusion_window)
    baseline = rows.baseline(settings.baseline)
    present = rows.positions()
    clean = logprobs_at(model, rows, rows.states, max_rows)
    work = [(r, start) for r in range(len(rows)) for start in range(0, length, size)
            if present[r, start: start + size].any()]
    scores = torch.zeros(*rows.labels.shape, length, device=rows.states.device)
    for part in rows.passes(len(work), max_rows):
        chunk = work[part]
        index = torch.tensor([r for r, _ in chunk], device=rows.states.device)
        states = rows.states.index_select(0, index).clone()
        for k, (r, start) in enumerate(chunk):
            states[k, start: start + size] = baseline[r, start: start + size]
        drops = clean.index_select(0, index) - label_logprobs(model, rows, index, states)
        for k, (r, start) in enumerate(chunk):
            scores[r, :, start: start + size] = drops[k][:, None]
    return MethodScores(scores * rows.wanted[..., None] * present[:, None, :])
