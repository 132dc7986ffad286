"""The evaluation folder: the one module that knows its files, how records are appended and read back, and the
typed summary that ``eval``, ``report``, ``plot``, ``compare`` and the demo share.

Layout: ``run.json`` (the settings that determine the readouts), ``readouts.jsonl`` (one ``ReadoutRecord`` per
example and layer, appended durably chunk by chunk; one shard per process in data-parallel runs),
``summary.json`` and ``summary.csv`` (per layer and metric: an estimate with its confidence interval), and
``.lock`` while a run writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from decoderlens.errors import InputError
from decoderlens.evaluation.bootstrap import Estimate
from decoderlens.fileio import (
    append_lines,
    atomic_write_text,
    csv_text,
    json_line,
    read_json,
    read_json_lines,
)
from decoderlens.results import LayerReadout, Presentable

READOUTS = "readouts.jsonl"
RUN_FILE = "run.json"
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
TABLES = "tables.json"
GRIDS = "grid.jsonl"
ATTRIBUTIONS = "attributions.jsonl"
NONSPEECH = "nonspeech.jsonl"
"""What every layer said about the clips without speech (speech models; see ``evaluation.nonspeech``)."""
LOCK = ".lock"
STALE_LOCK_SECONDS = 3600
"""A lock held by a process on another machine counts as abandoned once it is this old (each append renews it)."""


@dataclass
class ReadoutRecord:
    """One example read out at one layer, as stored in ``readouts.jsonl``."""

    id: str
    """The example's id (from the data, or its row number)."""
    layer: int
    """The encoder layer read (0 = embeddings, L = final output)."""
    input: str
    """The input as text, or a label for audio and images."""
    output: str
    """What the decoder generated from that layer."""
    reference: str | None = None
    """The data's reference output."""
    logprob: float | None = None
    """Teacher-forced log-probability of the reference at this layer (``--score``)."""
    target_tokens: list[str] | None = None
    """The reference's tokens (``--score``)."""
    token_logprobs: list[float] | None = None
    """Log-probability of each reference token (``--score``)."""
    token_ranks: list[int] | None = None
    """Rank of each reference token among the layer's predictions, 0 = its top prediction (``--score``)."""
    tokens: list[str] | None = None
    """The output's tokens (``--token-scores``)."""
    logprobs: list[float] | None = None
    """Each output token's log-probability at this layer (``--token-scores``)."""
    entropies: list[float] | None = None
    """The entropy (nats) each output token was chosen from (``--token-scores``)."""
    language: str | None = None
    """The example's language in the data (multilingual speech models)."""
    detected_language: str | None = None
    """The language the decoder names first when it reads this layer (multilingual speech models)."""
    language_probability: float | None = None
    """Its probability among the model's languages."""
    lens: str | None = None
    """``raw`` for the raw lens's readouts beside tuned ones (``--lens both``); unset otherwise."""

    @classmethod
    def of(cls, id: str, input: str, readout: LayerReadout, reference: str | None = None,
           lens: str | None = None) -> ReadoutRecord:
        """The row form of one example's readout of one layer."""
        scored = bool(readout.logprobs)
        return cls(id, readout.layer, input, readout.text, reference, lens=lens,
                   tokens=readout.tokens if scored else None, logprobs=readout.logprobs if scored else None,
                   entropies=readout.entropies if scored else None)

    def readout(self) -> LayerReadout:
        """The ``LayerReadout`` this row stores (its token ids are not stored)."""
        return LayerReadout(self.layer, self.output, [], self.tokens or [], self.logprobs or [], self.entropies or [])

    def to_dict(self) -> dict[str, Any]:
        """The record as stored: fields that are not set are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadoutRecord:
        """Rebuild a stored record; unknown keys are ignored, missing required ones refused."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class GridRecord:
    """One example's 2-D lens, as stored in ``grid.jsonl``: the reference's log-probability read through every
    encoder layer (rows) and decoder layer (columns)."""

    id: str
    encoder_layers: list[int]
    logprob: list[list[float]]


@dataclass
class GridCellSummary:
    """The mean of one (encoder layer, decoder layer) cell over the data set."""

    encoder_layer: int
    decoder_layer: int
    logprob: Estimate


