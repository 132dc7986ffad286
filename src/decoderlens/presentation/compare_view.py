"""A comparison of two runs as terminal tables and as the tables of its page."""

from __future__ import annotations

from rich.table import Table

from decoderlens.evaluation.compare import Comparison
from decoderlens.evaluation.folder import AnalysisTable
from decoderlens.presentation.numbers import interval, number
from decoderlens.presentation.report import display_name
from decoderlens.presentation.tables import TableSpec, rich_tables


def comparison_specs(result: Comparison) -> list[TableSpec]:
    """Layers x metrics, each cell ``B - A [low, high]``."""
    layers = result.layers
    names = list(layers[0].metrics) if layers else []
    columns = [(name, [interval(lc.metrics[name].diff, lc.metrics[name].ci_low, lc.metrics[name].ci_high)
                       for lc in layers]) for name in names]
    caption = (f"{result.examples} shared examples; B = {result.b}, A = {result.a}; cells: B - A [95% paired "
               "bootstrap interval]")
    return [TableSpec("B - A per layer", [("layer", [str(lc.layer) for lc in layers])], columns, caption)]


def comparison_tables(result: Comparison, width: int = 80) -> list[Table]:
    """The comparison's table, split to fit ``width``."""
    return rich_tables(comparison_specs(result), width)


def reaching_tables(result: Comparison) -> list[AnalysisTable]:
    """Per metric: the first layer at which each run closes 50% and 90% of the gap from chance to its top-layer
    score."""
    rows = []
    for name in (result.first_layer_reaching.get("a") or {}):
        chance = number(result.baselines[name]) if name in result.baselines else "0 (none known)"
        for key, label in (("a", f"A: {display_name(result.a)}"), ("b", f"B: {display_name(result.b)}")):
            reached = result.first_layer_reaching[key][name]
            rows.append([name, chance, label, *[str(v) if v is not None else "never" for v in reached.values()]])
    labels = list(next(iter((result.first_layer_reaching.get("a") or {}).values()), {}).keys())
    return [AnalysisTable("First layer closing a share of the gap from chance to the top layer",
                          ["metric", "chance", "run", *labels], rows,
                          "Chance is the metric's best constant answer on these examples. For a lower-is-better "
                          "metric without one: the first layer at most the top value divided by the share.")
            ] if rows else []
