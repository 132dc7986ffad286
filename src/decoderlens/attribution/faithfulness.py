"""Is an attribution faithful? Two checks against causal effects on a layer's own readout, per example and layer:

- restore effects (causal tracing at the lens's layer): the input's embeddings are noised, and the clean state of
  one position of the layer is put back into the corrupted layer states the decoder reads; the effect is how much
  each readout token's log-probability comes back. A faithful method ranks positions as these effects do
  (Spearman's rank correlation per token).
- deletion: the ``k`` positions a method ranks highest are replaced by their corrupted states; a faithful method's
  choice lowers the readout's log-probability more than ``k`` random positions do (the area between the two
  curves over ``k``, in nats).

Text models only (the noise is Gaussian on the token embeddings, as ``trace`` adds it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from decoderlens.attribution.gradients import logprobs_at
from decoderlens.attribution.registry import METHODS
from decoderlens.attribution.rows import AttributionRows, label_logprobs
from decoderlens.errors import InputError
from decoderlens.evaluation.bootstrap import bootstrap
from decoderlens.lenses import RAW, Lens
from decoderlens.model_parts import ModelParts
from decoderlens.scheduling import row_slices
from decoderlens.settings import AttributionSettings, GenerationSettings, RuntimeSettings, TraceSettings
from decoderlens.trace import embedding_noise, noisy_embeddings


@dataclass
class LayerFaithfulness:
    """One example at one layer, for one method."""

    layer: int
    method: str
    spearman: float
    """Mean over the readout's tokens of the rank correlation of scores and restore effects (nan: no token had
    varying scores and effects)."""
    deletion_area: float
    """Mean over k of (drop when the top-k positions are corrupted) - (drop for k random positions), nats."""


@dataclass
class CausalEffects:
    """One example's corrupted layer states and what restoring each position gives back, per row."""

    corrupted: torch.Tensor
    """(samples, rows, time, width): the layer states of the noised runs."""
    restore: torch.Tensor
    """(rows, label positions, time): mean log-probability gained by restoring the clean state at a position."""


