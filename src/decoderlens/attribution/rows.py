"""The rows an attribution works on: one per (example, layer), the encoder states the decoder reads there, the
teacher-forced labels of its tokens, and which label positions are reported; and the one scoring pass every
method runs on them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from decoderlens.adapter import EncodedBatch
from decoderlens.forcing import teacher_forced
from decoderlens.scheduling import row_slices


@dataclass
class AttributionRows:
    """Stacked rows: row ``r`` holds the states (time, width) the decoder reads for one example at one layer,
    that row's labels (-100 where padded) and the decoder inputs they imply."""

    encoded: EncodedBatch
    states: torch.Tensor
    mask: torch.Tensor | None
    decoder_in: torch.Tensor
    labels: torch.Tensor
    wanted: torch.Tensor
    """(rows, label positions): True where a token is reported (the readout's or target's own tokens)."""
    present: torch.Tensor | None = None
    """(rows, time): 1 at the source positions a row has, 0 at padding (``None``: every position)."""
    progress: bool = False
    """Show a bar of the decoder passes a method makes (long work: ig, occlusion, long audio)."""

    def passes(self, total: int, max_rows: int) -> Iterator[slice]:
        """Slices of ``total`` work rows, at most ``max_rows`` each, with a bar of the rows done where
        ``progress`` is on."""
        with tqdm(total=total, desc="attributing", unit="row", disable=not self.progress, leave=False,
                  dynamic_ncols=True) as bar:
            for part in row_slices(total, max_rows):
                yield part
                bar.update(part.stop - part.start)

    def __len__(self) -> int:
        return self.states.shape[0]

    def positions(self) -> torch.Tensor:
        """(rows, time): 1.0 at the source positions a row has, 0.0 at padding."""
        if self.present is None:
            return torch.ones(self.states.shape[:2], device=self.states.device)
        return self.present.to(self.states.dtype)

    def wanted_pairs(self) -> list[tuple[int, int]]:
        """Every reported (row, label position), row by row."""
        return [(int(r), int(s)) for r, s in self.wanted.nonzero().tolist()]

    def baseline(self, kind: str) -> torch.Tensor:
        """The state a path starts from or an occluded position gets: zeros, or each row's mean state over its
        positions."""
        if kind == "zero":
            return torch.zeros_like(self.states)
        weights = self.positions()[..., None]
        mean = (self.states * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1)
        return mean.expand_as(self.states).contiguous()


def label_logprobs(model: PreTrainedModel, rows: AttributionRows, index: torch.Tensor,
                   states: torch.Tensor) -> torch.Tensor:
    """(n, label positions): the log-probability of each label given ``states`` (n rows of stacked states) for
    the rows ``index`` names; 0 where a label is padding. Differentiable in ``states``."""
    device = states.device
    index = index.to(device)
    mask = None if rows.mask is None else rows.mask.index_select(0, index)
    labels = rows.labels.index_select(0, index)
    logits = teacher_forced(model, rows.encoded, states, mask, rows.decoder_in.index_select(0, index)).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return logprobs * (labels != -100)
