"""Resumable layer-by-layer evaluation: readouts stream to disk, summaries are written atomically."""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from decoderlens.engine import DEFAULT_TOP_LENGTH_CAP
from decoderlens.errors import InputError
from decoderlens.evaluation.bootstrap import bootstrap
from decoderlens.evaluation.data import DataSource, EvalRow, load_rows
from decoderlens.evaluation.distributed import process_info, shard_file_name
from decoderlens.evaluation.metrics import TASK_PRESETS, Metric, get_metric, get_normalizer, mean_metric
from decoderlens.inputs import describe
from decoderlens.layers import select_layers
from decoderlens.results import atomic_write_text

READOUTS = "readouts.jsonl"
RUN_FILE = "run.json"


@dataclass
class EvalSettings:
    """Everything that determines an evaluation run."""

    model: str
    data: DataSource
    task: str = "generic"
    metrics: list[str | Metric] | None = None
    """Registered metric names or ``Metric`` objects (e.g. ``mean_metric("mine", fn)``); defaults to the preset's."""
    normalize: str | None = None
    """Normalisation before text metrics (none, lower, squad, whisper); defaults to the preset's."""
    layers: str = "all"
    max_new_tokens: int | None = None
    num_beams: int = 1
    final_norm: Literal["auto", "none"] = "auto"
    tgt_lang: str | None = None
    language: str | None = None
    task_token: str | None = None
    """Whisper's task (transcribe/translate)."""
    score: bool = False
    """Also record the teacher-forced log-probability of the reference per layer."""
    top_length_cap: float | None = DEFAULT_TOP_LENGTH_CAP
    """Greedy readouts of lower layers are cut after this many times the top layer's length (+16) tokens;
    ``None`` or 0 switches it off (see ``DecoderLens.generate``)."""
    batch_size: int = 16
    chunk_size: int = 64
    on_error: Literal["skip", "fail"] = "skip"
    bootstrap_resamples: int = 1000
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    """``"auto"``: spread a model too large for one GPU over all GPUs of this process (not with several processes)."""
    max_memory: str | None = None
    """Memory budget of one decoding call (e.g. ``"8GiB"``); changes speed, never results."""

    def identity(self) -> dict[str, Any]:
        """The settings that determine the readouts; a results folder only ever holds one identity."""
        data = asdict(self.data)
        data.pop("limit", None)
        return {"model": self.model, "data": data, "layers": self.layers, "max_new_tokens": self.max_new_tokens,
                "num_beams": self.num_beams, "final_norm": self.final_norm, "tgt_lang": self.tgt_lang,
                "language": self.language, "task": self.task_token, "score": self.score,
                "top_length_cap": self.top_length_cap or None}

    def metric_objects(self) -> tuple[list[Metric], str]:
        """The metrics to compute and the normalisation to apply first."""
        if self.task not in TASK_PRESETS:
            raise InputError(f"unknown task {self.task!r}: choose from {', '.join(TASK_PRESETS)}")
        preset = TASK_PRESETS[self.task]
        chosen = self.metrics or list(preset["metrics"])  # type: ignore[call-overload]
        metrics = [m if isinstance(m, Metric) else get_metric(m) for m in chosen]
        return metrics, self.normalize or str(preset["normalize"])


@dataclass
class EvalReport:
    """What ``evaluate`` did: the summary written, and the rows it skipped."""

    summary: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    new_examples: int = 0


def check_run_folder(out_dir: Path, settings: EvalSettings) -> None:
    """Refuse to mix results of different settings in one folder; record the settings otherwise."""
    run_file = out_dir / RUN_FILE
    identity = settings.identity()
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != json.loads(json.dumps(identity)):
            changed = [k for k in identity if json.dumps(previous.get(k)) != json.dumps(identity[k])]
            raise InputError(
                f"{out_dir} holds results of a run with other settings (changed: {', '.join(changed)}); "
                "use another --out folder, or delete this one to start over"
            )
    else:
        atomic_write_text(run_file, json.dumps(identity, indent=2))


