"""Any result of an analysis as text: JSON, CSV, or tables printed to the terminal."""

from __future__ import annotations

from rich.console import Console

from decoderlens.attribution.output import AttributionOutput
from decoderlens.fileio import csv_text, json_text
from decoderlens.presentation.attribution_view import attribution_specs
from decoderlens.presentation.tables import (
    OutputFormat,
    grid_tables,
    language_specs,
    readout_tables,
    rich_tables,
    score_tables,
    trace_tables,
)
from decoderlens.results import GridOutput, LanguageOutput, LensOutput, ScoreOutput, TraceOutput


def render(output: LensOutput | ScoreOutput | GridOutput | TraceOutput | LanguageOutput | AttributionOutput,
           fmt: OutputFormat,
           console: Console | None = None) -> str | None:
    """JSON/CSV text for ``fmt`` json/csv; for ``table``, prints to ``console`` and returns ``None``."""
    if fmt == "json":
        return json_text(output.to_dict())
    if fmt == "csv":
        return csv_text(output.to_records())
    console = console or Console()
    if isinstance(output, AttributionOutput):
        tables = rich_tables(attribution_specs(output), console.width)
    elif isinstance(output, TraceOutput):
        tables = trace_tables(output, console.width)
    elif isinstance(output, LensOutput):
        tables = readout_tables(output)
    elif isinstance(output, GridOutput):
        tables = grid_tables(output, console.width)
    elif isinstance(output, LanguageOutput):
        tables = rich_tables(language_specs(output), console.width)
    else:
        tables = score_tables(output, console.width)
    for table in tables:
        console.print(table)
    return None