@dataclass
class MetricInfo:
    """What a metric in a summary is."""

    description: str = ""
    """In words, for captions."""
    signature: str = ""
    """The exact configuration (e.g. sacrebleu's signature)."""
    higher_is_better: bool = True
    bounds: list[float] | None = None
    """The range of values (``[0, 1]`` for rates), for plot axes."""
    baseline: float | None = None
    """The metric's chance level on this data: the best constant answer's score (``None`` where it has none)."""
    baseline_label: str = ""
    """What reaches the baseline, in words (``best constant answer 'yes'``)."""


@dataclass
class LayerSummary:
    """Every metric of one layer over the data set."""

    layer: int
    n: int
    """Examples scored."""
    metrics: dict[str, Estimate]


@dataclass
class Summary(Presentable):
    """Per layer and metric: the corpus value with its bootstrap confidence interval, plus how it was made."""

    model: str
    num_encoder_layers: int
    settings: dict[str, Any]
    """The run's settings (``run.json``)."""
    preset: str
    normalize: str
    metrics: dict[str, MetricInfo]
    layers: list[LayerSummary]
    confidence: float = 0.95
    bootstrap_resamples: int = 1000
    skipped: list[str] = field(default_factory=list)
    """Rows that were skipped, with the reason."""
    grid: list[GridCellSummary] = field(default_factory=list)
    """With ``--grid``: every (encoder layer, decoder layer) cell's mean reference log-probability."""
    raw_layers: list[LayerSummary] = field(default_factory=list)
    """With ``--lens both``: the raw lens's layers (``layers`` are then the tuned lens's)."""

    @property
    def metric_names(self) -> list[str]:
        """The metrics measured, in the order of ``metrics``."""
        return list(self.metrics)

    @property
    def lens_curves(self) -> list[tuple[str, list[LayerSummary]]]:
        """Each lens's layers with its name: ``raw`` then ``tuned`` with ``--lens both``, else one unnamed curve."""
        if self.raw_layers:
            return [("raw", self.raw_layers), ("tuned", self.layers)]
        return [("", self.layers)]

    def baselines(self) -> dict[str, tuple[float, str]]:
        """Each metric's chance level and what reaches it, where it has one."""
        return {name: (info.baseline, info.baseline_label) for name, info in self.metrics.items()
                if info.baseline is not None}

    def layer(self, layer: int) -> LayerSummary:
        """The summary of ``layer``."""
        for entry in self.layers:
            if entry.layer == layer:
                return entry
        raise KeyError(f"layer {layer} is not in this summary")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        def layer_summaries(entries: list[dict[str, Any]]) -> list[LayerSummary]:
            return [LayerSummary(e["layer"], e["n"], {k: Estimate(**v) for k, v in e["metrics"].items()})
                    for e in entries]

        layers, raw = layer_summaries(data["layers"]), layer_summaries(data.get("raw_layers", []))
        metrics = {k: MetricInfo(**v) for k, v in data["metrics"].items()}
        grid = [GridCellSummary(c["encoder_layer"], c["decoder_layer"], Estimate(**c["logprob"]))
                for c in data.get("grid", [])]
        return cls(data["model"], data["num_encoder_layers"], data["settings"], data["preset"], data["normalize"],
                   metrics, layers, data.get("confidence", 0.95), data.get("bootstrap_resamples", 1000),
                   list(data.get("skipped", [])), grid, raw)

    def to_records(self) -> list[dict[str, Any]]:
        """Long format: layer, metric, value, low, high, n (and the lens, when raw and tuned are both there)."""
        both = bool(self.raw_layers)
        return [{"layer": entry.layer, "metric": name, "value": est.value, "low": est.low, "high": est.high,
                 "n": est.n, **({"lens": lens} if both else {})}
                for lens, entries in (("tuned", self.layers), ("raw", self.raw_layers))
                for entry in entries for name, est in entry.metrics.items()]

    def to_csv(self) -> str:
        """``to_records`` as CSV, numbers with 6 significant digits."""
        rows = [{k: f"{v:.6g}" if k in ("value", "low", "high") else v for k, v in row.items()}
                for row in self.to_records()]
        return csv_text(rows) or "layer,metric,value,low,high,n\n"


