"""Translators in closed form: each layer's affine map onto the top layer's states, by least squares from running
normal equations (one pass over the data, nothing kept but their sums)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from decoderlens.adapter import EncodedBatch, ModelAdapter
from decoderlens.settings import FinalNorm
from decoderlens.translators import Translators

RIDGE = 1e-9
"""The ridge added to the normal equations, relative to their mean diagonal (it only decides directions the
states never take, e.g. those a layer norm removes)."""


class NormalEquations:
    """Running sums of an affine least-squares fit ``y ~ x + x A^T + b`` (the residual form of a translator), in
    float64: rows can be added batch by batch and the fit solved at the end."""

    def __init__(self, width: int) -> None:
        self.gram = torch.zeros(width + 1, width + 1, dtype=torch.float64)
        self.cross = torch.zeros(width + 1, width, dtype=torch.float64)

    def add(self, x: torch.Tensor, y: torch.Tensor) -> NormalEquations:
        """Add the rows of ``x`` (inputs) and ``y`` (targets)."""
        x64, y64 = x.detach().to("cpu", torch.float64), y.detach().to("cpu", torch.float64)
        design = torch.cat([x64, torch.ones(x64.shape[0], 1, dtype=torch.float64)], dim=1)
        self.gram += design.T @ design
        self.cross += design.T @ (y64 - x64)
        return self

    def solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``A, b`` (float32)."""
        ridge = RIDGE * float(self.gram.diagonal().mean()) + 1e-12
        solution = torch.linalg.solve(self.gram + ridge * torch.eye(self.gram.shape[0], dtype=torch.float64),
                                      self.cross)
        return solution[:-1].T.float(), solution[-1].float()


def affine_least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A, b`` minimising ``|x + x A^T + b - y|^2`` over the rows."""
    matrix, bias = NormalEquations(x.shape[1]).add(x, y).solve()
    return matrix.to(x.dtype), bias.to(x.dtype)


@torch.no_grad()
def fit_translators(translators: Translators, adapter: ModelAdapter, batches: Iterable[EncodedBatch],
                    final_norm: FinalNorm = "auto", shuffle: bool = False, seed: int = 0) -> None:
    """Set every layer's ``A_l, b_l`` to minimise ``|h_l + A_l h_l + b_l - h_L|^2`` over every (unpadded) position of
    ``batches``. ``shuffle``: the control, each position paired with a random position's top state from the same
    batch (seeded by ``seed``)."""
    top = translators.num_layers
    sums = [NormalEquations(adapter.encoder_width) for _ in range(top)]
    generator = torch.Generator().manual_seed(seed)
    for encoded in batches:
        length = encoded.final_output.shape[1]
        mask = adapter.state_mask(encoded.attention_mask, length)
        keep = (torch.ones(encoded.final_output.shape[:2], device=encoded.final_output.device) if mask is None
                else mask[:, :length]).bool()
        target = encoded.final_output[keep]
        if shuffle:
            target = target[torch.randperm(target.shape[0], generator=generator).to(target.device)]
        for layer in range(top):
            sums[layer].add(adapter.layer_state(encoded, layer, final_norm)[keep], target)
    for layer, equations in enumerate(sums):
        matrix, bias = equations.solve()
        translators.bias.data[layer] = bias.to(translators.bias.dtype)
        if translators.rank is None:
            translators.weight.data[layer] = matrix.to(translators.weight.dtype)
        else:
            u, s, vh = torch.linalg.svd(matrix)
            r = translators.rank
            translators.up.data[layer] = (u[:, :r] * s[:r].sqrt()).to(translators.up.dtype)
            translators.down.data[layer] = (vh[:r].T * s[:r].sqrt()).to(translators.down.dtype)
