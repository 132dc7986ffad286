"""How results draw themselves in notebooks (HTML) and terminals (rich); registered with the results layer.

Every result type a user gets back is here: readouts, scores, the 2-D lens, causal traces, ``read_all``'s
readings, evaluation summaries and reports, and comparisons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group

from decoderlens.presentation.attribution_view import attribution_specs
from decoderlens.presentation.compare_view import comparison_specs
from decoderlens.presentation.report import static_table_html
from decoderlens.presentation.tables import (
    TableSpec,
    grid_table_specs,
    html_tables,
    language_specs,
    readout_specs,
    readout_tables,
    rich_tables,
    score_specs,
    summary_specs,
    trace_specs,
)
from decoderlens.results import register_display


def _register(name: str, specs: Callable[[Any], list[TableSpec]]) -> None:
    register_display(name, "html", lambda result: html_tables(specs(result)))
    register_display(name, "rich", lambda result: Group(*rich_tables(specs(result))))


def _readings_specs(readings: Any) -> list[TableSpec]:
    specs = []
    for name, output in readings.by_lens.items():
        for spec in readout_specs(output):
            spec.title = f"{spec.title}  ({name} lens)"
            specs.append(spec)
    return specs + (score_specs(readings.scores) if readings.scores else []) + (
        grid_table_specs(readings.grids) if readings.grids else [])


register_display("LensOutput", "html", static_table_html)
register_display("LensOutput", "rich", lambda output: Group(*readout_tables(output)))
_register("ScoreOutput", score_specs)
_register("GridOutput", grid_table_specs)
_register("TraceOutput", trace_specs)
_register("AttributionOutput", attribution_specs)
_register("Readings", _readings_specs)
_register("LanguageOutput", language_specs)
_register("Summary", summary_specs)
_register("EvalReport", lambda report: summary_specs(report.summary))
_register("Comparison", comparison_specs)