def read_done(path: Path, layers: list[int]) -> list[dict[str, Any]]:
    """Records of examples that have every layer; a torn last line or partial example is cut off."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    records = [json.loads(line) for line in complete.decode("utf-8").splitlines() if line.strip()]
    by_id: dict[str, set[int]] = defaultdict(set)
    for record in records:
        by_id[record["id"]].add(record["layer"])
    keep = [r for r in records if by_id[r["id"]] >= set(layers)]
    if len(keep) != len(records) or len(complete) != len(raw):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
        atomic_write_text(path, text)
    return keep


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def _records_for(lens: Any, rows: list[EvalRow], layers: list[int], settings: EvalSettings) -> list[dict[str, Any]]:
    out = lens.generate([r.input for r in rows], layers, max_new_tokens=settings.max_new_tokens,
                        num_beams=settings.num_beams, batch_size=settings.batch_size,
                        final_norm=settings.final_norm, tgt_lang=settings.tgt_lang, language=settings.language,
                        task=settings.task_token, top_length_cap=settings.top_length_cap,
                        max_memory=settings.max_memory)
    scored: list[dict[int, Any]] = [{} for _ in rows]
    if settings.score:
        scores = lens.score([r.input for r in rows], [r.reference for r in rows], layers,
                            batch_size=settings.batch_size, final_norm=settings.final_norm, tgt_lang=settings.tgt_lang,
                            max_memory=settings.max_memory)
        scored = [{ls.layer: ls for ls in ex.layers} for ex in scores]
    records = []
    for index, (row, example) in enumerate(zip(rows, out, strict=True)):
        for readout in example.readouts:
            record = {"id": row.id, "layer": readout.layer, "input": describe(row.input, index),
                      "output": readout.text, "reference": row.reference}
            if settings.score:
                layer_score = scored[index][readout.layer]
                record["logprob"] = layer_score.logprob
                record["target_tokens"] = [t.token for t in layer_score.tokens]
                record["token_logprobs"] = [round(t.logprob, 4) for t in layer_score.tokens]
            records.append(record)
    return records


def _safe_records(lens: Any, rows: list[EvalRow], layers: list[int], settings: EvalSettings,
                  skipped: list[str]) -> list[dict[str, Any]]:
    """Records of a chunk; if an input is bad, retry one by one to find it, then skip or fail."""
    try:
        return _records_for(lens, rows, layers, settings)
    except InputError:
        if len(rows) == 1:
            raise
    records = []
    for row in rows:
        try:
            records.extend(_records_for(lens, [row], layers, settings))
        except InputError as err:
            if settings.on_error == "fail":
                raise InputError(f"example {row.id}: {err}") from None
            skipped.append(f"example {row.id}: {err}")
    return records


def summarize(records: list[dict[str, Any]], settings: EvalSettings, num_layers: int) -> dict[str, Any]:
    """Per layer and metric: value with a 95% bootstrap interval, from the readout records."""
    metrics, normalize_name = settings.metric_objects()
    normalize = get_normalizer(normalize_name)
    by_layer: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_layer[record["layer"]].append(record)
    top = {r["id"]: normalize(r["output"]) for r in by_layer.get(num_layers, [])}
    agreement = mean_metric("agreement_with_top", lambda p, r, i: p == top.get(i), uses_input=True,
                            description="output equals the top layer's output (after normalisation)")
    layers = []
    for layer in sorted(by_layer):
        rows = sorted(by_layer[layer], key=lambda r: str(r["id"]))
        preds = [normalize(r["output"]) for r in rows]
        refs = [normalize(r["reference"]) for r in rows]
        entry: dict[str, Any] = {"layer": layer, "n": len(rows)}
        for metric in metrics:
            inputs = [r["input"] for r in rows]
            entry[metric.name] = asdict(bootstrap(metric.stats(preds, refs, inputs), metric.score,
                                                  settings.bootstrap_resamples))
        if top:
            entry[agreement.name] = asdict(bootstrap(agreement.stats(preds, refs, [str(r["id"]) for r in rows]),
                                                     agreement.score, settings.bootstrap_resamples))
        if settings.score:
            values = np.array([[r["logprob"], 1.0] for r in rows])
            entry["logprob"] = asdict(bootstrap(values, lambda s: float(s[0] / s[1]), settings.bootstrap_resamples))
        layers.append(entry)
    return {
        "model": settings.model, "num_encoder_layers": num_layers, "settings": settings.identity(),
        "task": settings.task, "normalize": normalize_name,
        "metrics": {m.name: {"signature": m.signature, "higher_is_better": m.higher_is_better,
                             "description": m.description} for m in metrics},
        "confidence": 0.95, "bootstrap_resamples": settings.bootstrap_resamples, "layers": layers,
    }


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and a long-format ``summary.csv`` (layer, metric, value, low, high, n), atomically."""
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    lines = ["layer,metric,value,low,high,n"]
    for entry in summary["layers"]:
        for name, est in entry.items():
            if isinstance(est, dict):
                lines.append(f"{entry['layer']},{name},{est['value']:.6g},{est['low']:.6g},{est['high']:.6g},{est['n']}")
    atomic_write_text(out_dir / "summary.csv", "\n".join(lines) + "\n")


