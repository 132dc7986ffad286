"""Everything an evaluation records from one encoder pass per batch: readouts through one or more lenses, and the
teacher-forced scores and 2-D lens of the references."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from decoderlens.batching import Progress, each_batch, encode
from decoderlens.decoder_head import DecoderHead
from decoderlens.forcing import reference_labels
from decoderlens.grid import GIVEN, grid_batch, grid_output
from decoderlens.inputs import describe
from decoderlens.languages import check_languages, language_batch, language_output
from decoderlens.lenses import RAW, Lens
from decoderlens.model_parts import ModelParts
from decoderlens.readout import lens_output, readout_batch, rows_per_example
from decoderlens.results import GridOutput, LanguageOutput, LensOutput, Presentable, ScoreOutput
from decoderlens.scoring import score_batch, score_output
from decoderlens.settings import GenerationSettings, RuntimeSettings


@dataclass
class Readings(Presentable):
    """What ``read_all`` returns: readouts per lens (the first lens's lead), and where asked for, scores and 2-D
    lenses of the same inputs through the first lens."""

    by_lens: dict[str, LensOutput]
    scores: ScoreOutput | None = None
    grids: GridOutput | None = None
    lenses: list[str] = field(default_factory=list)
    """Lens names in the order they were given."""
    languages: LanguageOutput | None = None
    """With ``languages``: the language each layer detects, through the first lens."""

    @property
    def readouts(self) -> LensOutput:
        """The first lens's readouts."""
        return self.by_lens[self.lenses[0]]

    def to_records(self) -> list[dict[str, Any]]:
        """Every lens's readout records, each with its lens's name."""
        return [{"lens": name, **record} for name, output in self.by_lens.items() for record in output.to_records()]


@torch.no_grad()
def read_all(parts: ModelParts, items: list[Any], targets: list[str], generation: GenerationSettings,
             runtime: RuntimeSettings, lenses: list[Lens] | None = None, *, score: bool = True, grid: bool = False,
             languages: bool = False, progress: Progress = False, **extra: Any) -> Readings:
    """Readouts through each of ``lenses`` (default: the raw lens) and, from the same encoder pass per batch, the
    teacher-forced scores of ``targets`` (``score``) and their 2-D lens (``grid``) through the first lens: what
    ``eval --score --grid --lens both`` records."""
    lenses = lenses or [RAW]
    chosen = parts.select(generation.layers)
    plan = parts.plan(generation, runtime, **extra)
    head = DecoderHead(parts.model) if grid else None  # refuses unmapped decoders before any work
    if languages:
        check_languages(parts)

    def work(indices: list[int], advance: Callable[[int], None]) -> list[tuple[Any, ...]]:
        encoded = encode(parts, [items[i] for i in indices], generation.truncation, runtime.max_memory)
        chunk = [targets[i] for i in indices]
        readouts = [readout_batch(parts, encoded, chosen, plan, generation, runtime, lens,  # the last lens ticks
                                  on_examples=advance if index == len(lenses) - 1 else None)
                    for index, lens in enumerate(lenses)]
        scores = (score_batch(parts, encoded, chunk, chosen, generation, runtime, lenses[0]) if score
                  else [[]] * len(indices))
        grids: list[Any] = [None] * len(indices)
        if head is not None:
            labels = reference_labels(parts, chunk, generation, runtime)
            grids = grid_batch(parts, head, encoded, labels, chosen, generation, runtime, lenses[0],
                               [describe(items[i], i) for i in indices], chunk)
        detected = (language_batch(parts, encoded, chosen, generation, runtime, lenses[0]) if languages
                    else [None] * len(indices))
        return list(zip(*readouts, scores, grids, detected, strict=True))

    rows = each_batch(parts, items, runtime, rows_per_example(parts, chosen, plan, generation),
                      generation.truncation, progress, work, ticks=True)
    by_lens = {lens.name: lens_output(parts, items, [row[index] for row in rows], chosen, plan, generation, lens)
               for index, lens in enumerate(lenses)}
    count = len(lenses)
    return Readings(
        by_lens,
        score_output(parts, items, targets, [row[count] for row in rows], chosen, generation, lenses[0])
        if score else None,
        grid_output(parts, head, [row[count + 1] for row in rows], chosen, generation, lenses[0], GIVEN)
        if head is not None else None,
        [lens.name for lens in lenses],
        language_output(parts, items, [row[count + 2] for row in rows], chosen, generation, lenses[0])
        if languages else None)
