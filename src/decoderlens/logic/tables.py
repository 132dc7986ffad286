"""The logic analysis as a table: correctness by formula size (the per-layer rates are the evaluation's own
metrics, ``logic_parses``, ``logic_correct`` and ``accuracy``, with their intervals and chance level)."""

from __future__ import annotations

from decoderlens.evaluation.folder import AnalysisTable
from decoderlens.logic.analysis import LogicAnalysis
from decoderlens.presentation.numbers import percent


def analysis_tables(analysis: LogicAnalysis) -> list[AnalysisTable]:
    """The tables the demo prints and the report shows beside the evaluation's metrics."""
    base = analysis.baselines
    buckets = list(next(iter(analysis.by_size.values())).keys()) if analysis.by_size else []
    first = analysis.first_solved_by_size
    sizes = AnalysisTable(
        "Correct by formula size (rows: encoder layers)", ["layer", *[f"size {b}" for b in buckets]],
        [[str(layer), *[f"{per[b].correct:.0%}" if b in per else "" for b in buckets]]
         for layer, per in analysis.by_size.items()]
        + [["n", *[str(next(iter(analysis.by_size.values()))[b].count) for b in buckets]]],
        "Share of outputs with logic_correct. Mean first layer from which an example is solved and stays solved: "
        + ", ".join(f"{b}: {v:.1f}" if v is not None else f"{b}: never" for b, v in first.items())
        + f". A uniformly random full assignment is correct for {percent(float(base['random_full_assignment']))}.")
    return [sizes]