def merge_shards(out_dir: Path, rows: list[EvalRow], layers: list[int], world: int) -> list[dict[str, Any]]:
    """Fold every process's shard into ``readouts.jsonl`` in data order; returns all records."""
    path = out_dir / READOUTS
    records = read_done(path, layers)
    shards = [out_dir / shard_file_name(rank, world) for rank in range(world)]
    for shard in shards:
        records += read_done(shard, layers)
    position = {row.id: index for index, row in enumerate(rows)}
    records.sort(key=lambda r: (position.get(r["id"], len(position)), layers.index(r["layer"])))
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    for shard in shards:
        shard.unlink(missing_ok=True)
    return records


def evaluate(settings: EvalSettings, out_dir: Path, lens: Any = None, progress: bool = True,
             on_chunk: Callable[[int], None] | None = None) -> EvalReport:
    """Run (or resume) an evaluation into ``out_dir``; returns the summary and the skipped rows.

    Under ``accelerate launch`` (several processes), each process evaluates its share of the rows into its
    own shard; the main process merges them in data order and writes the summary.
    """
    settings.metric_objects()  # validate names before any heavy work
    proc = process_info()
    if proc.world > 1:
        print(f"decoderlens eval: process {proc.rank} of {proc.world} on {proc.device}", file=sys.stderr, flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    if proc.is_main:
        check_run_folder(out_dir, settings)
    proc.barrier()
    if not proc.is_main:
        check_run_folder(out_dir, settings)
    loaded = load_rows(settings.data)
    skipped = list(loaded.problems)
    if skipped and settings.on_error == "fail":
        raise InputError(f"{len(skipped)} malformed rows, e.g. {skipped[0]}; fix them or pass --on-error skip")
    if not loaded.rows:
        raise InputError(f"no usable rows in {settings.data.path}" + (f" (e.g. {skipped[0]})" if skipped else ""))
    if lens is None:
        from decoderlens.engine import DecoderLens

        device = proc.device if proc.world > 1 and settings.device == "auto" else settings.device
        lens = DecoderLens.from_pretrained(settings.model, device=device or "auto", dtype=settings.dtype,
                                           device_map=settings.device_map)
    layers = sorted(set(select_layers(settings.layers, lens.num_layers)) | {lens.num_layers})
    merged = read_done(out_dir / READOUTS, layers) if proc.world > 1 else []
    path = out_dir / (shard_file_name(proc.rank, proc.world) if proc.world > 1 else READOUTS)
    done = read_done(path, layers)
    done_ids = {r["id"] for r in done} | {r["id"] for r in merged}
    mine = loaded.rows[proc.rank :: proc.world]
    todo = [row for row in mine if row.id not in done_ids]
    with tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"eval[{proc.rank}]" if proc.world > 1 else "eval",
              unit="ex", disable=not progress or not proc.is_main, dynamic_ncols=True) as bar:
        for number, start in enumerate(range(0, len(todo), settings.chunk_size)):
            chunk = todo[start : start + settings.chunk_size]
            records = _safe_records(lens, chunk, layers, settings, skipped)
            _append(path, records)
            done.extend(records)
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(number)
    if proc.world > 1:
        proc.barrier()
        if not proc.is_main:
            proc.barrier()  # wait for the merge, so that every process returns the same summary
            summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
            return EvalReport(summary, skipped, len(todo))
        done = merge_shards(out_dir, loaded.rows, layers, proc.world)
    summary = summarize(done, settings, lens.num_layers)
    summary["skipped"] = skipped
    write_summary(out_dir, summary)
    if proc.world > 1:
        proc.barrier()
    return EvalReport(summary, skipped, len(todo))
