"""Layer-by-layer evaluation over a data set: readouts stream to the evaluation folder, then a summary."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from decoderlens.errors import InputError
from decoderlens.evaluation.baselines import Baseline, best_constant
from decoderlens.evaluation.bootstrap import bootstrap
from decoderlens.evaluation.data import EvalRow, load_rows
from decoderlens.evaluation.distributed import process_info
from decoderlens.evaluation.folder import (
    NONSPEECH,
    EvalFolder,
    GridCellSummary,
    GridRecord,
    LayerSummary,
    MetricInfo,
    ReadoutRecord,
    Summary,
)
from decoderlens.evaluation.metrics import DIAGNOSTICS, Metric, get_normalizer
from decoderlens.evaluation.nonspeech import measure_hallucination
from decoderlens.evaluation.settings import EvalSettings
from decoderlens.evaluation.spoken_language import add_language_metric, confusion_table
from decoderlens.evaluation.statistics import AGREEMENT, LayerStatistics, layer_statistics
from decoderlens.inputs import describe
from decoderlens.languages import language_code, language_tokens
from decoderlens.results import Presentable
from decoderlens.settings import LensMode


@dataclass
class EvalReport(Presentable):
    """What ``evaluate`` did: the summary written, and the rows it skipped (displays as the summary's table)."""

    summary: Summary
    skipped: list[str] = field(default_factory=list)
    new_examples: int = 0

    def to_records(self) -> list[dict[str, Any]]:
        """The summary's long-format rows."""
        return self.summary.to_records()


@dataclass
class Chunk:
    """What one chunk of rows recorded: readouts (with scores), and where asked, 2-D lenses and attributions."""

    records: list[ReadoutRecord] = field(default_factory=list)
    grids: list[GridRecord] = field(default_factory=list)
    attributions: list[dict[str, Any]] = field(default_factory=list)
    """Per example: its id, the method, and its attribution (``ExampleAttribution.to_dict``)."""

    def extend(self, other: Chunk) -> None:
        self.records += other.records
        self.grids += other.grids
        self.attributions += other.attributions


def _records_for(lens: Any, rows: list[EvalRow], settings: EvalSettings,
                 progress: Callable[[int], None] | None = None) -> Chunk:
    """Read out (and with ``score``/``grid``, score) one chunk of rows from one encoder pass per batch;
    ``progress`` is told after every batch how many more examples are done."""
    items = [row.input for row in rows]
    known = language_tokens(lens.model)
    detect = bool(known) and any(row.language for row in rows)
    readings = lens.read_all(items, [row.reference for row in rows], generation=settings.generation,
                             runtime=settings.runtime, lenses=lens.lenses(settings.lens_mode), score=settings.score,
                             grid=settings.grid, languages=detect, progress=progress or False)
    grids = [GridRecord(row.id, sorted({c.encoder_layer for c in example.cells}), example.matrix())
             for row, example in zip(rows, readings.grids or [], strict=False)]
    out = readings.readouts
    scored = [{ls.layer: ls for ls in ex.layers} for ex in readings.scores] if readings.scores else [{} for _ in rows]
    records = []
    detected = readings.languages or [None] * len(rows)
    for row, example, by_layer, heard in zip(rows, out, scored, detected, strict=True):
        for readout in example.readouts:
            record = ReadoutRecord.of(row.id, describe(row.input, row.id), readout, row.reference)
            if heard is not None and row.language:
                guess = heard.layer(readout.layer)
                record.language = language_code(row.language, known) or row.language
                record.detected_language, record.language_probability = guess.language, guess.probability
            if settings.score:
                layer_score = by_layer[readout.layer]
                record.logprob = layer_score.logprob
                record.target_tokens = [t.token for t in layer_score.tokens]
                record.token_logprobs = [round(t.logprob, 4) + 0.0 for t in layer_score.tokens]
                record.token_ranks = [t.rank for t in layer_score.tokens]
            records.append(record)
    beside = readings.by_lens.get("raw") if settings.lens_mode is LensMode.both else None
    for row, example in zip(rows, beside or [], strict=False):  # the raw lens beside the tuned one
        records += [ReadoutRecord.of(row.id, describe(row.input, row.id), r, row.reference, lens="raw")
                    for r in example.readouts if r.layer < lens.num_layers]
    attributions = []
    if settings.attribute is not None:  # each layer's own readout, attributed through the run's (first) lens
        found = lens.attribute(items, method=settings.attribute, generation=settings.generation,
                               runtime=settings.runtime, lens=lens.lenses(settings.lens_mode)[0])
        attributions = [{"id": row.id, "method": found.method, "example": example.to_dict()}
                        for row, example in zip(rows, found, strict=True)]
    return Chunk(records, grids, attributions)


def _safe_records(lens: Any, rows: list[EvalRow], settings: EvalSettings, skipped: list[str],
                  bar: Any) -> Chunk:
    """Records of a chunk, moving ``bar`` as its batches finish; if an input is bad, retry one by one to find it,
    then skip or fail."""
    start = bar.n
    try:
        return _records_for(lens, rows, settings, bar.update)
    except InputError:
        bar.update(start - bar.n)  # back to where the chunk began: the retry counts its examples again
        if len(rows) == 1 and settings.on_error == "fail":
            raise
    chunk = Chunk()
    for row in rows:
        try:
            chunk.extend(_records_for(lens, [row], settings))
            bar.update(1)
        except InputError as err:
            if settings.on_error == "fail":
                raise InputError(f"example {row.id}: {err}") from None
            skipped.append(f"example {row.id}: {err}")
            bar.update(1)
    return chunk


def summarize(records: list[ReadoutRecord], settings: EvalSettings, num_layers: int,
              identity: dict[str, Any] | None = None) -> Summary:
    """Per layer and metric: value with a 95% bootstrap interval, from the readout records."""
    chosen, normalize_name = settings.metric_objects()
    main = [r for r in records if r.lens is None]
    raw = [r for r in records if r.lens == "raw"]
    metrics, per_layer = layer_statistics(main, chosen, normalize_name, num_layers, settings.score)
    info = {m.name: MetricInfo(m.description, m.signature, m.higher_is_better, _bounds(m)) for m in metrics}
    for name, baseline in baselines(main, chosen, normalize_name).items():
        info[name].baseline, info[name].baseline_label = baseline.value, baseline.label
    if AGREEMENT in info:
        info[AGREEMENT].signature = f"norm:{normalize_name}"

    def summaries(entries: list[LayerStatistics], measured: list[Metric]) -> list[LayerSummary]:
        return [LayerSummary(entry.layer, len(entry.ids),
                             {m.name: bootstrap(entry.stats[m.name], m.score, settings.bootstrap_resamples)
                              for m in measured})
                for entry in entries]

    summary = Summary(settings.model, num_layers, identity or {}, settings.preset, normalize_name, info,
                      summaries(per_layer, metrics), 0.95, settings.bootstrap_resamples)
    add_language_metric(summary, main, settings.bootstrap_resamples)
    if raw:  # the raw lens's curve ends in the same top layer
        top = [r for r in main if r.layer == num_layers]
        raw_metrics, raw_layers = layer_statistics(raw + top, chosen, normalize_name, num_layers, False)
        summary.raw_layers = summaries(raw_layers, raw_metrics)
    return summary


def summarize_grid(records: list[GridRecord], resamples: int) -> list[GridCellSummary]:
    """Every 2-D lens cell's mean log-probability over the examples, with its bootstrap interval."""
    if not records:
        return []
    cells = np.array([r.logprob for r in records])  # (examples, encoder layers, decoder layers)
    return [GridCellSummary(layer, d + 1, bootstrap(np.stack([cells[:, e, d], np.ones(len(records))], axis=1),
                                                    lambda s: float(s[0] / s[1]), resamples))
            for e, layer in enumerate(records[0].encoder_layers) for d in range(cells.shape[2])]


def baselines(records: list[ReadoutRecord], metrics: list[Metric], normalize_name: str) -> dict[str, Baseline]:
    """Each task metric's best constant answer over the examples of ``records`` (one row per example)."""
    normalize = get_normalizer(normalize_name)
    examples = {r.id: r for r in records}
    references = [normalize(r.reference or "") for r in examples.values()]
    inputs = [r.input for r in examples.values()]
    found = {m.name: best_constant(m, references, inputs) for m in metrics}
    return {name: baseline for name, baseline in found.items() if baseline is not None}


def _bounds(metric: Metric) -> list[float] | None:
    return None if metric.bounds is None else [float(b) for b in metric.bounds]


def check_rows(rows: list[EvalRow], metrics: list[Metric]) -> tuple[list[EvalRow], list[str]]:
    """Rows every metric can score, and why the others are skipped (before anything is decoded)."""
    checks = [m for m in metrics if m.check_input is not None]
    usable, problems = [], []
    for row in rows:
        reasons = [reason for m in checks if (reason := m.check_input(describe(row.input, row.id)))]  # type: ignore[misc]
        if reasons:
            problems.append(f"example {row.id}: {reasons[0]}")
        else:
            usable.append(row)
    return usable, problems


def evaluate(settings: EvalSettings, out_dir: Path, lens: Any, progress: bool = True,
             on_chunk: Callable[[int], None] | None = None) -> EvalReport:
    """Run (or resume) an evaluation into ``out_dir`` with ``lens`` (a ``DecoderLens``, or a function of the
    process's ``ProcessInfo`` that loads one once the data has been read); returns the summary and the skipped
    rows.

    Every option is checked, the data read and the model loaded before anything is written; ``run.json`` is
    written with the first records. Under ``accelerate launch`` (several processes), each process evaluates
    its share of the rows into its own shard; the main process merges them in data order and writes the
    summary.
    """
    settings.validate()
    metrics, _ = settings.metric_objects()
    proc = process_info()
    if proc.world > 1:
        print(f"decoderlens eval: process {proc.rank} of {proc.world} on {proc.device}", file=sys.stderr, flush=True)
    loaded = load_rows(settings.data)
    usable, problems = check_rows(loaded.rows, metrics)
    skipped = [*loaded.problems, *problems]
    if skipped and settings.on_error == "fail":
        raise InputError(f"{len(skipped)} malformed rows, e.g. {skipped[0]}; fix them or pass --on-error skip")
    if not usable:
        raise InputError(f"no usable rows in {settings.data.path}" + (f": every row was skipped, e.g. {skipped[0]}"
                                                                      if skipped else ""))
    if callable(lens):  # a loader: the model loads only now that the data has been read
        lens = lens(proc)
    if lens.adapter.spec.modality == "speech":
        settings = settings.with_metrics(DIAGNOSTICS)
    layers = sorted(set(lens.select(settings.generation.layers)) | {lens.num_layers})
    settings = replace(settings, generation=replace(settings.generation, layers=layers))
    mode = settings.lens_mode
    lenses = lens.lenses(mode)
    identity = {**settings.identity(layers, lens.plan(settings.generation).max_new_tokens),
                "lens": mode.value if mode is LensMode.raw else f"{mode.value} {lenses[0].name}"}
    folder = EvalFolder(out_dir)
    folder.check_settings(identity)
    with folder.writing() if proc.is_main else contextlib.nullcontext():
        return _run(settings, folder, lens, usable, skipped, layers, identity, proc, progress, on_chunk)


def _run(settings: EvalSettings, folder: EvalFolder, lens: Any, rows: list[EvalRow], skipped: list[str],
         layers: list[int], identity: dict[str, Any], proc: Any, progress: bool,
         on_chunk: Callable[[int], None] | None) -> EvalReport:
    merged = folder.records(layers) if proc.world > 1 else []
    path = folder.shard_path(proc.rank, proc.world) if proc.world > 1 else folder.readouts_path
    wanted = {row.id for row in rows}
    done = [r for r in folder.records(layers, path) if r.id in wanted]
    done_ids = {r.id for r in done} | {r.id for r in merged}
    mine = rows[proc.rank :: proc.world]
    todo = [row for row in mine if row.id not in done_ids]
    with tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"eval[{proc.rank}]" if proc.world > 1 else "eval",
              unit="ex", disable=not progress or not proc.is_main, dynamic_ncols=True) as bar:
        for number, start in enumerate(range(0, len(todo), settings.chunk_size)):
            chunk = todo[start : start + settings.chunk_size]
            recorded = _safe_records(lens, chunk, settings, skipped, bar)
            if recorded.records:
                folder.write_settings(identity)
                if recorded.grids:
                    folder.append_grids(recorded.grids)
                if recorded.attributions:
                    folder.append_attributions(recorded.attributions)
                folder.append(recorded.records, path)
            done.extend(recorded.records)
            if on_chunk is not None:
                on_chunk(number)
    if proc.world > 1:
        proc.barrier()
        if not proc.is_main:
            proc.barrier()  # wait for the merge, so that every process returns the same summary
            return EvalReport(folder.summary(), skipped, len(todo))  # type: ignore[arg-type]
        done = [r for r in folder.merge_shards([row.id for row in rows], layers, proc.world) if r.id in wanted]
    if not done:
        raise InputError(f"no example could be read out: every row was skipped, e.g. {skipped[0]}" if skipped
                         else "no example could be read out")
    summary = summarize(done, settings, lens.num_layers, identity)
    summary.skipped = skipped
    if settings.grid:
        summary.grid = summarize_grid([g for g in folder.grid_records() if g.id in wanted],
                                      settings.bootstrap_resamples)
    measure_hallucination(lens, settings, summary, folder.path / NONSPEECH)
    confusions = confusion_table(done)
    if confusions is not None:
        folder.write_tables([confusions])
    folder.write_summary(summary)
    if proc.world > 1:
        proc.barrier()
    return EvalReport(summary, skipped, len(todo))
