"""The demo: read out every encoder layer of the shipped logic model on held-out formulas.

Its output folder is a regular evaluation folder (``readouts.jsonl``, ``summary.json``,
``summary.csv``) plus ``logic_analysis.json`` with the breakdown by formula size and depth.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from decoderlens.engine import DecoderLens
from decoderlens.evaluation.data import DataSource
from decoderlens.evaluation.runner import EvalSettings, evaluate
from decoderlens.logic import shipped_model_path
from decoderlens.logic.analysis import LogicAnalysis, analyze
from decoderlens.logic.data import SPLITS, LogicExample, generate_examples, write_jsonl
from decoderlens.presentation.report import write_report
from decoderlens.results import ExampleReadouts, LayerReadout, LensOutput, atomic_write_text


def held_out_examples(count: int, seed: int = 0, target: str = "minimal") -> list[LogicExample]:
    """The first ``count`` formulas of the seeded test split (never seen in training), with targets of kind
    ``target``."""
    offset, _ = SPLITS["test"]
    return generate_examples(count, seed=seed * 1000 + offset, prefix="test-", target=target)


def trained_target(model_path: Path) -> str:
    """The kind of target a logic model folder was trained on (its ``training_config.json``; else minimal)."""
    config = model_path / "training_config.json"
    if not config.is_file():
        return "minimal"
    return str(json.loads(config.read_text(encoding="utf-8")).get("target", "minimal"))


def readouts_from_folder(out_dir: Path, examples: list[LogicExample], model: str, num_layers: int) -> LensOutput:
    """Rebuild a ``LensOutput`` for ``examples`` from an evaluation folder's ``readouts.jsonl``."""
    by_id: dict[str, list[LayerReadout]] = {}
    for line in (out_dir / "readouts.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        by_id.setdefault(record["id"], []).append(LayerReadout(record["layer"], record["output"], []))
    rows = [ExampleReadouts(e.formula, sorted(by_id[e.id], key=lambda r: r.layer)) for e in examples if e.id in by_id]
    return LensOutput(model, num_layers, rows)


def analysis_tables(analysis: LogicAnalysis) -> list[Table]:
    """Per-layer rates with baselines, and correctness per layer and formula size."""
    main = Table(title="Readout of every encoder layer (held-out formulas)", title_justify="left",
                 header_style="bold")
    for column in ("layer", "parses", "correct", "exact"):
        main.add_column(column, justify="right")
    for layer, rates in analysis.overall.items():
        main.add_row(str(layer), f"{rates.parses:.1%}", f"{rates.correct:.1%}", f"{rates.exact:.1%}")
    base = analysis.baselines
    main.caption = (f"baselines: best constant answer {base['best_constant']:.1%} "
                    f"({base['best_constant_answer']!s}), random full assignment {base['random_full_assignment']:.1%}")
    sizes = Table(title="Correct by formula size (rows: layers)", title_justify="left", header_style="bold")
    buckets = list(next(iter(analysis.by_size.values())).keys()) if analysis.by_size else []
    sizes.add_column("layer", justify="right")
    for bucket in buckets:
        sizes.add_column(bucket, justify="right")
    for layer, per_bucket in analysis.by_size.items():
        sizes.add_row(str(layer), *[f"{per_bucket[b].correct:.0%}" if b in per_bucket else "" for b in buckets])
    first = analysis.first_solved_by_size
    sizes.caption = "first layer solved (and stays solved), mean: " + ", ".join(
        f"{b}: {v:.1f}" if v is not None else f"{b}: -" for b, v in first.items())
    return [main, sizes]


def run_demo(out_dir: Path, count: int = 300, batch_size: int = 64, console: Console | None = None,
             model_path: Path | None = None) -> LogicAnalysis:
    """Read out all layers of the shipped model on ``count`` held-out formulas; print and write results."""
    console = console or Console()
    path = model_path or shipped_model_path()
    lens = DecoderLens.from_pretrained(str(path), device="cpu")
    lens.name = "decoderlens/logic-model" if model_path is None else str(path)
    examples = held_out_examples(count, target=trained_target(path))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "heldout.jsonl"
    write_jsonl(examples, data)
    settings = EvalSettings(model=lens.name, data=DataSource(str(data), input_field="formula", target_field="target"),
                            task="logic", max_new_tokens=16, batch_size=batch_size, chunk_size=max(batch_size, 256))
    evaluate(settings, out_dir, lens=lens)
    analysis = analyze(examples, readouts_from_folder(out_dir, examples, lens.name, lens.num_layers))
    atomic_write_text(out_dir / "logic_analysis.json", json.dumps(asdict(analysis), indent=2))
    write_report(out_dir)
    for table in analysis_tables(analysis):
        console.print(table)
    console.print(f"results written to {out_dir}/ (readouts.jsonl, summary.json, summary.csv, logic_analysis.json, "
                  "report.html)")
    return analysis