@torch.no_grad()
def causal_effects(parts: ModelParts, item: str, rows: AttributionRows, layers: list[int],
                   generation: GenerationSettings, trace: TraceSettings, max_rows: int, lens: Lens = RAW
                   ) -> CausalEffects:
    """Noise the input's embeddings ``trace.samples`` times, read the layers' corrupted states, and restore each
    position's clean state in turn (``rows`` hold one example, one row per layer)."""
    if parts.adapter.spec.modality != "text":
        raise InputError("faithfulness checks noise token embeddings: give a text model")
    batch = parts.prepared([item], generation.truncation)
    length = batch["input_ids"].shape[1]
    noise = embedding_noise(parts.adapter, batch, (0, length), trace.samples, trace.noise_scale, trace.seed)
    repeated = {k: v.repeat(trace.samples, *([1] * (v.dim() - 1))) for k, v in batch.items()}
    with noisy_embeddings(parts.adapter, noise):
        encoded = parts.adapter.encode(repeated)
    stacked = parts.adapter.stack(encoded, layers, generation.final_norm, parts.device, lens).states
    corrupted = stacked.view(len(layers), trace.samples, *stacked.shape[1:]).transpose(0, 1).contiguous()
    time = rows.states.shape[1]
    restore = torch.zeros(*rows.labels.shape, time, device=rows.states.device)
    for sample in corrupted:
        base = logprobs_at(parts.model, rows, sample, max_rows)
        work = [(r, t) for r in range(len(rows)) for t in range(time)]
        for part in row_slices(len(work), max_rows):
            chunk = work[part]
            index = torch.tensor([r for r, _ in chunk], device=rows.states.device)
            states = sample.index_select(0, index).clone()
            for k, (r, t) in enumerate(chunk):
                states[k, t] = rows.states[r, t]
            gained = label_logprobs(parts.model, rows, index, states) - base.index_select(0, index)
            for k, (r, t) in enumerate(chunk):
                restore[r, :, t] += gained[k] / len(corrupted)
    return CausalEffects(corrupted, restore * rows.wanted[..., None])


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); nan where either side is constant."""
    ranks = [np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float) for x in (a, b)]
    for x, r in zip((a, b), ranks, strict=True):  # average the ranks of ties
        for value in np.unique(x):
            tied = x == value
            r[tied] = r[tied].mean()
    ra, rb = ranks
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def deletion_areas(parts: ModelParts, rows: AttributionRows, effects: CausalEffects, totals: torch.Tensor,
                   max_k: int, draws: int, seed: int, max_rows: int) -> list[float]:
    """Per row: the mean over k = 1..max_k of the readout's extra log-probability drop when its top-k positions
    by ``totals`` (rows, time) are corrupted, over k random positions (``draws`` seeded draws); corrupted states
    come from the first noise samples (at most 3)."""
    time = rows.states.shape[1]
    ks = list(range(1, min(max_k, time) + 1))
    generator = np.random.default_rng(seed)
    clean = (logprobs_at(parts.model, rows, rows.states, max_rows) * rows.wanted).sum(-1)
    choices: list[tuple[int, int, int, list[int]]] = []  # (row, k, draw: -1 = top-k, positions)
    for r in range(len(rows)):
        order = torch.argsort(totals[r], descending=True, stable=True).tolist()
        for k in ks:
            choices.append((r, k, -1, order[:k]))
            choices += [(r, k, d, sorted(generator.choice(time, k, replace=False).tolist())) for d in range(draws)]
    samples = effects.corrupted[: min(3, len(effects.corrupted))]
    drops = np.zeros((len(choices),))
    for sample in samples:
        for part in row_slices(len(choices), max_rows):
            chunk = choices[part]
            index = torch.tensor([r for r, _, _, _ in chunk], device=rows.states.device)
            states = rows.states.index_select(0, index).clone()
            for k, (r, _, _, positions) in enumerate(chunk):
                states[k, positions] = sample[r, positions]
            after = (label_logprobs(parts.model, rows, index, states) * rows.wanted.index_select(0, index)).sum(-1)
            drops[part] += ((clean.index_select(0, index) - after) / len(samples)).cpu().numpy()
    areas = []
    for r in range(len(rows)):
        top = [drops[i] for i, c in enumerate(choices) if c[0] == r and c[2] == -1]
        rand = [drops[i] for i, c in enumerate(choices) if c[0] == r and c[2] >= 0]
        areas.append(float(np.mean(top) - np.mean(rand)))
    return areas


def example_faithfulness(parts: ModelParts, item: str, rows: AttributionRows, layers: list[int],
                         methods: dict[str, AttributionSettings], generation: GenerationSettings,
                         runtime: RuntimeSettings, trace: TraceSettings, max_rows: int, lens: Lens = RAW,
                         max_k: int = 8, draws: int = 3) -> list[LayerFaithfulness]:
    """Every method's rank correlation with restore effects and deletion area, per layer, for one example."""
    effects = causal_effects(parts, item, rows, layers, generation, trace, max_rows, lens)
    restore = effects.restore.cpu().numpy()
    result = []
    for name, settings in methods.items():
        scores = METHODS[name](parts.model, rows, settings, max_rows).scores.float()
        areas = deletion_areas(parts, rows, effects, scores.sum(1), max_k, draws, trace.seed, max_rows)
        values = scores.cpu().numpy()
        for r, layer in enumerate(layers):
            correlations = [rank_correlation(values[r, s], restore[r, s])
                            for s in rows.wanted[r].nonzero().flatten().tolist()]
            kept = [c for c in correlations if not np.isnan(c)]
            result.append(LayerFaithfulness(layer, name, float(np.mean(kept)) if kept else float("nan"), areas[r]))
    return result


def summary_rows(records: list[LayerFaithfulness], resamples: int = 1000) -> list[dict[str, Any]]:
    """Per method and layer: mean rank correlation, share of examples whose top-k deletion beats random, and the
    mean deletion area, each with a 95% bootstrap interval over examples."""
    out = []
    for method in dict.fromkeys(r.method for r in records):
        for layer in sorted({r.layer for r in records if r.method == method}):
            mine = [r for r in records if r.method == method and r.layer == layer]
            rho = np.array([[r.spearman, 1.0] for r in mine if not np.isnan(r.spearman)]).reshape(-1, 2)
            wins = np.array([[float(r.deletion_area > 0), 1.0] for r in mine])
            areas = np.array([[r.deletion_area, 1.0] for r in mine])

            def mean(total: np.ndarray) -> float:
                return float(total[0] / total[1]) if total[1] else float("nan")

            out.append({"method": method, "layer": layer, "n": len(mine),
                        "spearman": bootstrap(rho, mean, resamples) if len(rho) else None,
                        "deletion_wins": bootstrap(wins, mean, resamples),
                        "deletion_area": bootstrap(areas, mean, resamples)})
    return out
