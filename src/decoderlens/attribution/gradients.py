"""Gradient x input and integrated gradients: both average gradients along a straight path from a baseline
state to the layer's states, and score each position by (states - baseline) . mean gradient. Gradient x input
is the path of one point at the states themselves from a zero baseline."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from decoderlens.attribution.registry import MethodScores, register
from decoderlens.attribution.rows import AttributionRows, label_logprobs
from decoderlens.scheduling import row_slices
from decoderlens.settings import AttributionSettings


def path_scores(model: PreTrainedModel, rows: AttributionRows, baseline: torch.Tensor, alphas: list[float],
                max_rows: int) -> torch.Tensor:
    """(rows, label positions, time): for every reported token, (states - baseline) . the mean over ``alphas``
    of the gradient of its log-probability at ``baseline + alpha (states - baseline)``.

    Work rows are (reported token, alpha) pairs: each holds its own copy of the row's states, so one backward
    pass through a call of ``max_rows`` of them gives every token its own gradient."""
    pairs = rows.wanted_pairs()
    work = [(r, s, alpha) for r, s in pairs for alpha in alphas]
    delta = rows.states - baseline
    length = rows.labels.shape[1]
    scores = torch.zeros(len(rows) * length, rows.states.shape[1], device=rows.states.device)
    for part in rows.passes(len(work), max_rows):
        chunk = work[part]
        index = torch.tensor([r for r, _, _ in chunk], device=rows.states.device)
        alpha = torch.tensor([a for _, _, a in chunk], device=rows.states.device, dtype=rows.states.dtype)
        with torch.enable_grad():
            points = (baseline.index_select(0, index) + alpha[:, None, None] * delta.index_select(0, index))
            points = points.detach().requires_grad_(True)
            logprobs = label_logprobs(model, rows, index, points)
            picked = logprobs[torch.arange(len(chunk)), torch.tensor([s for _, s, _ in chunk])]
            (grads,) = torch.autograd.grad(picked.sum(), points)
        dots = (grads.float() * delta.index_select(0, index).float()).sum(-1) / len(alphas)
        cells = torch.tensor([r * length + s for r, s, _ in chunk], device=scores.device)
        scores.index_add_(0, cells, dots)
    return scores.view(len(rows), length, -1) * rows.positions()[:, None, :]


@torch.no_grad()
def logprobs_at(model: PreTrainedModel, rows: AttributionRows, states: torch.Tensor, max_rows: int) -> torch.Tensor:
    """(rows, label positions): every label's log-probability with ``states`` in place of the rows' states."""
    index = torch.arange(len(rows), device=states.device)
    return torch.cat([label_logprobs(model, rows, index[part], states[part])
                      for part in row_slices(len(rows), max_rows)])


@register("grad", gradients=True)
def gradient_x_input(model: PreTrainedModel, rows: AttributionRows, settings: AttributionSettings,
                     max_rows: int) -> MethodScores:
    """Gradient x input on the layer's states: one backward pass per call of rows."""
    return MethodScores(path_scores(model, rows, torch.zeros_like(rows.states), [1.0], max_rows))


@register("ig", gradients=True)
def integrated_gradients(model: PreTrainedModel, rows: AttributionRows, settings: AttributionSettings,
                         max_rows: int) -> MethodScores:
    """Integrated gradients from the baseline state (midpoint rule, ``steps`` points); the completeness gap is
    the sum of the scores minus the log-probability's change from baseline to states."""
    baseline = rows.baseline(settings.baseline)
    alphas = [(k + 0.5) / settings.steps for k in range(settings.steps)]
    scores = path_scores(model, rows, baseline, alphas, max_rows)
    change = logprobs_at(model, rows, rows.states, max_rows) - logprobs_at(model, rows, baseline, max_rows)
    return MethodScores(scores, (scores.sum(-1) - change) * rows.wanted)
