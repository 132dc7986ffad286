"""Is per-layer attribution faithful, and what does it cost? On the shipped logic model, over held-out formulas,
per layer and method (at their defaults):

- the rank correlation (Spearman) between a method's scores and causal tracing's restore effects on the layer's
  own readout (the input's embeddings noised; the clean state of one position of the layer put back into the
  corrupted states the decoder reads), per readout token, averaged per example;
- deletion: corrupting the k positions a method ranks highest (k = 1..8) lowers the readout's log-probability
  more than corrupting k random ones: the share of examples where it does, and the mean area between the curves
  (nats);

each with a 95% bootstrap interval over formulas; then the time per example of ``lens.attribute(formula,
method=...)`` at the defaults (all layers, each layer's own readout), methods alternating in rounds.

    python benchmarks/bench_attribution.py --count 200 --out bench-attribution.jsonl

Records stream to ``--out`` (one line per formula) and a rerun resumes after the last complete one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from decoderlens import DecoderLens
from decoderlens.attribution.faithfulness import LayerFaithfulness, example_faithfulness, summary_rows
from decoderlens.attribution.run import build_rows
from decoderlens.batching import encode
from decoderlens.fileio import append_lines, json_line, read_json_lines
from decoderlens.logic import shipped_model_path
from decoderlens.logic.demo import held_out_examples
from decoderlens.presentation.numbers import interval
from decoderlens.settings import (
    ATTRIBUTION_METHODS,
    AttributionSettings,
    GenerationSettings,
    RuntimeSettings,
    TraceSettings,
)

MAX_ROWS = 512


def measure(lens: DecoderLens, count: int, out: Path) -> list[LayerFaithfulness]:
    """Faithfulness records of the first ``count`` held-out formulas, resumed from ``out``."""
    done, _ = read_json_lines(out, "delete it to start over") if out.exists() else ([], False)
    finished = {record["id"] for record in done}
    parts = lens.parts
    generation, runtime = GenerationSettings(), RuntimeSettings()
    plan = parts.plan(generation, runtime)
    layers = list(range(lens.num_layers + 1))
    methods = {name: AttributionSettings(method=name) for name in ATTRIBUTION_METHODS}
    examples = held_out_examples(count)
    started = time.perf_counter()
    for index, example in enumerate(examples):
        if example.id in finished:
            continue
        rows, _ = build_rows(parts, encode(parts, [example.formula]), [None], layers, plan, generation, runtime,
                             lens.lens)
        records = example_faithfulness(parts, example.formula, rows, layers, methods, generation, runtime,
                                       TraceSettings(), MAX_ROWS)
        append_lines(out, [json_line({"id": example.id, "records": [asdict(r) for r in records]})])
        if index % 20 == 0:
            print(f"  {index + 1}/{count} formulas, {time.perf_counter() - started:.0f} s", flush=True)
    done, _ = read_json_lines(out, "delete it to start over")
    wanted = {example.id for example in examples}
    return [LayerFaithfulness(**r) for record in done if record["id"] in wanted for r in record["records"]]


def costs(lens: DecoderLens, formulas: list[str], rounds: int) -> dict[str, list[float]]:
    """Seconds per formula of ``lens.attribute(formula, method=m)`` at the defaults, methods alternating."""
    seconds: dict[str, list[float]] = {name: [] for name in ATTRIBUTION_METHODS}
    for _ in range(rounds):
        for name in ATTRIBUTION_METHODS:
            start = time.perf_counter()
            for formula in formulas:
                lens.attribute(formula, method=name)
            seconds[name].append((time.perf_counter() - start) / len(formulas))
    return seconds


def completeness(lens: DecoderLens, formulas: list[str], steps: int) -> dict[int, list[float]]:
    """Per layer: each readout token's integrated-gradients completeness gap as a share of the change in its
    log-probability from the baseline (|gap| / |change|), at ``steps`` points."""
    shares: dict[int, list[float]] = {}
    for formula in formulas:
        out = lens.attribute(formula, method="ig", steps=steps)
        for layer in out[0].layers:
            for token in layer.tokens:
                change = sum(token.attribution) - (token.completeness_gap or 0.0)
                if abs(change) > 1e-3:
                    shares.setdefault(layer.layer, []).append(abs(token.completeness_gap or 0.0) / abs(change))
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="held-out formulas")
    parser.add_argument("--out", type=Path, default=Path("bench-attribution.jsonl"))
    parser.add_argument("--cost-formulas", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lens = DecoderLens.from_pretrained(str(shipped_model_path()), device="cpu")
    records = measure(lens, args.count, args.out)
    print(f"\nFaithfulness on {args.count} held-out formulas (95% bootstrap intervals over formulas)\n")
    print("| method | layer | Spearman with restore effects | deletion beats random | deletion area (nats) |")
    print("|---|---|---|---|---|")
    for row in summary_rows(records):
        rho = row["spearman"]
        print(f"| {row['method']} | {row['layer']} | "
              f"{interval(rho.value, rho.low, rho.high) if rho else '-'} | "
              f"{interval(*(getattr(row['deletion_wins'], k) for k in ('value', 'low', 'high')))} | "
              f"{interval(*(getattr(row['deletion_area'], k) for k in ('value', 'low', 'high')))} |")
    formulas = [e.formula for e in held_out_examples(args.cost_formulas)]
    seconds = costs(lens, formulas, args.rounds)
    print(f"\nCost per formula at the defaults (all {lens.num_layers + 1} layers, own readouts; "
          f"{args.rounds} rounds, best / median)\n")
    print("| method | seconds per formula | vs grad (median) |")
    print("|---|---|---|")
    base = statistics.median(seconds["grad"])
    for name, values in seconds.items():
        print(f"| {name} | {min(values):.3f} / {statistics.median(values):.3f} | "
              f"{statistics.median(values) / base:.1f}x |")
    print(f"\nIntegrated gradients' completeness gap, |gap| / |change in log-prob| per token ({args.cost_formulas} "
          "formulas; tokens whose log-probability moves less than 0.001 from the baseline left out)\n")
    print("| layer | steps 4: median | steps 16 (default): median | steps 16: 90th percentile | tokens |")
    print("|---|---|---|---|---|")
    few, default = completeness(lens, formulas, 4), completeness(lens, formulas, 16)
    for layer, values in sorted(default.items()):
        print(f"| {layer} | {statistics.median(few.get(layer, [float('nan')])):.3f} | {statistics.median(values):.3f}"
              f" | {float(np.quantile(values, 0.9)):.3f} | {len(values)} |")


if __name__ == "__main__":
    main()
