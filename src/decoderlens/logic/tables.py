"""The logic analysis as tables: per-layer rates with baselines, and correctness by formula size."""

from __future__ import annotations

from decoderlens.evaluation.folder import AnalysisTable
from decoderlens.logic.analysis import LogicAnalysis


def analysis_tables(analysis: LogicAnalysis) -> list[AnalysisTable]:
    """The tables the demo prints, the report shows and the model card and docs quote."""
    base = analysis.baselines
    overall = AnalysisTable(
        "Readout of every encoder layer (held-out formulas)", ["layer", "parses", "correct", "exact"],
        [[str(layer), f"{r.parses:.1%}", f"{r.correct:.1%}", f"{r.exact:.1%}"]
         for layer, r in analysis.overall.items()],
        f"Baselines: the best constant answer ({base['best_constant_answer']}) is correct for "
        f"{float(base['best_constant']):.1%}, a random full assignment for "
        f"{float(base['random_full_assignment']):.1%}.")
    buckets = list(next(iter(analysis.by_size.values())).keys()) if analysis.by_size else []
    first = analysis.first_solved_by_size
    sizes = AnalysisTable(
        "Correct by formula size (rows: encoder layers)", ["layer", *[f"size {b}" for b in buckets]],
        [[str(layer), *[f"{per[b].correct:.0%}" if b in per else "" for b in buckets]]
         for layer, per in analysis.by_size.items()]
        + [["n", *[str(next(iter(analysis.by_size.values()))[b].count) for b in buckets]]],
        "Mean first layer from which an example is solved and stays solved: " + ", ".join(
            f"{b}: {v:.1f}" if v is not None else f"{b}: never" for b, v in first.items()) + ".")
    return [overall, sizes]