@dataclass
class AnalysisTable:
    """A table that an analysis adds to a folder (e.g. the logic task's correctness by formula size); the report
    shows every such table."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


def complete_examples(records: list[ReadoutRecord], layers: list[int]) -> list[ReadoutRecord]:
    """The records of examples that have every layer in ``layers`` (an interrupted chunk leaves partial ones)."""
    by_id: dict[str, set[int]] = defaultdict(set)
    for record in records:
        if record.lens is None:
            by_id[record.id].add(record.layer)
    wanted = set(layers)
    return [r for r in records if by_id[r.id] >= wanted]


class EvalFolder:
    """An evaluation folder on disk; every reader and writer of its files goes through this class."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def readouts_path(self) -> Path:
        return self.path / READOUTS

    @property
    def damaged(self) -> str:
        """What to do about a damaged file of this folder."""
        return (f"run `decoderlens eval ... --out {self.path}` again to rebuild it (records are kept), or evaluate "
                "into a new folder")

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_JSON

    def shard_path(self, rank: int, world: int) -> Path:
        """One process's readout file in a data-parallel run."""
        return self.path / f"readouts.rank{rank}-of-{world}.jsonl"

    # --- settings --------------------------------------------------------------------------------

    def read_settings(self) -> dict[str, Any] | None:
        """The settings of the run that wrote this folder (``None`` before its first records)."""
        path = self.path / RUN_FILE
        return read_json(path, self.damaged) if path.exists() else None

    def check_settings(self, identity: dict[str, Any]) -> None:
        """Refuse to mix results of different settings in one folder."""
        previous = self.read_settings()
        current = json.loads(json.dumps(identity))
        if previous is not None and previous != current:
            changed = [k for k in sorted(set(current) | set(previous)) if previous.get(k) != current.get(k)]
            raise InputError(
                f"{self.path} holds results of a run with other settings (changed: {', '.join(changed)}); "
                "use another --out folder, or delete this one to start over"
            )

    def write_settings(self, identity: dict[str, Any]) -> None:
        """Record the settings (written with the first records, so a run that fails earlier leaves none)."""
        if self.read_settings() is None:
            atomic_write_text(self.path / RUN_FILE, json.dumps(identity, indent=2, ensure_ascii=False))

    # --- records ---------------------------------------------------------------------------------

    def append(self, records: list[ReadoutRecord], path: Path | None = None) -> None:
        """Append records durably (flushed and synced) to ``readouts.jsonl`` or a shard; renews the lock."""
        self.path.mkdir(parents=True, exist_ok=True)
        append_lines(path or self.readouts_path, [json_line(r.to_dict()) for r in records])
        with contextlib.suppress(OSError):
            os.utime(self.path / LOCK)

    def records(self, layers: list[int] | None = None, path: Path | None = None) -> list[ReadoutRecord]:
        """The stored records; with ``layers``, only complete examples, and a torn or partial end is cut from
        the file so that appending continues cleanly."""
        path = path or self.readouts_path
        rows, torn = read_json_lines(path, self.damaged)
        try:
            records = [ReadoutRecord.from_dict(data) for data in rows]
        except (TypeError, AttributeError):
            raise InputError(f"{path} holds records this version cannot read: {self.damaged}") from None
        if layers is None:
            return records
        keep = complete_examples(records, layers)
        if torn or len(keep) != len(records):
            atomic_write_text(path, "".join(json_line(r.to_dict()) for r in keep))
        return keep

    def append_grids(self, records: list[GridRecord]) -> None:
        """Append 2-D lens records durably (before the chunk's readouts, which mark its examples done)."""
        self.path.mkdir(parents=True, exist_ok=True)
        append_lines(self.path / GRIDS, [json_line(asdict(r)) for r in records])

    def grid_records(self) -> list[GridRecord]:
        """The stored 2-D lens records, one per example (the newest where a resumed run wrote one twice)."""
        try:
            by_id = {record["id"]: GridRecord(**record)
                     for record in read_json_lines(self.path / GRIDS, self.damaged)[0]}
        except (KeyError, TypeError):
            raise InputError(f"{self.path / GRIDS} holds records this version cannot read: {self.damaged}") from None
        return list(by_id.values())

    def append_attributions(self, records: list[dict[str, Any]]) -> None:
        """Append attribution records durably (before the chunk's readouts, which mark its examples done)."""
        self.path.mkdir(parents=True, exist_ok=True)
        append_lines(self.path / ATTRIBUTIONS, [json_line(r) for r in records])

    def attribution_records(self) -> dict[str, dict[str, Any]]:
        """The stored attributions by example id (the newest where a resumed run wrote one twice)."""
        records, _ = read_json_lines(self.path / ATTRIBUTIONS, self.damaged)
        if any(not isinstance(r, dict) or "id" not in r or "example" not in r for r in records):
            raise InputError(f"{self.path / ATTRIBUTIONS} holds records this version cannot read: {self.damaged}")
        return {str(r["id"]): r for r in records}

    def require_records(self) -> list[ReadoutRecord]:
        """The records of a finished or interrupted run; a folder without any is refused with the fix."""
        if not self.readouts_path.exists():
            raise InputError(f"{self.path} has no {READOUTS}: run `decoderlens eval ... --out {self.path}` first")
        return self.records()

    def merge_shards(self, order: list[str], layers: list[int], world: int) -> list[ReadoutRecord]:
        """Fold every process's shard into ``readouts.jsonl`` in data order (``order``: example ids)."""
        records = self.records(layers)
        shards = [self.shard_path(rank, world) for rank in range(world)]
        for shard in shards:
            records += self.records(layers, shard)
        position = {key: index for index, key in enumerate(order)}
        records.sort(key=lambda r: (position.get(r.id, len(position)), layers.index(r.layer)))
        atomic_write_text(self.readouts_path, "".join(json_line(r.to_dict()) for r in records))
        for shard in shards:
            shard.unlink(missing_ok=True)
        return records

    # --- summary ---------------------------------------------------------------------------------

    def write_summary(self, summary: Summary) -> None:
        """``summary.json`` and ``summary.csv``, atomically."""
        atomic_write_text(self.summary_path, json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        atomic_write_text(self.path / SUMMARY_CSV, summary.to_csv())

    def summary(self) -> Summary | None:
        """The summary, or ``None`` when the run has not finished."""
        if not self.summary_path.exists():
            return None
        data = read_json(self.summary_path, self.damaged)
        try:
            return Summary.from_dict(data)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise InputError(f"{self.summary_path} is not a summary this version can read ({err}); run "
                             f"`decoderlens eval` again into a new folder") from None

    def write_tables(self, tables: list[AnalysisTable]) -> None:
        """Record the tables of an analysis of this folder's readouts (shown by the report)."""
        atomic_write_text(self.path / TABLES, json.dumps([asdict(t) for t in tables], indent=2, ensure_ascii=False))

    def tables(self) -> list[AnalysisTable]:
        """The analysis tables recorded for this folder."""
        path = self.path / TABLES
        return [AnalysisTable(**t) for t in json.loads(path.read_text(encoding="utf-8"))] if path.exists() else []

    # --- one writer at a time --------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the folder's lock while writing; a lock left by a process that died is taken over."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                owner = _lock_owner(lock)
                if owner is not None:
                    raise InputError(f"{self.path} is being written by another decoderlens eval ({owner}); wait "
                                     "for it to finish, or use another --out folder") from None
                lock.unlink(missing_ok=True)
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                if not any(self.path.iterdir()):
                    self.path.rmdir()  # nothing was written: leave nothing behind


def _lock_owner(lock: Path) -> str | None:
    """Who holds a lock, or ``None`` when its holder is gone (same machine: the process has ended; another
    machine: the lock was not renewed for ``STALE_LOCK_SECONDS``)."""
    try:
        host, pid_text = lock.read_text().split()
        pid, age = int(pid_text), time.time() - lock.stat().st_mtime
    except (OSError, ValueError):
        return None
    if host != socket.gethostname():
        return None if age > STALE_LOCK_SECONDS else f"process {pid} on {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"process {pid}"
