"""The demo: read out every encoder layer of the shipped logic model on held-out formulas."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from decoderlens.engine import DecoderLens
from decoderlens.logic import shipped_model_path
from decoderlens.logic.analysis import LogicAnalysis, analyze, judge
from decoderlens.logic.data import SPLITS, LogicExample, generate_examples
from decoderlens.presentation.tables import to_csv
from decoderlens.results import LensOutput, atomic_write_text


def held_out_examples(count: int, seed: int = 0) -> list[LogicExample]:
    """The first ``count`` formulas of the seeded test split (never seen in training)."""
    offset, _ = SPLITS["test"]
    return generate_examples(count, seed=seed * 1000 + offset, prefix="test-")


def write_results(out_dir: Path, examples: list[LogicExample], output: LensOutput, analysis: LogicAnalysis) -> None:
    """``readouts.jsonl`` (one record per example and layer), ``summary.json`` and ``summary.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for example, readouts in zip(examples, output, strict=True):
        for readout in readouts.readouts:
            verdict = judge(example.formula, readout.text, example.target)
            lines.append(json.dumps({
                "id": example.id, "layer": readout.layer, "input": example.formula, "output": readout.text,
                "reference": example.target, "size": example.size, "depth": example.depth, **asdict(verdict),
            }))
    atomic_write_text(out_dir / "readouts.jsonl", "\n".join(lines) + "\n")
    summary = {"model": output.model, "num_encoder_layers": output.num_encoder_layers,
               "num_examples": len(examples), "settings": output.settings, **analysis.to_dict()}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    rows = [{"layer": layer, "n": r.count, "parses": r.parses, "correct": r.correct, "exact": r.exact}
            for layer, r in analysis.overall.items()]
    atomic_write_text(out_dir / "summary.csv", to_csv(rows))  # type: ignore[arg-type]


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
    examples = held_out_examples(count)
    output = lens.generate([e.formula for e in examples], "all", max_new_tokens=16, batch_size=batch_size,
                           progress=True)
    analysis = analyze(examples, output)
    write_results(out_dir, examples, output, analysis)
    for table in analysis_tables(analysis):
        console.print(table)
    console.print(f"results written to {out_dir}/ (readouts.jsonl, summary.json, summary.csv)")
    return analysis
