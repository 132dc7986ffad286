"""A comparison of two runs as terminal tables and as the tables of its page."""

from __future__ import annotations

from rich.table import Table

from decoderlens.evaluation.compare import Comparison
from decoderlens.evaluation.folder import AnalysisTable
from decoderlens.presentation.tables import fitted_tables, number


def comparison_tables(result: Comparison, width: int = 80) -> list[Table]:
    """Layers x metrics, each cell ``B - A (low, high)``, split to fit ``width``."""
    layers = result.layers
    names = list(layers[0].metrics) if layers else []
    fixed = [("layer", [str(lc.layer) for lc in layers])]
    columns = [(name, [f"{number(lc.metrics[name].diff)} ({number(lc.metrics[name].ci_low, 2)}, "
                       f"{number(lc.metrics[name].ci_high, 2)})" for lc in layers]) for name in names]
    caption = f"{result.examples} shared examples; B = {result.b}, A = {result.a}; 95% paired bootstrap CI"
    return fitted_tables("B - A per layer", fixed, columns, width, caption)


def reaching_tables(result: Comparison) -> list[AnalysisTable]:
    """Per metric: the first layer at which each run reaches 50% and 90% of its top-layer score."""
    rows = []
    for name in (result.first_layer_reaching.get("a") or {}):
        for key, label in (("a", "A"), ("b", "B")):
            reached = result.first_layer_reaching[key][name]
            rows.append([name, label, *[str(v) if v is not None else "never" for v in reached.values()]])
    labels = list(next(iter((result.first_layer_reaching.get("a") or {}).values()), {}).keys())
    return [AnalysisTable("First layer reaching a share of the top layer's score", ["metric", "run", *labels], rows,
                          "For metrics where lower is better: the first layer at most the top value divided by the "
                          "share.")] if rows else []
